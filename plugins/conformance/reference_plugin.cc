// The reference backend plugin: every op of docs/ops.md, the fused ones
// included, written the plainest way (no threads, no SIMD), reading every
// weight dtype (the quantized ones decoded element by element) and f32 or
// int8 KV caches. Two users:
//   - the conformance suite (gemmac-conformance), which compares a plugin
//     under test with this one through the ABI only, and runs its ABI-rule
//     checks on it too (so it answers supports() honestly, refuses what it
//     cannot run with a message, and checks operands at launch);
//   - the runtime's tests, so the VM and sessions can be tested before, and
//     independently of, backends/cpu. It holds the runtime to the ABI's
//     contract for absent inputs: GEMMAC_DTYPE_NONE, data NULL, rank 0, and
//     only in an optional slot.
// Built as libgemmac_testref.so (exports gemmac_plugin_entry) and linked
// statically into test binaries under GEMMAC_TESTREF_ENTRY.
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "gemmac/host_memory.h"
#include "gemmac/op_checks.h"
#include "gemmac/plugin.h"

#ifndef GEMMAC_TESTREF_ENTRY
#define GEMMAC_TESTREF_ENTRY gemmac_plugin_entry
#endif

namespace {

struct Backend {
  int launches = 0;
};
struct Kernel {
  int32_t op;
  gemmac_op_attrs a;
};

float Half(uint16_t h) {
  int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
  float v = exp == 0    ? std::ldexp(float(man), -24)
            : exp == 31 ? (man ? NAN : INFINITY)
                        : std::ldexp(float(man | 1024), exp - 25);
  return sign ? -v : v;
}

float Load(const void *p, int32_t dtype, int64_t i) {
  if (dtype == GEMMAC_DTYPE_F32)
    return static_cast<const float *>(p)[i];
  uint16_t h = static_cast<const uint16_t *>(p)[i];
  if (dtype == GEMMAC_DTYPE_BF16) {
    uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  return Half(h); // IEEE half
}

// Element i (row-major) of a weight of any dtype: the block formats of
// plugin.h / docs/quantization.md are decoded one element at a time.
float WeightAt(const gemmac_tensor &w, int64_t i) {
  if (w.dtype != GEMMAC_DTYPE_Q8C && w.dtype != GEMMAC_DTYPE_Q4G32 &&
      w.dtype != GEMMAC_DTYPE_Q4G128 && w.dtype != GEMMAC_DTYPE_Q4G32R8)
    return Load(w.data, w.dtype, i);
  const uint8_t *base = static_cast<const uint8_t *>(w.data);
  int64_t rows = w.shape[0], cols = w.shape[1];
  int64_t r = i / cols, c = i % cols;
  if (w.dtype == GEMMAC_DTYPE_Q4G32R8) {
    // Q4G32 blocks in 144-byte runs of 8 rows: 8 f16 d, then 8 qs[16].
    const uint8_t *run = base + ((r / 8) * (cols / 32) + c / 32) * 144;
    uint16_t dh;
    std::memcpy(&dh, run + 2 * (r % 8), 2);
    const uint8_t *qs = run + 16 + 16 * (r % 8);
    int64_t j = c % 32;
    int nib = j < 16 ? qs[j] & 15 : qs[j - 16] >> 4;
    return float(nib - 8) * Half(dh);
  }
  if (w.dtype == GEMMAC_DTYPE_Q8C) {
    float scale;
    std::memcpy(&scale, base + rows * cols + 4 * r, 4);
    return float(int8_t(base[r * cols + c])) * scale;
  }
  bool g32 = w.dtype == GEMMAC_DTYPE_Q4G32;
  int64_t G = g32 ? 32 : 128, block_bytes = g32 ? 18 : 68;
  const uint8_t *blk = base + (r * (cols / G) + c / G) * block_bytes;
  uint16_t dh, mh = 0;
  std::memcpy(&dh, blk, 2);
  if (!g32)
    std::memcpy(&mh, blk + 2, 2);
  const uint8_t *qs = blk + (g32 ? 2 : 4);
  int64_t j = c % G;
  int nib = j < G / 2 ? qs[j] & 15 : qs[j - G / 2] >> 4;
  return g32 ? float(nib - 8) * Half(dh) : float(nib) * Half(dh) + Half(mh);
}

using gemmac_sdk::Fail;
using gemmac_sdk::IsOptional;
using gemmac_sdk::OpName;

bool Absent(const gemmac_tensor &t) { return t.dtype == GEMMAC_DTYPE_NONE; }

int Fail(gemmac_plugin_error *e, const char *msg) {
  return Fail(e, GEMMAC_PLUGIN_INVALID_ARGUMENT, "%s", msg);
}

// The op set's rules (plugins/sdk/checks), with this plugin's name.
int32_t CheckDesc(const gemmac_op_desc *d, gemmac_plugin_error *err) {
  return gemmac_sdk::CheckDesc("testref", d, err);
}
int32_t CheckOperands(int32_t op, const gemmac_op_attrs &a,
                      const gemmac_tensor *in, uint32_t num_in,
                      const gemmac_tensor *out, uint32_t num_out,
                      const gemmac_exec_context *ctx,
                      gemmac_plugin_error *err) {
  return gemmac_sdk::CheckOperands("testref", op, a, in, num_in, out, num_out,
                                   ctx, err);
}

int32_t Create(const gemmac_backend_options *, gemmac_backend **out,
               gemmac_plugin_error *) {
  *out = reinterpret_cast<gemmac_backend *>(new Backend());
  return GEMMAC_PLUGIN_OK;
}
void Destroy(gemmac_backend *b) { delete reinterpret_cast<Backend *>(b); }
int32_t Supports(gemmac_backend *, const gemmac_op_desc *d) {
  return CheckDesc(d, nullptr) == GEMMAC_PLUGIN_OK;
}
int32_t Prepare(gemmac_backend *, const gemmac_op_desc *d, gemmac_kernel **out,
                gemmac_plugin_error *err) {
  // The contract of absent inputs: GEMMAC_DTYPE_NONE only in optional slots.
  for (uint32_t i = 0; d && d->input_dtypes && i < d->num_inputs; ++i)
    if (d->input_dtypes[i] == GEMMAC_DTYPE_NONE && !IsOptional(d->op, i))
      return Fail(err, "prepare: a required input has GEMMAC_DTYPE_NONE");
  if (int32_t rc = CheckDesc(d, err); rc != GEMMAC_PLUGIN_OK)
    return rc;
  auto *k = new (std::nothrow) Kernel{d->op, d->attrs};
  if (k == nullptr)
    return Fail(err, GEMMAC_PLUGIN_OUT_OF_MEMORY,
                "testref: prepare: out of "
                "memory");
  *out = reinterpret_cast<gemmac_kernel *>(k);
  return GEMMAC_PLUGIN_OK;
}
void Release(gemmac_backend *, gemmac_kernel *k) {
  delete reinterpret_cast<Kernel *>(k);
}
void *Alloc(gemmac_backend *, size_t bytes, size_t alignment) {
  if (alignment & (alignment - 1))
    return nullptr; // not a power of two
  if (alignment < sizeof(void *))
    alignment = sizeof(void *);
  // A request near SIZE_MAX must fail, not wrap around to a small block.
  if (bytes > SIZE_MAX - alignment)
    return nullptr;
  size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  return std::aligned_alloc(alignment, rounded ? rounded : alignment);
}
void Free(gemmac_backend *, void *p) { std::free(p); }

int64_t Elements(const gemmac_tensor &t) {
  int64_t n = 1;
  for (int i = 0; i < t.rank; ++i)
    n *= t.shape[i];
  return n;
}

// ---- building blocks of the ops, on rows of f32 ----------------------------

// y[t] = rms_norm(x[t]) * (offset + w) over groups of dim(w) elements.
void RmsNormRows(const float *x, int64_t T, int64_t N, const gemmac_tensor &w,
                 float eps, float offset, float *y) {
  int64_t D = w.shape[0];
  for (int64_t t = 0; t < T; ++t)
    for (int64_t g = 0; g < N; g += D) {
      double ss = 0;
      for (int64_t i = 0; i < D; ++i)
        ss += double(x[t * N + g + i]) * x[t * N + g + i];
      float r = 1.0f / std::sqrt(float(ss / D) + eps);
      for (int64_t i = 0; i < D; ++i)
        y[t * N + g + i] = x[t * N + g + i] * r * (offset + WeightAt(w, i));
    }
}

// y[t, n] = x[t] . w[n] for the first N rows of w.
void MatmulRows(const float *x, int64_t T, int64_t K, const gemmac_tensor &w,
                int64_t N, float *y) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t i = 0; i < K; ++i)
        acc += double(x[t * K + i]) * WeightAt(w, n * K + i);
      y[t * N + n] = float(acc);
    }
}

