// Lowering: a node list becomes, per bucket, a flat static schedule of DMA,
// MXU and VPU instructions over buffers placed in VMEM by a bump allocator
// (reset per node: nothing stays on chip between nodes). Weights are decoded
// once, here, into bf16 device-memory copies the graph owns; norm vectors
// into f32 copies. What cannot be placed or is not implemented is refused with
// GEMMAC_PLUGIN_UNSUPPORTED and a message naming the node.
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "device.h"
#include "gemmac/op_checks.h"

namespace gemmac::tpu {
namespace {

float Half(uint16_t h) {
  int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
  float v = exp == 0    ? std::ldexp(float(man), -24)
            : exp == 31 ? (man ? NAN : INFINITY)
                        : std::ldexp(float(man | 1024), exp - 25);
  return sign ? -v : v;
}

bool IsQuant(int32_t dt) {
  return dt == GEMMAC_DTYPE_Q8C || dt == GEMMAC_DTYPE_Q4G32 ||
         dt == GEMMAC_DTYPE_Q4G128 || dt == GEMMAC_DTYPE_Q4G32R8;
}
bool IsFloatWeight(int32_t dt) {
  return dt == GEMMAC_DTYPE_F32 || dt == GEMMAC_DTYPE_BF16 ||
         dt == GEMMAC_DTYPE_F16;
}

// Element (r, c) of a [rows, cols] weight of any dtype (docs/quantization.md).
float WeightAt(const uint8_t *base, int32_t dt, int64_t rows, int64_t cols,
               int64_t r, int64_t c) {
  const int64_t i = r * cols + c;
  switch (dt) {
  case GEMMAC_DTYPE_F32: {
    float f;
    std::memcpy(&f, base + 4 * i, 4);
    return f;
  }
  case GEMMAC_DTYPE_BF16: {
    uint16_t h;
    std::memcpy(&h, base + 2 * i, 2);
    uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  case GEMMAC_DTYPE_F16: {
    uint16_t h;
    std::memcpy(&h, base + 2 * i, 2);
    return Half(h);
  }
  case GEMMAC_DTYPE_Q8C: {
    float scale;
    std::memcpy(&scale, base + rows * cols + 4 * r, 4);
    return float(int8_t(base[i])) * scale;
  }
  case GEMMAC_DTYPE_Q4G32R8: {
    const uint8_t *run = base + ((r / 8) * (cols / 32) + c / 32) * 144;
    uint16_t dh;
    std::memcpy(&dh, run + 2 * (r % 8), 2);
    const uint8_t *qs = run + 16 + 16 * (r % 8);
    int64_t j = c % 32;
    int nib = j < 16 ? qs[j] & 15 : qs[j - 16] >> 4;
    return float(nib - 8) * Half(dh);
  }
  default: { // Q4G32, Q4G128
    const bool g32 = dt == GEMMAC_DTYPE_Q4G32;
    const int64_t G = g32 ? 32 : 128, bytes = g32 ? 18 : 68;
    const uint8_t *blk = base + (r * (cols / G) + c / G) * bytes;
    uint16_t dh, mh = 0;
    std::memcpy(&dh, blk, 2);
    if (!g32)
      std::memcpy(&mh, blk + 2, 2);
    const uint8_t *qs = blk + (g32 ? 2 : 4);
    int64_t j = c % G;
    int nib = j < G / 2 ? qs[j] & 15 : qs[j - G / 2] >> 4;
    return g32 ? float(nib - 8) * Half(dh) : float(nib) * Half(dh) + Half(mh);
  }
  }
}

uint16_t ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return uint16_t((bits >> 16) | 0x40); // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
  return uint16_t(bits >> 16);
}

std::string Format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Format(const char *fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, args);
  va_end(args);
  return buf;
}

// An activation operand as the schedule sees it: rows (dim 0, the bucket's
// token count when it is GEMMAC_TOKENS_DIM) by cols (the other dims).
struct Act {
  uint8_t *ptr = nullptr;
  int64_t rows = 0, cols = 0;
  bool tok = false;
};

class Builder {
public:
  Builder(const gemmac_graph_desc &d, Graph *g, Schedule *s, std::string *msg)
      : d_(d), g_(g), s_(s), msg_(msg) {}