void RopeRows(const float *x, int64_t T, int64_t W, const gemmac_op_attrs &a,
              int64_t past, float *y) {
  int64_t D = a.head_dim, half = D / 2;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < W / D; ++h)
      for (int64_t i = 0; i < half; ++i) {
        double ang = double(past + t) / a.rope_scale *
                     std::pow(double(a.theta), -2.0 * i / D);
        const float *xs = x + t * W + h * D;
        float *ys = y + t * W + h * D;
        float x0 = xs[i], x1 = xs[i + half];
        ys[i] = float(x0 * std::cos(ang) - x1 * std::sin(ang));
        ys[i + half] = float(x1 * std::cos(ang) + x0 * std::sin(ang));
      }
}

float Gelu(float v) {
  return 0.5f * v *
         (1.0f + std::tanh(0.7978845608f * (v + 0.044715f * v * v * v)));
}

// The KV cache rows of one layer, f32 or int8 with per-(row, head) scales.
struct KvView {
  const gemmac_kv_cache &c;
  int64_t KV, D;
  bool i8() const { return c.dtype == GEMMAC_DTYPE_I8; }
  // Writes the KV*D values of one position into row `row` of k or v.
  void Put(bool is_v, int64_t row, const float *x) const {
    if (!i8()) {
      float *dst = static_cast<float *>(is_v ? c.v : c.k) + row * KV * D;
      std::memcpy(dst, x, sizeof(float) * KV * D);
      return;
    }
    int8_t *dst = static_cast<int8_t *>(is_v ? c.v : c.k) + row * KV * D;
    float *scales = (is_v ? c.v_scale : c.k_scale) + row * KV;
    for (int64_t g = 0; g < KV; ++g) {
      float mx = 0;
      for (int64_t i = 0; i < D; ++i)
        mx = std::fmax(mx, std::fabs(x[g * D + i]));
      float scale = mx / 127.0f;
      scales[g] = scale;
      for (int64_t i = 0; i < D; ++i) {
        float q = scale > 0 ? std::nearbyint(x[g * D + i] / scale) : 0.0f;
        dst[g * D + i] = int8_t(std::fmax(-127.0f, std::fmin(127.0f, q)));
      }
    }
  }
  float Get(bool is_v, int64_t row, int64_t g, int64_t i) const {
    int64_t at = (row * KV + g) * D + i;
    if (!i8())
      return static_cast<const float *>(is_v ? c.v : c.k)[at];
    const float *scales = is_v ? c.v_scale : c.k_scale;
    return float(static_cast<const int8_t *>(is_v ? c.v : c.k)[at]) *
           scales[row * KV + g];
  }
};

int32_t Attention(const gemmac_op_attrs &a, const gemmac_tensor *in, float *y,
                  const gemmac_exec_context *ctx, gemmac_plugin_error *err) {
  if (a.layer < 0 || uint32_t(a.layer) >= ctx->num_kv)
    return Fail(err, "attention: layer out of range");
  const gemmac_kv_cache &kv = ctx->kv[a.layer];
  if (kv.dtype == GEMMAC_DTYPE_I8 &&
      (kv.struct_size < offsetof(gemmac_kv_cache, v_scale) + sizeof(float *) ||
       kv.k_scale == nullptr || kv.v_scale == nullptr))
    return Fail(err, "attention: int8 KV cache without k_scale/v_scale");
  if (kv.dtype != GEMMAC_DTYPE_I8 && kv.dtype != GEMMAC_DTYPE_F32)
    return Fail(err, "attention: KV cache dtype is neither f32 nor i8");
  const float *q = static_cast<const float *>(in[0].data);
  const float *kin = static_cast<const float *>(in[1].data);
  const float *vin = static_cast<const float *>(in[2].data);
  const int64_t T = ctx->tokens;
  int64_t H = a.num_heads, KV = a.num_kv_heads, D = a.head_dim;
  KvView cache{kv, KV, D};
  for (int64_t t = 0; t < T; ++t) {
    int64_t row = (ctx->past + t) % kv.capacity;
    cache.Put(false, row, kin + t * KV * D);
    cache.Put(true, row, vin + t * KV * D);
  }
  std::vector<double> s(ctx->past + T);
  for (int64_t t = 0; t < T; ++t) {
    int64_t p = ctx->past + t;
    int64_t lo = a.window > 0 ? p - a.window + 1 : 0;
    if (lo < 0)
      lo = 0;
    if (p - lo + 1 > kv.capacity)
      return Fail(err, "attention: visible keys exceed the cache");
    for (int64_t h = 0; h < H; ++h) {
      int64_t g = h / (H / KV);
      double mx = -INFINITY;
      for (int64_t j = lo; j <= p; ++j) {
        double d = 0;
        for (int64_t i = 0; i < D; ++i)
          d += double(q[(t * H + h) * D + i]) *
               cache.Get(false, j % kv.capacity, g, i);
        d *= a.scale;
        if (a.softcap > 0)
          d = a.softcap * std::tanh(d / a.softcap);
        s[j] = d;
        if (d > mx)
          mx = d;
      }
      double sum = 0;
      for (int64_t j = lo; j <= p; ++j)
        sum += (s[j] = std::exp(s[j] - mx));
      for (int64_t i = 0; i < D; ++i) {
        double acc = 0;
        for (int64_t j = lo; j <= p; ++j)
          acc += s[j] * cache.Get(true, j % kv.capacity, g, i);
        y[(t * H + h) * D + i] = float(acc / sum);
      }
    }
  }
  return GEMMAC_PLUGIN_OK;
}