  int32_t Node(uint32_t index);

private:
  // ---- operands ----
  const gemmac_tensor &In(uint32_t i) const {
    return d_.operands[node_->first_input + i];
  }
  const gemmac_tensor &Out(uint32_t i) const {
    return d_.operands[node_->first_output + i];
  }
  int64_t Dim(const gemmac_tensor &t, int i) const {
    return t.shape[i] == GEMMAC_TOKENS_DIM ? s_->bucket : t.shape[i];
  }
  Act A(const gemmac_tensor &t) const {
    Act a;
    a.ptr = static_cast<uint8_t *>(t.data);
    a.rows = t.rank > 0 ? Dim(t, 0) : 1;
    a.tok = t.rank > 0 && t.shape[0] == GEMMAC_TOKENS_DIM;
    a.cols = 1;
    for (int i = 1; i < t.rank; ++i)
      a.cols *= Dim(t, i);
    return a;
  }
  // The bf16 device copy of a weight matrix, decoded once per graph; f32
  // and f16 weights also get a lo half so that the MXU's bf16_3x passes
  // keep their precision (bf16 and the 4/8-bit formats' values fit in one
  // bf16 well within their own quantization error).
  struct W {
    const uint16_t *hi = nullptr, *lo = nullptr;
  };
  W Bf16(const gemmac_tensor &t) {
    auto key = std::make_pair(static_cast<const void *>(t.data), t.dtype);
    const int64_t R = t.shape[0], C = t.shape[1];
    const bool split =
        t.dtype == GEMMAC_DTYPE_F32 || t.dtype == GEMMAC_DTYPE_F16;
    auto it = g_->bf16.find(key);
    if (it == g_->bf16.end() || int64_t(it->second.size()) != R * C) {
      std::vector<uint16_t> &w = g_->bf16[key], &lo = g_->bf16_lo[key];
      w.resize(size_t(R * C));
      lo.resize(split ? size_t(R * C) : 0);
      const uint8_t *base = static_cast<const uint8_t *>(t.data);
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < C; ++c) {
          const float f = WeightAt(base, t.dtype, R, C, r, c);
          const uint16_t h = ToBf16(f);
          w[size_t(r * C + c)] = h;
          if (split) {
            uint32_t bits = uint32_t(h) << 16;
            float hf;
            std::memcpy(&hf, &bits, 4);
            lo[size_t(r * C + c)] = ToBf16(f - hf);
          }
        }
    }
    W w;
    w.hi = g_->bf16[key].data();
    std::vector<uint16_t> &lo = g_->bf16_lo[key];
    w.lo = lo.empty() ? nullptr : lo.data();
    return w;
  }
  // The f32 device copy of a norm vector.
  const float *F32(const gemmac_tensor &t) {
    auto key = std::make_pair(static_cast<const void *>(t.data), t.dtype);
    auto it = g_->f32.find(key);
    if (it != g_->f32.end() && int64_t(it->second.size()) == t.shape[0])
      return it->second.data();
    std::vector<float> &w = g_->f32[key];
    w.resize(size_t(t.shape[0]));
    for (int64_t i = 0; i < t.shape[0]; ++i)
      w[size_t(i)] = WeightAt(static_cast<const uint8_t *>(t.data), t.dtype, 1,
                              t.shape[0], 0, i);
    return w.data();
  }

  // ---- VMEM ----
  int64_t Alloc(int64_t bytes) {
    int64_t at = top_;
    top_ += (bytes + kVmemAlign - 1) / kVmemAlign * kVmemAlign;
    if (top_ > kVmemBytes && ok_) {
      ok_ = false;
      *msg_ =
          Format("tpu: %s: node %u (%s) needs %lld bytes of VMEM for bucket "
                 "%lld, expected at most %lld (kVmemBytes)",
                 d_.name ? d_.name : "graph", index_, OpName(node_->desc.op),
                 (long long)top_, (long long)s_->bucket, (long long)kVmemBytes);
    }
    if (top_ > s_->stats.vmem_peak)
      s_->stats.vmem_peak = top_;
    return ok_ ? at : 0;
  }