int32_t Launch(gemmac_backend *b, gemmac_kernel *kp, const gemmac_tensor *in,
               uint32_t num_in, const gemmac_tensor *out, uint32_t num_out,
               const gemmac_exec_context *ctx, gemmac_plugin_error *err) {
  if (b == nullptr || kp == nullptr)
    return Fail(err, "testref: launch: backend or kernel is null");
  reinterpret_cast<Backend *>(b)->launches++;
  if (ctx && ctx->cancel && *ctx->cancel)
    return GEMMAC_PLUGIN_CANCELLED;
  const Kernel &k = *reinterpret_cast<Kernel *>(kp);
  const gemmac_op_attrs &a = k.a;
  if (int32_t rc = CheckOperands(k.op, a, in, num_in, out, num_out, ctx, err);
      rc != GEMMAC_PLUGIN_OK)
    return rc;
  // An absent input is exactly {data NULL, rank 0, GEMMAC_DTYPE_NONE}, and
  // only in an optional slot; anything else is a runtime bug.
  for (uint32_t i = 0; i < num_in; ++i) {
    bool none = Absent(in[i]);
    if ((none || in[i].data == nullptr) &&
        !(none && in[i].data == nullptr && in[i].rank == 0 &&
          IsOptional(k.op, i)))
      return Fail(err, "launch: malformed or misplaced absent input");
  }
  float *y = static_cast<float *>(out[0].data);
  const int64_t T = ctx->tokens;
  switch (k.op) {
  case GEMMAC_OP_EMBED: {
    const int32_t *ids = static_cast<const int32_t *>(in[0].data);
    int64_t V = in[1].shape[0], H = in[1].shape[1];
    for (int64_t t = 0; t < T; ++t) {
      if (ids[t] < 0 || ids[t] >= V)
        return Fail(err, "embed: token id out of range");
      for (int64_t h = 0; h < H; ++h)
        y[t * H + h] = WeightAt(in[1], ids[t] * H + h) * a.scale;
    }
    break;
  }
  case GEMMAC_OP_RMS_NORM:
    RmsNormRows(static_cast<const float *>(in[0].data), T, in[0].shape[1],
                in[1], a.eps, a.offset, y);
    break;
  case GEMMAC_OP_LINEAR:
  case GEMMAC_OP_LM_HEAD:
    MatmulRows(static_cast<const float *>(in[0].data), T, in[0].shape[1], in[1],
               k.op == GEMMAC_OP_LINEAR ? in[1].shape[0] : a.rows, y);
    break;
  case GEMMAC_OP_ROPE:
    RopeRows(static_cast<const float *>(in[0].data), T, in[0].shape[1], a,
             ctx->past, y);
    break;
  case GEMMAC_OP_ATTENTION:
    return Attention(a, in, y, ctx, err);
  case GEMMAC_OP_ADD_RMS_NORM: {
    const float *x = static_cast<const float *>(in[0].data);
    const float *r = static_cast<const float *>(in[1].data);
    int64_t N = in[0].shape[1];
    for (int64_t i = 0; i < T * N; ++i)
      y[i] = x[i] + r[i];
    RmsNormRows(y, T, N, in[2], a.eps, a.offset,
                static_cast<float *>(out[1].data));
    break;
  }
  case GEMMAC_OP_QKV_PROJ: {
    int64_t K = in[0].shape[1], D = a.head_dim;
    const float *x = static_cast<const float *>(in[0].data);
    std::vector<float> xn;
    if (!Absent(in[1])) {
      xn.resize(T * K);
      RmsNormRows(x, T, K, in[1], a.eps, a.offset, xn.data());
      x = xn.data();
    }
    for (int j = 0; j < 3; ++j) {
      float *o = static_cast<float *>(out[j].data);
      int64_t N = in[2 + j].shape[0];
      MatmulRows(x, T, K, in[2 + j], N, o);
      if (j == 2)
        break; // v: no norm, no rope
      std::vector<float> tmp(o, o + T * N);
      if (!Absent(in[5 + j]))
        RmsNormRows(tmp.data(), T, N, in[5 + j], a.eps, a.offset, tmp.data());
      gemmac_op_attrs ra = a;
      ra.head_dim = int32_t(D);
      RopeRows(tmp.data(), T, N, ra, ctx->past, o);
    }
    break;
  }
  case GEMMAC_OP_GATED_MLP: {
    int64_t K = in[0].shape[1], F = in[2].shape[0];
    const float *x = static_cast<const float *>(in[0].data);
    std::vector<float> xn, g(T * F);
    if (!Absent(in[1])) {
      xn.resize(T * K);
      RmsNormRows(x, T, K, in[1], a.eps, a.offset, xn.data());
      x = xn.data();
    }
    MatmulRows(x, T, K, in[2], F, g.data());
    MatmulRows(x, T, K, in[3], F, y);
    for (int64_t i = 0; i < T * F; ++i)
      y[i] *= Gelu(g[i]);
    break;
  }
  case GEMMAC_OP_FINAL_HEAD: {
    // One output row: only the last position's logits.
    int64_t H = in[0].shape[1];
    int64_t rows_out = out[0].shape[0], first = T - rows_out;
    const float *x = static_cast<const float *>(in[0].data) + first * H;
    std::vector<float> xn(rows_out * H);
    RmsNormRows(x, rows_out, H, in[1], a.eps, a.offset, xn.data());
    MatmulRows(xn.data(), rows_out, H, in[2], a.rows, y);
    if (a.softcap > 0)
      for (int64_t i = 0; i < rows_out * a.rows; ++i)
        y[i] = a.softcap * std::tanh(y[i] / a.softcap);
    break;
  }
  default: {
    const float *x = static_cast<const float *>(in[0].data);
    int64_t n = Elements(out[0]);
    for (int64_t i = 0; i < n; ++i) {
      float v = x[i];
      switch (k.op) {
      case GEMMAC_OP_GELU_TANH:
        v = Gelu(v);
        break;
      case GEMMAC_OP_MUL:
        v *= static_cast<const float *>(in[1].data)[i];
        break;
      case GEMMAC_OP_ADD:
        v += static_cast<const float *>(in[1].data)[i];
        break;
      case GEMMAC_OP_SOFTCAP:
        v = a.softcap * std::tanh(v / a.softcap);
        break;
      case GEMMAC_OP_SCALE:
        v *= a.scale;
        break;
      default:
        return Fail(err, "unknown op");
      }
      y[i] = v;
    }
  }
  }
  return GEMMAC_PLUGIN_OK;
}

// ABI 1.5: the host, whose memory alloc() draws from.
int32_t DeviceInfo(gemmac_backend *, gemmac_device_info *info,
                   gemmac_plugin_error *err) {
  if (info == nullptr || info->struct_size < sizeof(info->struct_size))
    return Fail(err, "device_info: info is null or its struct_size is 0");
  gemmac_device_info d;
  std::memset(&d, 0, sizeof(d));
  d.kind = GEMMAC_DEVICE_CPU;
  d.flags = GEMMAC_DEVICE_HOST_ADDRESSABLE;
#ifdef GEMMAC_TESTREF_GRAPH
  d.flags |= GEMMAC_DEVICE_GRAPH_MODE;
#endif
  gemmac_sdk::HostMemory(&d.memory_bytes, &d.memory_available_bytes);
  std::snprintf(d.name, sizeof(d.name), "host (reference kernels)");
  gemmac_sdk::CopyWhatFits(d, info, info->struct_size);
  return GEMMAC_PLUGIN_OK;
}

#ifdef GEMMAC_TESTREF_GRAPH
// Graph mode (ABI 1.4), the plainest way: a compiled function is its nodes'
// kernels, prepared once and launched in order on the operands the runtime
// keeps (their token dimensions already bound). It shows a graph-mode
// plugin author the contract, and lets the runtime's tests run one function
// both ways with the same arithmetic.
struct Graph {
  std::vector<gemmac_graph_node> nodes;
  std::vector<gemmac_kernel *> kernels;
  const gemmac_tensor *operands = nullptr;
};