  // ---- instructions ----
  Instr Base(int64_t row0, int64_t rows, bool tok) const {
    Instr i;
    i.row0 = row0;
    i.rows = rows;
    i.token_bound = tok;
    i.node = int32_t(index_);
    return i;
  }
  void Emit(const Instr &i) {
    if (!ok_)
      return;
    s_->code.push_back(i);
    s_->stats.instructions++;
    if (i.kind == Kind::kDmaIn || i.kind == Kind::kDmaOut)
      s_->stats.dma_bytes += i.rows * i.row_bytes;
    if (i.kind == Kind::kMxu)
      s_->stats.mxu_tiles += (1 + (i.a2 >= 0) + (i.b2 >= 0)) *
                             ((i.rows + kMxuTile - 1) / kMxuTile) *
                             ((i.n + kMxuTile - 1) / kMxuTile) *
                             ((i.k + kMxuTile - 1) / kMxuTile);
  }
  void Dma(Kind kind, const void *host, int64_t vmem, int64_t row0,
           int64_t rows, bool tok, int64_t row_bytes, int64_t host_stride,
           int64_t vmem_stride) {
    Instr i = Base(row0, rows, tok);
    i.kind = kind;
    i.host = static_cast<uint8_t *>(const_cast<void *>(host));
    i.vmem = vmem;
    i.row_bytes = row_bytes;
    i.host_stride = host_stride;
    i.vmem_stride = vmem_stride;
    Emit(i);
  }
  // Rows [row0, row0 + rows) of an activation into a packed VMEM buffer.
  void Load(const Act &a, int64_t vmem, int64_t row0, int64_t rows) {
    Dma(Kind::kDmaIn, a.ptr + row0 * a.cols * 4, vmem, row0, rows, a.tok,
        a.cols * 4, a.cols * 4, a.cols * 4);
  }
  void Store(const Act &a, int64_t vmem, int64_t row0, int64_t rows) {
    Dma(Kind::kDmaOut, a.ptr + row0 * a.cols * 4, vmem, row0, rows, a.tok,
        a.cols * 4, a.cols * 4, a.cols * 4);
  }
  void Vector(Vpu op, int64_t a, int64_t b, int64_t c, int64_t row0,
              int64_t rows, bool tok, int64_t cols, float f0 = 0, float f1 = 0,
              int64_t group = 0) {
    Instr i = Base(row0, rows, tok);
    i.kind = Kind::kVpu;
    i.vop = op;
    i.a = a;
    i.b = b;
    i.c = c;
    i.n = cols;
    i.f0 = f0;
    i.f1 = f1;
    i.group = group;
    i.attrs = node_->desc.attrs;
    Emit(i);
  }
  // C[:, n0:n0+nn] of a rows x K product: the weight rows by DMA, then the
  // MXU. xa holds the activations [rows x K] as bf16 hi parts, their lo
  // parts right after them (LoadX). wb has room for a hi and a lo tile.
  void Matmul(int64_t xa, int64_t row0, int64_t rows, bool tok, int64_t K, W w,
              int64_t n0, int64_t nn, int64_t wb, int64_t c, int64_t ldc) {
    Dma(Kind::kDmaIn, w.hi + n0 * K, wb, 0, nn, false, K * 2, K * 2, K * 2);
    if (w.lo)
      Dma(Kind::kDmaIn, w.lo + n0 * K, wb + kMxuTile * K * 2, 0, nn, false,
          K * 2, K * 2, K * 2);
    Instr i = Base(row0, rows, tok);
    i.kind = Kind::kMxu;
    i.a = xa;
    i.a2 = xa + Lo(rows, K);
    i.b = wb;
    i.b2 = w.lo ? wb + kMxuTile * K * 2 : -1;
    i.c = c;
    i.n = nn;
    i.k = K;
    i.lda = K;
    i.ldb = K;
    i.ldc = ldc;
    Emit(i);
  }
  // Offset of the lo parts within an activation buffer of `rows` x K.
  static int64_t Lo(int64_t rows, int64_t K) {
    return (rows * K * 4 + kVmemAlign - 1) / kVmemAlign * kVmemAlign;
  }
  int64_t XBuf(int64_t rows, int64_t K) { return Alloc(2 * Lo(rows, K)); }
  // Rows per token tile so that `bytes_per_row` of buffers fit in half the
  // VMEM (the rest holds weight tiles and outputs).
  int64_t TileRows(int64_t bytes_per_row) const {
    int64_t m = kMxuTile;
    while (m > 1 && m * bytes_per_row > kVmemBytes / 2)
      m /= 2;
    return m;
  }

  int32_t Embed();
  int32_t Norm();
  int32_t Elementwise();
  int32_t Rope();
  int32_t Linear(bool head);
  int32_t AddRmsNorm();
  int32_t QkvProj();
  int32_t GatedMlp();
  int32_t FinalHead();
  int32_t Attention();
  // x (rows x K) into VMEM, normed with `norm` when present, then rounded.
  int64_t LoadX(const Act &x, const gemmac_tensor *norm, int64_t nw, int64_t r0,
                int64_t mt, bool last = false);
  void Split(int64_t xa, int64_t r0, int64_t mt, bool tok, int64_t K) {
    Vector(Vpu::kSplitBf16, xa, 0, xa, r0, mt, tok, K);
    if (ok_)
      s_->code.back().d = xa + Lo(mt, K);
  }
  int32_t Done() { return ok_ ? GEMMAC_PLUGIN_OK : GEMMAC_PLUGIN_UNSUPPORTED; }

  const gemmac_graph_desc &d_;
  Graph *g_;
  Schedule *s_;
  std::string *msg_;
  const gemmac_graph_node *node_ = nullptr;
  uint32_t index_ = 0;
  int64_t top_ = 0;
  bool ok_ = true;
};

int64_t Builder::LoadX(const Act &x, const gemmac_tensor *norm, int64_t nw,
                       int64_t r0, int64_t mt, bool last) {
  const int64_t K = x.cols;
  int64_t xa = XBuf(mt, K);
  if (last) {
    Instr i = Base(0, 1, false);
    i.kind = Kind::kDmaIn;
    i.last_row = true;
    i.host = x.ptr;
    i.vmem = xa;
    i.row_bytes = i.host_stride = i.vmem_stride = K * 4;
    Emit(i);
  } else {
    Load(x, xa, r0, mt);
  }
  if (norm != nullptr) {
    Vector(Vpu::kRmsNorm, xa, nw, xa, r0, mt, x.tok && !last, K,
           node_->desc.attrs.eps, node_->desc.attrs.offset, K);
  }
  Split(xa, r0, mt, x.tok && !last, K);
  return xa;
}