void ReleaseGraph(gemmac_backend *b, gemmac_graph *gp) {
  Graph *g = reinterpret_cast<Graph *>(gp);
  for (gemmac_kernel *k : g->kernels)
    Release(b, k);
  delete g;
}

// The function the runtime's test asks this plugin to decline ("" none).
std::string g_decline;

int32_t CompileGraph(gemmac_backend *b, const gemmac_graph_desc *d,
                     gemmac_graph **out, gemmac_plugin_error *err) {
  if (d == nullptr || out == nullptr || d->nodes == nullptr ||
      d->operands == nullptr || d->num_buckets == 0)
    return Fail(err, "compile_graph: a null descriptor, node list, operand "
                     "list or bucket list");
  if (d->name != nullptr && g_decline == d->name)
    return Fail(err, GEMMAC_PLUGIN_UNSUPPORTED,
                "testref-graph: declines function '%s' (asked by the test)",
                d->name);
  auto *g = new (std::nothrow) Graph();
  if (g == nullptr)
    return Fail(err, GEMMAC_PLUGIN_OUT_OF_MEMORY,
                "testref: compile_graph: out of memory");
  g->operands = d->operands;
  for (uint32_t i = 0; i < d->num_nodes; ++i) {
    const gemmac_graph_node &n = d->nodes[i];
    if (uint64_t(n.first_input) + n.num_inputs > d->num_operands ||
        uint64_t(n.first_output) + n.num_outputs > d->num_operands) {
      ReleaseGraph(b, reinterpret_cast<gemmac_graph *>(g));
      return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "compile_graph: node %u's operands lie past the %u "
                  "operands of function '%s'",
                  i, d->num_operands, d->name ? d->name : "?");
    }
    gemmac_kernel *k = nullptr;
    if (int32_t rc = Prepare(b, &n.desc, &k, err); rc != GEMMAC_PLUGIN_OK) {
      ReleaseGraph(b, reinterpret_cast<gemmac_graph *>(g));
      return rc;
    }
    g->nodes.push_back(n);
    g->kernels.push_back(k);
  }
  *out = reinterpret_cast<gemmac_graph *>(g);
  return GEMMAC_PLUGIN_OK;
}

int32_t ExecuteGraph(gemmac_backend *b, gemmac_graph *gp,
                     const gemmac_exec_context *ctx, gemmac_plugin_error *err) {
  const Graph *g = reinterpret_cast<const Graph *>(gp);
  for (size_t i = 0; i < g->nodes.size(); ++i) {
    const gemmac_graph_node &n = g->nodes[i];
    if (int32_t rc =
            Launch(b, g->kernels[i], g->operands + n.first_input, n.num_inputs,
                   g->operands + n.first_output, n.num_outputs, ctx, err);
        rc != GEMMAC_PLUGIN_OK)
      return rc;
  }
  return GEMMAC_PLUGIN_OK;
}
#endif

} // namespace

#ifdef GEMMAC_TESTREF_GRAPH
// Test control, found with dlsym: compile_graph declines the function of this
// name (NULL: none), so the runtime's per-instruction path takes it.
extern "C" GEMMAC_PLUGIN_EXPORT void
gemmac_testref_graph_decline(const char *name) {
  g_decline = name ? name : "";
}
#endif

extern "C" GEMMAC_PLUGIN_EXPORT int32_t GEMMAC_TESTREF_ENTRY(
    uint32_t abi_major, gemmac_plugin_api *api, size_t api_size) {
  if (abi_major != GEMMAC_PLUGIN_ABI_MAJOR)
    return GEMMAC_PLUGIN_UNSUPPORTED;
  if (api == nullptr || api_size < sizeof(api->struct_size))
    return GEMMAC_PLUGIN_INVALID_ARGUMENT;
  gemmac_plugin_api table;
  std::memset(&table, 0, sizeof(table));
  table.abi_major = GEMMAC_PLUGIN_ABI_MAJOR;
  table.abi_minor = GEMMAC_PLUGIN_ABI_MINOR;
  table.name = "testref";
  table.version = "0";
  table.create = Create;
  table.destroy = Destroy;
  table.supports = Supports;
  table.prepare = Prepare;
  table.release = Release;
  table.launch = Launch;
  table.alloc = Alloc;
  table.free = Free;
  table.device_info = DeviceInfo;
#ifdef GEMMAC_TESTREF_GRAPH
  table.name = "testref-graph";
  table.compile_graph = CompileGraph;
  table.execute_graph = ExecuteGraph;
  table.release_graph = ReleaseGraph;
#endif
  // An older caller's smaller table gets what fits, and no byte past it.
  gemmac_sdk::CopyWhatFits(table, api, api_size);
  return GEMMAC_PLUGIN_OK;
}