// A norm vector's f32 copy into VMEM; returns its offset.
#define LOAD_NORM(t, at)                                                       \
  do {                                                                         \
    at = Alloc((t).shape[0] * 4);                                              \
    Dma(Kind::kDmaIn, F32(t), at, 0, 1, false, (t).shape[0] * 4, 0, 0);        \
  } while (0)

int32_t Builder::Embed() {
  Act ids = A(In(0)), y = A(Out(0));
  const gemmac_tensor &table = In(1);
  const uint16_t *w = Bf16(table).hi;
  const int64_t H = table.shape[1];
  const int64_t mt = TileRows(H * 6 + 4);
  int64_t idv = Alloc(mt * 4), rows = Alloc(mt * H * 2),
          out = Alloc(mt * H * 4);
  for (int64_t r0 = 0; r0 < ids.rows; r0 += mt) {
    int64_t m = std::min(mt, ids.rows - r0);
    Dma(Kind::kDmaIn, ids.ptr + r0 * 4, idv, r0, m, ids.tok, 4, 4, 4);
    Instr i = Base(r0, m, ids.tok);
    i.kind = Kind::kGather;
    i.host2 = reinterpret_cast<const uint8_t *>(w);
    i.a = idv;
    i.c = rows;
    i.n = H;
    i.k = table.shape[0];
    Emit(i);
    Vector(Vpu::kBf16Scale, rows, 0, out, r0, m, ids.tok, H,
           node_->desc.attrs.scale);
    Store(y, out, r0, m);
  }
  return Done();
}

int32_t Builder::Norm() {
  Act x = A(In(0)), y = A(Out(0));
  int64_t nw;
  LOAD_NORM(In(1), nw);
  const int64_t mt = TileRows(x.cols * 4);
  int64_t xa = Alloc(mt * x.cols * 4);
  for (int64_t r0 = 0; r0 < x.rows; r0 += mt) {
    int64_t m = std::min(mt, x.rows - r0);
    Load(x, xa, r0, m);
    Vector(Vpu::kRmsNorm, xa, nw, xa, r0, m, x.tok, x.cols,
           node_->desc.attrs.eps, node_->desc.attrs.offset, In(1).shape[0]);
    Store(y, xa, r0, m);
  }
  return Done();
}

int32_t Builder::Elementwise() {
  const int32_t op = node_->desc.op;
  const bool two = op == GEMMAC_OP_MUL || op == GEMMAC_OP_ADD;
  Act a = A(In(0)), y = A(Out(0)), b = two ? A(In(1)) : Act{};
  const int64_t per_row = a.cols * 4 * (two ? 2 : 1);
  int64_t mt = 1;
  while (mt < a.rows && 2 * mt * per_row <= kVmemBytes / 2)
    mt *= 2;
  int64_t va = Alloc(mt * a.cols * 4), vb = two ? Alloc(mt * a.cols * 4) : 0;
  Vpu vop = op == GEMMAC_OP_MUL         ? Vpu::kMul
            : op == GEMMAC_OP_ADD       ? Vpu::kAdd
            : op == GEMMAC_OP_GELU_TANH ? Vpu::kGelu
            : op == GEMMAC_OP_SOFTCAP   ? Vpu::kSoftcap
                                        : Vpu::kScale;
  float f0 = op == GEMMAC_OP_SOFTCAP ? node_->desc.attrs.softcap
                                     : node_->desc.attrs.scale;
  for (int64_t r0 = 0; r0 < a.rows; r0 += mt) {
    int64_t m = std::min(mt, a.rows - r0);
    Load(a, va, r0, m);
    if (two)
      Load(b, vb, r0, m);
    Vector(vop, va, vb, va, r0, m, a.tok, a.cols, f0);
    Store(y, va, r0, m);
  }
  return Done();
}

int32_t Builder::Rope() {
  Act x = A(In(0)), y = A(Out(0));
  const int64_t mt = TileRows(x.cols * 4);
  int64_t xa = Alloc(mt * x.cols * 4);
  for (int64_t r0 = 0; r0 < x.rows; r0 += mt) {
    int64_t m = std::min(mt, x.rows - r0);
    Load(x, xa, r0, m);
    Vector(Vpu::kRope, xa, 0, xa, r0, m, x.tok, x.cols);
    Store(y, xa, r0, m);
  }
  return Done();
}

int32_t Builder::Linear(bool head) {
  Act x = A(In(0)), y = A(Out(0));
  const gemmac_tensor &wt = In(1);
  const int64_t K = x.cols, N = head ? node_->desc.attrs.rows : wt.shape[0];
  const W w = Bf16(wt);
  const int64_t mt = TileRows(K * 8);
  int64_t xa = XBuf(mt, K), wb = Alloc(2 * kMxuTile * K * 2),
          c = Alloc(mt * kMxuTile * 4);
  for (int64_t r0 = 0; r0 < x.rows; r0 += mt) {
    int64_t m = std::min(mt, x.rows - r0);
    Load(x, xa, r0, m);
    Split(xa, r0, m, x.tok, K);
    for (int64_t n0 = 0; n0 < N; n0 += kMxuTile) {
      int64_t nn = std::min(kMxuTile, N - n0);
      Matmul(xa, r0, m, x.tok, K, w, n0, nn, wb, c, kMxuTile);
      Dma(Kind::kDmaOut, y.ptr + (r0 * N + n0) * 4, c, r0, m, y.tok, nn * 4,
          N * 4, kMxuTile * 4);
    }
  }
  return Done();
}

int32_t Builder::AddRmsNorm() {
  Act x = A(In(0)), r = A(In(1)), s = A(Out(0)), h = A(Out(1));
  int64_t nw;
  LOAD_NORM(In(2), nw);
  const int64_t mt = TileRows(x.cols * 8);
  int64_t va = Alloc(mt * x.cols * 4), vb = Alloc(mt * x.cols * 4);
  for (int64_t r0 = 0; r0 < x.rows; r0 += mt) {
    int64_t m = std::min(mt, x.rows - r0);
    Load(x, va, r0, m);
    Load(r, vb, r0, m);
    Vector(Vpu::kAdd, va, vb, va, r0, m, x.tok, x.cols);
    Store(s, va, r0, m);
    Vector(Vpu::kRmsNorm, va, nw, vb, r0, m, x.tok, x.cols,
           node_->desc.attrs.eps, node_->desc.attrs.offset, x.cols);
    Store(h, vb, r0, m);
  }
  return Done();
}

int32_t Builder::QkvProj() {
  Act x = A(In(0));
  const gemmac_op_attrs &at = node_->desc.attrs;
  const int64_t K = x.cols, D = at.head_dim;
  const bool has_norm = In(1).dtype != GEMMAC_DTYPE_NONE;
  int64_t nw = 0, qn = 0, kn = 0;
  if (has_norm)
    LOAD_NORM(In(1), nw);
  if (In(5).dtype != GEMMAC_DTYPE_NONE)
    LOAD_NORM(In(5), qn);
  if (In(6).dtype != GEMMAC_DTYPE_NONE)
    LOAD_NORM(In(6), kn);
  int64_t widest = 0;
  for (int j = 0; j < 3; ++j)
    widest = std::max(widest, In(2 + j).shape[0]);
  const int64_t mt = TileRows((2 * K + widest) * 4);
  int64_t wb = Alloc(2 * kMxuTile * K * 2), out = Alloc(mt * widest * 4);
  for (int64_t r0 = 0; r0 < x.rows; r0 += mt) {
    int64_t m = std::min(mt, x.rows - r0);
    int64_t save = top_;
    int64_t xa = LoadX(x, has_norm ? &In(1) : nullptr, nw, r0, m);
    for (int j = 0; j < 3; ++j) {
      const int64_t N = In(2 + j).shape[0];
      const W w = Bf16(In(2 + j));
      for (int64_t n0 = 0; n0 < N; n0 += kMxuTile)
        Matmul(xa, r0, m, x.tok, K, w, n0, std::min(kMxuTile, N - n0), wb,
               out + n0 * 4, N);
      if (j < 2) {
        if (In(5 + j).dtype != GEMMAC_DTYPE_NONE)
          Vector(Vpu::kRmsNorm, out, j ? kn : qn, out, r0, m, x.tok, N, at.eps,
                 at.offset, D);
        Vector(Vpu::kRope, out, 0, out, r0, m, x.tok, N);
      }
      Store(A(Out(j)), out, r0, m);
    }
    top_ = save;
  }
  return Done();
}

int32_t Builder::GatedMlp() {
  Act x = A(In(0)), y = A(Out(0));
  const int64_t K = x.cols, F = In(2).shape[0];
  const bool has_norm = In(1).dtype != GEMMAC_DTYPE_NONE;
  int64_t nw = 0;
  if (has_norm)
    LOAD_NORM(In(1), nw);
  const W wg = Bf16(In(2)), wu = Bf16(In(3));
  const int64_t mt = TileRows(K * 8);
  int64_t wb = Alloc(2 * kMxuTile * K * 2), g = Alloc(mt * kMxuTile * 4),
          u = Alloc(mt * kMxuTile * 4);
  for (int64_t r0 = 0; r0 < x.rows; r0 += mt) {
    int64_t m = std::min(mt, x.rows - r0);
    int64_t save = top_;
    int64_t xa = LoadX(x, has_norm ? &In(1) : nullptr, nw, r0, m);
    for (int64_t n0 = 0; n0 < F; n0 += kMxuTile) {
      int64_t nn = std::min(kMxuTile, F - n0);
      Matmul(xa, r0, m, x.tok, K, wg, n0, nn, wb, g, kMxuTile);
      Matmul(xa, r0, m, x.tok, K, wu, n0, nn, wb, u, kMxuTile);
      Vector(Vpu::kGeluMul, g, u, u, r0, m, x.tok, kMxuTile);
      Dma(Kind::kDmaOut, y.ptr + (r0 * F + n0) * 4, u, r0, m, y.tok, nn * 4,
          F * 4, kMxuTile * 4);
    }
    top_ = save;
  }
  return Done();
}

int32_t Builder::FinalHead() {
  Act x = A(In(0)), y = A(Out(0));
  const gemmac_op_attrs &at = node_->desc.attrs;
  const int64_t K = x.cols, N = at.rows;
  // One output row for several input rows: the last position only.
  const bool last = y.rows == 1 && !y.tok && (x.tok || x.rows > 1);
  int64_t nw;
  LOAD_NORM(In(1), nw);
  const W w = Bf16(In(2));
  const int64_t mt = last ? 1 : TileRows(K * 8);
  int64_t wb = Alloc(2 * kMxuTile * K * 2), c = Alloc(mt * kMxuTile * 4);
  const int64_t rows = last ? 1 : x.rows;
  for (int64_t r0 = 0; r0 < rows; r0 += mt) {
    int64_t m = std::min(mt, rows - r0);
    int64_t save = top_;
    int64_t xa = LoadX(x, &In(1), nw, r0, m, last);
    const bool tok = x.tok && !last;
    for (int64_t n0 = 0; n0 < N; n0 += kMxuTile) {
      int64_t nn = std::min(kMxuTile, N - n0);
      Matmul(xa, r0, m, tok, K, w, n0, nn, wb, c, kMxuTile);
      if (at.softcap > 0)
        Vector(Vpu::kSoftcap, c, 0, c, r0, m, tok, kMxuTile, at.softcap);
      Dma(Kind::kDmaOut, y.ptr + (r0 * N + n0) * 4, c, r0, m, tok, nn * 4,
          N * 4, kMxuTile * 4);
    }
    top_ = save;
  }
  return Done();
}

int32_t Builder::Attention() {
  Act q = A(In(0)), k = A(In(1)), v = A(In(2)), y = A(Out(0));
  const gemmac_op_attrs &at = node_->desc.attrs;
  const int64_t D = at.head_dim, HD = q.cols, KVD = k.cols;
  const int64_t mt = TileRows(HD * 8 + kMxuTile * 4 + D * 4 + 8);
  // The new rows go into the cache first, all of them, as docs/ops.md says.
  for (int64_t r0 = 0; r0 < k.rows; r0 += mt) {
    Instr i = Base(r0, std::min(mt, k.rows - r0), k.tok);
    i.kind = Kind::kKvWrite;
    i.host = k.ptr + r0 * KVD * 4;
    i.host2 = v.ptr + r0 * KVD * 4;
    i.attrs = at;
    Emit(i);
  }
  int64_t qa = Alloc(mt * HD * 4), out = Alloc(mt * HD * 4),
          kc = Alloc(kMxuTile * D * 4), vc = Alloc(kMxuTile * D * 4),
          sc = Alloc(mt * kMxuTile * 4), ml = Alloc(mt * 8),
          acc = Alloc(mt * D * 4);
  for (int64_t r0 = 0; r0 < q.rows; r0 += mt) {
    int64_t m = std::min(mt, q.rows - r0);
    Load(q, qa, r0, m);
    Vector(Vpu::kRoundBf16, qa, 0, qa, r0, m, q.tok, HD);
    Instr i = Base(r0, m, q.tok);
    i.kind = Kind::kAttention;
    i.a = qa;
    i.b = out;
    i.c = kc;
    i.d = vc;
    i.e = sc;
    i.lda = ml;
    i.ldc = acc;
    i.attrs = at;
    Emit(i);
    Store(y, out, r0, m);
  }
  return Done();
}

int32_t Builder::Node(uint32_t index) {
  index_ = index;
  node_ = &d_.nodes[index];
  top_ = 0;
  switch (node_->desc.op) {
  case GEMMAC_OP_EMBED:
    return Embed();
  case GEMMAC_OP_RMS_NORM:
    return Norm();
  case GEMMAC_OP_LINEAR:
    return Linear(false);
  case GEMMAC_OP_LM_HEAD:
    return Linear(true);
  case GEMMAC_OP_ROPE:
    return Rope();
  case GEMMAC_OP_ATTENTION:
    return Attention();
  case GEMMAC_OP_ADD_RMS_NORM:
    return AddRmsNorm();
  case GEMMAC_OP_QKV_PROJ:
    return QkvProj();
  case GEMMAC_OP_GATED_MLP:
    return GatedMlp();
  case GEMMAC_OP_FINAL_HEAD:
    return FinalHead();
  default:
    return Elementwise();
  }
}

// Shape checks of one node against its op (docs/ops.md), with the bucket's
// token count in place of GEMMAC_TOKENS_DIM: a caller's mistake becomes a
// message, never a wild read.
std::string CheckShapes(const gemmac_graph_desc &d, const gemmac_graph_node &n,
                        int64_t B) {
  auto in = [&](uint32_t i) -> const gemmac_tensor & {
    return d.operands[n.first_input + i];
  };
  auto out = [&](uint32_t i) -> const gemmac_tensor & {
    return d.operands[n.first_output + i];
  };
  auto dim = [&](const gemmac_tensor &t, int i) {
    return t.shape[i] == GEMMAC_TOKENS_DIM ? B : t.shape[i];
  };
  for (uint32_t i = 0; i < n.num_inputs + n.num_outputs; ++i) {
    const gemmac_tensor &t = i < n.num_inputs ? in(i) : out(i - n.num_inputs);
    if (t.dtype == GEMMAC_DTYPE_NONE)
      continue;
    if (t.data == nullptr || t.rank < 1 || t.rank > GEMMAC_MAX_RANK)
      return Format("%s %u has data %p and rank %d, expected data and rank "
                    "1..%d",
                    i < n.num_inputs ? "input" : "output",
                    i < n.num_inputs ? i : i - n.num_inputs, t.data, t.rank,
                    GEMMAC_MAX_RANK);
    for (int j = 0; j < t.rank; ++j)
      if (dim(t, j) < 0)
        return Format("operand dim %d is %lld, expected >= 0 or the token "
                      "dim",
                      j, (long long)t.shape[j]);
  }
  auto is2 = [&](const gemmac_tensor &t, int64_t r, int64_t c) {
    return t.rank == 2 && (r < 0 || dim(t, 0) == r) &&
           (c < 0 || dim(t, 1) == c);
  };
  auto is1 = [&](const gemmac_tensor &t, int64_t c) {
    return t.rank == 1 && dim(t, 0) == c;
  };
  auto same = [&](const gemmac_tensor &a, const gemmac_tensor &b) {
    if (a.rank != b.rank)
      return false;
    for (int j = 0; j < a.rank; ++j)
      if (dim(a, j) != dim(b, j))
        return false;
    return true;
  };
  auto weight = [&](const gemmac_tensor &t, int64_t r, int64_t c) {
    return is2(t, r, c) &&
           (IsFloatWeight(t.dtype) ||
            gemmac_weight_bytes(t.dtype, t.shape[0], t.shape[1]) >= 0);
  };
  const gemmac_op_attrs &a = n.desc.attrs;
  const int64_t T = in(0).rank > 0 ? dim(in(0), 0) : -1;
  const int64_t K = in(0).rank > 1 ? dim(in(0), 1) : -1;
  const int64_t D = a.head_dim;
  const char *bad = nullptr;
  switch (n.desc.op) {
  case GEMMAC_OP_EMBED:
    if (in(0).rank != 1 || !weight(in(1), -1, -1) ||
        !is2(out(0), T, in(1).shape[1]))
      bad = "tokens [T], table [V,H], output [T,H]";
    break;
  case GEMMAC_OP_RMS_NORM:
    if (!is2(in(0), -1, -1) || in(1).rank != 1 || !same(out(0), in(0)) ||
        in(1).shape[0] <= 0 || K % in(1).shape[0] != 0)
      bad = "x [T,N], w [D] with N % D == 0, output like x";
    break;
  case GEMMAC_OP_LINEAR:
  case GEMMAC_OP_LM_HEAD: {
    const bool head = n.desc.op == GEMMAC_OP_LM_HEAD;
    if (!is2(in(0), -1, -1) || !weight(in(1), -1, K) ||
        !is2(out(0), T, head ? a.rows : in(1).shape[0]) ||
        (head && a.rows > in(1).shape[0]))
      bad = "x [T,K], w [N,K] fitting its format's groups, output [T,N] "
            "(lm_head: [T,rows], rows <= N)";
    break;
  }
  case GEMMAC_OP_ROPE:
    if (!is2(in(0), -1, -1) || !same(out(0), in(0)) || K % D != 0)
      bad = "x [T,H*head_dim], output like x";
    break;
  case GEMMAC_OP_ATTENTION:
    if (!is2(in(0), -1, int64_t(a.num_heads) * D) ||
        !is2(in(1), T, int64_t(a.num_kv_heads) * D) ||
        !is2(in(2), T, int64_t(a.num_kv_heads) * D) || !same(out(0), in(0)))
      bad = "q [T,H*D], k and v [T,KV*D], output like q";
    break;
  case GEMMAC_OP_MUL:
  case GEMMAC_OP_ADD:
    if (!same(in(1), in(0)) || !same(out(0), in(0)))
      bad = "a, b and output of one shape";
    break;
  case GEMMAC_OP_GELU_TANH:
  case GEMMAC_OP_SOFTCAP:
  case GEMMAC_OP_SCALE:
    if (!same(out(0), in(0)))
      bad = "output shaped like x";
    break;
  case GEMMAC_OP_ADD_RMS_NORM:
    if (!is2(in(0), -1, -1) || !same(in(1), in(0)) || !is1(in(2), K) ||
        !same(out(0), in(0)) || !same(out(1), in(0)))
      bad = "x, y [T,N], w [N], outputs s and h [T,N]";
    break;
  case GEMMAC_OP_QKV_PROJ: {
    const int64_t HD = int64_t(a.num_heads) * D,
                  KVD = int64_t(a.num_kv_heads) * D;
    auto opt = [&](uint32_t i, int64_t c) {
      return in(i).dtype == GEMMAC_DTYPE_NONE || is1(in(i), c);
    };
    if (!is2(in(0), -1, -1) || !opt(1, K) || !weight(in(2), HD, K) ||
        !weight(in(3), KVD, K) || !weight(in(4), KVD, K) || !opt(5, D) ||
        !opt(6, D) || !is2(out(0), T, HD) || !is2(out(1), T, KVD) ||
        !is2(out(2), T, KVD))
      bad = "x [T,K], norm [K], wq [H*D,K], wk and wv [KV*D,K], q_norm and "
            "k_norm [D], outputs [T,H*D], [T,KV*D], [T,KV*D]";
    break;
  }
  case GEMMAC_OP_GATED_MLP:
    if (!is2(in(0), -1, -1) ||
        !(in(1).dtype == GEMMAC_DTYPE_NONE || is1(in(1), K)) ||
        !weight(in(2), -1, K) || !weight(in(3), in(2).shape[0], K) ||
        !is2(out(0), T, in(2).shape[0]))
      bad = "x [T,K], norm [K], w_gate and w_up [F,K], output [T,F]";
    break;
  case GEMMAC_OP_FINAL_HEAD:
    if (!is2(in(0), -1, -1) || !is1(in(1), K) || !weight(in(2), -1, K) ||
        a.rows > in(2).shape[0] ||
        !(is2(out(0), T, a.rows) || is2(out(0), 1, a.rows)))
      bad = "x [T,H], norm [H], table [V,H], output [T,rows] or [1,rows], "
            "rows <= V";
    break;
  default:
    break;
  }
  return bad ? Format("operand shapes do not match, expected %s", bad) : "";
}

} // namespace

const char *OpName(int32_t op) { return gemmac_sdk::OpName(op); }

bool Implemented(const gemmac_op_desc &d, std::string *why) {
  // The op set's rules (plugins/sdk/checks); the caller names the node.
  gemmac_plugin_error err{};
  err.struct_size = sizeof(err);
  if (gemmac_sdk::CheckDesc(nullptr, &d, &err) == GEMMAC_PLUGIN_OK)
    return true;
  *why = err.message;
  return false;
}

int32_t Lower(const gemmac_graph_desc &d, Graph *g, std::string *message) {
  const char *fname = d.name ? d.name : "graph";
  g->name = fname;
  for (uint32_t i = 0; i < d.num_nodes; ++i) {
    const gemmac_graph_node &n = d.nodes[i];
    std::string why;
    if (!Implemented(n.desc, &why)) {
      *message = Format("tpu: %s: node %u (%s) is not implemented: %s", fname,
                        i, OpName(n.desc.op), why.c_str());
      return GEMMAC_PLUGIN_UNSUPPORTED;
    }
    if (uint64_t(n.first_input) + n.num_inputs > d.num_operands ||
        uint64_t(n.first_output) + n.num_outputs > d.num_operands ||
        n.num_inputs != n.desc.num_inputs ||
        n.num_outputs != n.desc.num_outputs) {
      *message =
          Format("tpu: %s: node %u (%s) has operands [%u,+%u) and "
                 "[%u,+%u), expected within the %u operands and the "
                 "counts of its desc",
                 fname, i, OpName(n.desc.op), n.first_input, n.num_inputs,
                 n.first_output, n.num_outputs, d.num_operands);
      return GEMMAC_PLUGIN_INVALID_ARGUMENT;
    }
    for (uint32_t j = 0; j < n.num_inputs; ++j)
      if (d.operands[n.first_input + j].dtype != n.desc.input_dtypes[j]) {
        *message =
            Format("tpu: %s: node %u (%s) input %u has dtype %d, "
                   "expected %d as its desc says",
                   fname, i, OpName(n.desc.op), j,
                   d.operands[n.first_input + j].dtype, n.desc.input_dtypes[j]);
        return GEMMAC_PLUGIN_INVALID_ARGUMENT;
      }
    g->node_names.push_back(OpName(n.desc.op));
  }
  for (uint32_t b = 0; b < d.num_buckets; ++b) {
    Schedule s;
    s.bucket = d.buckets[b];
    if (s.bucket < 1 || (b > 0 && s.bucket <= d.buckets[b - 1])) {
      *message = Format("tpu: %s: bucket %u is %lld, expected >= 1 and above "
                        "the one before",
                        fname, b, (long long)s.bucket);
      return GEMMAC_PLUGIN_INVALID_ARGUMENT;
    }
    Builder builder(d, g, &s, message);
    for (uint32_t i = 0; i < d.num_nodes; ++i) {
      std::string why = CheckShapes(d, d.nodes[i], s.bucket);
      if (!why.empty()) {
        *message = Format("tpu: %s: node %u (%s), bucket %lld: %s", fname, i,
                          OpName(d.nodes[i].desc.op), (long long)s.bucket,
                          why.c_str());
        return GEMMAC_PLUGIN_INVALID_ARGUMENT;
      }
      if (int32_t rc = builder.Node(i); rc != GEMMAC_PLUGIN_OK)
        return rc;
    }
    g->schedules.push_back(std::move(s));
  }
  return GEMMAC_PLUGIN_OK;
}

} // namespace gemmac::tpu
