// The functional emulator: runs a schedule instruction by instruction with
// plain loops over VMEM. Its job is to be correct (it is the device model's
// semantics), not fast; it only avoids per-element indirection so the tiny
// e2e model runs in seconds. The rows of a token-bound instruction are
// clamped to the call's token count, so the padding rows of a bucket are
// neither computed nor written back.
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "device.h"

namespace gemmac::tpu {
namespace {

float Bf16Round(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return f;
  bits += 0x7fffu + ((bits >> 16) & 1u);
  bits &= 0xffff0000u;
  std::memcpy(&f, &bits, 4);
  return f;
}
float FromBf16(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
float Gelu(float v) {
  return 0.5f * v *
         (1.0f + std::tanh(0.7978845608f * (v + 0.044715f * v * v * v)));
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

class Machine {
public:
  Machine(Graph *g, const gemmac_exec_context &ctx, std::string *msg)
      : g_(g), v_(g->vmem), ctx_(ctx), msg_(msg) {}

  int32_t Run(const Schedule &s);

private:
  float *F(int64_t off) { return reinterpret_cast<float *>(v_ + off); }
  int64_t Rows(const Instr &i) const {
    if (!i.token_bound)
      return i.rows;
    return std::max<int64_t>(0, std::min(i.rows, ctx_.tokens - i.row0));
  }
  int32_t Fail(int32_t code, const Instr &i, const std::string &what) {
    *msg_ = Format("tpu: %s: node %d (%s): %s", g_->name.c_str(), i.node,
                   g_->node_names[size_t(i.node)].c_str(), what.c_str());
    return code;
  }
  void Dma(const Instr &i, bool in);
  int32_t Gather(const Instr &i);
  void Mxu(const Instr &i);
  void Vector(const Instr &i);
  const gemmac_kv_cache *Cache(const Instr &i, std::string *why);
  int32_t KvWrite(const Instr &i);
  int32_t Attention(const Instr &i);

  Graph *g_;
  uint8_t *v_;
  const gemmac_exec_context &ctx_;
  std::string *msg_;
  std::vector<float> scratch_;
};

void Machine::Dma(const Instr &i, bool in) {
  const int64_t rows = Rows(i);
  uint8_t *host = i.host;
  if (i.last_row)
    host += (ctx_.tokens - 1) * i.host_stride;
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t *h = host + r * i.host_stride,
            *vm = v_ + i.vmem + r * i.vmem_stride;
    if (in)
      std::memcpy(vm, h, size_t(i.row_bytes));
    else
      std::memcpy(h, vm, size_t(i.row_bytes));
  }
  g_->executed.dma_bytes += rows * i.row_bytes;
}

int32_t Machine::Gather(const Instr &i) {
  const int64_t rows = Rows(i);
  const int32_t *ids = reinterpret_cast<const int32_t *>(v_ + i.a);
  const uint16_t *table = reinterpret_cast<const uint16_t *>(i.host2);
  for (int64_t r = 0; r < rows; ++r) {
    if (ids[r] < 0 || ids[r] >= i.k)
      return Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT, i,
                  Format("token %lld has id %d, expected 0..%lld",
                         (long long)(i.row0 + r), ids[r],
                         (long long)(i.k - 1)));
    std::memcpy(v_ + i.c + r * i.n * 2, table + int64_t(ids[r]) * i.n,
                size_t(i.n * 2));
  }
  g_->executed.dma_bytes += rows * i.n * 2;
  return GEMMAC_PLUGIN_OK;
}

// C[m, n] (+)= sum_k A[m, k] * B[n, k]: A holds bf16 values (split by a
// VPU op), B is bf16; products are exact in f32, sums are f32. With lo parts
// it is the bf16_3x scheme: A_hi B_hi + A_lo B_hi + A_hi B_lo, three MXU
// passes whose products are each exact.
void Machine::Mxu(const Instr &i) {
  const int64_t rows = Rows(i), K = i.k;
  if (rows == 0)
    return;
  const int passes = 1 + (i.a2 >= 0) + (i.b2 >= 0);
  scratch_.resize(size_t(2 * i.n * K));
  float *bh = scratch_.data(), *bl = bh + i.n * K;
  for (int s = 0; s < (i.b2 >= 0 ? 2 : 1); ++s) {
    const uint16_t *b =
        reinterpret_cast<const uint16_t *>(v_ + (s ? i.b2 : i.b));
    float *dst = s ? bl : bh;
    for (int64_t n = 0; n < i.n; ++n)
      for (int64_t k = 0; k < K; ++k)
        dst[n * K + k] = FromBf16(b[n * i.ldb + k]);
  }
  const float *a = F(i.a), *al = i.a2 >= 0 ? F(i.a2) : nullptr;
  float *c = F(i.c);
  for (int64_t m = 0; m < rows; ++m)
    for (int64_t n = 0; n < i.n; ++n) {
      const float *x = a + m * i.lda, *w = bh + n * K;
      float acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += x[k] * w[k];
      if (al) {
        const float *xl = al + m * i.lda;
        float lo = 0;
        for (int64_t k = 0; k < K; ++k)
          lo += xl[k] * w[k];
        acc += lo;
      }
      if (i.b2 >= 0) {
        const float *wl = bl + n * K;
        float lo = 0;
        for (int64_t k = 0; k < K; ++k)
          lo += x[k] * wl[k];
        acc += lo;
      }
      c[m * i.ldc + n] = i.accumulate ? c[m * i.ldc + n] + acc : acc;
    }
  g_->executed.mxu_tiles += passes * ((rows + kMxuTile - 1) / kMxuTile) *
                            ((i.n + kMxuTile - 1) / kMxuTile) *
                            ((K + kMxuTile - 1) / kMxuTile);
}

void Machine::Vector(const Instr &i) {
  const int64_t rows = Rows(i), N = i.n, count = rows * N;
  float *a = F(i.a), *b = F(i.b), *c = F(i.c);
  switch (i.vop) {
  case Vpu::kRoundBf16:
    for (int64_t j = 0; j < count; ++j)
      c[j] = Bf16Round(a[j]);
    break;
  case Vpu::kSplitBf16: {
    float *d = F(i.d);
    for (int64_t j = 0; j < count; ++j) {
      const float hi = Bf16Round(a[j]);
      d[j] = Bf16Round(a[j] - hi);
      c[j] = hi;
    }
    break;
  }
  case Vpu::kRmsNorm: {
    const int64_t D = i.group;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g0 = 0; g0 < N; g0 += D) {
        const float *x = a + r * N + g0;
        float *y = c + r * N + g0;
        float ss = 0;
        for (int64_t j = 0; j < D; ++j)
          ss += x[j] * x[j];
        const float s = 1.0f / std::sqrt(ss / float(D) + i.f0);
        for (int64_t j = 0; j < D; ++j)
          y[j] = x[j] * s * (i.f1 + b[j]);
      }
    break;
  }
  case Vpu::kRope: {
    const int64_t D = i.attrs.head_dim, half = D / 2;
    for (int64_t r = 0; r < rows; ++r) {
      const double pos = double(ctx_.past + i.row0 + r);
      for (int64_t j = 0; j < half; ++j) {
        const double ang = pos / i.attrs.rope_scale *
                           std::pow(double(i.attrs.theta), -2.0 * j / D);
        const float cs = float(std::cos(ang)), sn = float(std::sin(ang));
        for (int64_t h = 0; h < N / D; ++h) {
          float *x = a + r * N + h * D;
          const float x0 = x[j], x1 = x[j + half];
          x[j] = x0 * cs - x1 * sn;
          x[j + half] = x1 * cs + x0 * sn;
        }
      }
    }
    break;
  }
  case Vpu::kAdd:
    for (int64_t j = 0; j < count; ++j)
      c[j] = a[j] + b[j];
    break;
  case Vpu::kMul:
    for (int64_t j = 0; j < count; ++j)
      c[j] = a[j] * b[j];
    break;
  case Vpu::kGelu:
    for (int64_t j = 0; j < count; ++j)
      c[j] = Gelu(a[j]);
    break;
  case Vpu::kGeluMul:
    for (int64_t j = 0; j < count; ++j)
      c[j] = Gelu(a[j]) * b[j];
    break;
  case Vpu::kSoftcap:
    for (int64_t j = 0; j < count; ++j)
      c[j] = i.f0 * std::tanh(a[j] / i.f0);
    break;
  case Vpu::kScale:
    for (int64_t j = 0; j < count; ++j)
      c[j] = a[j] * i.f0;
    break;
  case Vpu::kBf16Scale: {
    const uint16_t *h = reinterpret_cast<const uint16_t *>(v_ + i.a);
    for (int64_t j = 0; j < count; ++j)
      c[j] = FromBf16(h[j]) * i.f0;
    break;
  }
  }
}

const gemmac_kv_cache *Machine::Cache(const Instr &i, std::string *why) {
  const gemmac_op_attrs &a = i.attrs;
  if (a.layer < 0 || uint32_t(a.layer) >= ctx_.num_kv || ctx_.kv == nullptr) {
    *why = Format("attribute layer is %d, expected 0..%u (context.num_kv)",
                  a.layer, ctx_.num_kv);
    return nullptr;
  }
  const gemmac_kv_cache &kv = ctx_.kv[a.layer];
  if (kv.dtype != GEMMAC_DTYPE_F32 && kv.dtype != GEMMAC_DTYPE_I8) {
    *why = Format("KV cache %d has dtype %d, expected f32 (0) or i8 (4)",
                  a.layer, kv.dtype);
    return nullptr;
  }
  if (kv.dtype == GEMMAC_DTYPE_I8 &&
      (kv.struct_size < offsetof(gemmac_kv_cache, v_scale) + sizeof(float *) ||
       !kv.k_scale || !kv.v_scale)) {
    *why = Format("KV cache %d is i8 without k_scale/v_scale", a.layer);
    return nullptr;
  }
  if (kv.num_kv_heads != a.num_kv_heads || kv.head_dim != a.head_dim ||
      kv.capacity <= 0 || !kv.k || !kv.v) {
    *why = Format("KV cache %d is [%d, %d, %d], expected [capacity > 0, %d, "
                  "%d] with k and v",
                  a.layer, kv.capacity, kv.num_kv_heads, kv.head_dim,
                  a.num_kv_heads, a.head_dim);
    return nullptr;
  }
  return &kv;
}

int32_t Machine::KvWrite(const Instr &i) {
  std::string why;
  const gemmac_kv_cache *kv = Cache(i, &why);
  if (kv == nullptr)
    return Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT, i, why);
  const int64_t KV = kv->num_kv_heads, D = kv->head_dim, rows = Rows(i);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t row = (ctx_.past + i.row0 + r) % kv->capacity;
    for (int s = 0; s < 2; ++s) {
      const float *x =
          reinterpret_cast<const float *>(s ? i.host2 : i.host) + r * KV * D;
      if (kv->dtype == GEMMAC_DTYPE_F32) {
        std::memcpy(static_cast<float *>(s ? kv->v : kv->k) + row * KV * D, x,
                    size_t(KV * D * 4));
        continue;
      }
      int8_t *dst = static_cast<int8_t *>(s ? kv->v : kv->k) + row * KV * D;
      float *scales = (s ? kv->v_scale : kv->k_scale) + row * KV;
      for (int64_t g = 0; g < KV; ++g) {
        float mx = 0;
        for (int64_t j = 0; j < D; ++j)
          mx = std::fmax(mx, std::fabs(x[g * D + j]));
        const float scale = mx / 127.0f;
        scales[g] = scale;
        for (int64_t j = 0; j < D; ++j) {
          float q = scale > 0 ? std::nearbyint(x[g * D + j] / scale) : 0.0f;
          dst[g * D + j] = int8_t(std::fmax(-127.0f, std::fmin(127.0f, q)));
        }
      }
    }
  }
  g_->executed.dma_bytes += 2 * rows * KV * D * 4;
  return GEMMAC_PLUGIN_OK;
}

// Flash-style attention of one token tile: per head, key chunks of kMxuTile
// positions are DMA'd from the ring into VMEM (rounded to bf16), scored on
// the MXU, soft-capped, masked and folded into a running softmax on the VPU
// (f32), and the bf16-rounded probabilities times V accumulate on the MXU.
int32_t Machine::Attention(const Instr &i) {
  std::string why;
  const gemmac_kv_cache *kv = Cache(i, &why);
  if (kv == nullptr)
    return Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT, i, why);
  const gemmac_op_attrs &a = i.attrs;
  const int64_t rows = Rows(i), H = a.num_heads, KV = a.num_kv_heads,
                D = a.head_dim, per = H / KV, cap = kv->capacity;
  if (rows == 0)
    return GEMMAC_PLUGIN_OK;
  const int64_t p_first = ctx_.past + i.row0, p_last = p_first + rows - 1;
  int64_t lo = a.window > 0 ? std::max<int64_t>(0, p_first - a.window + 1) : 0;
  {
    int64_t lo_last =
        a.window > 0 ? std::max<int64_t>(0, p_last - a.window + 1) : 0;
    if (p_last - lo_last + 1 > cap)
      return Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT, i,
                  Format("position %lld sees %lld keys, expected at most the "
                         "cache capacity %lld",
                         (long long)p_last, (long long)(p_last - lo_last + 1),
                         (long long)cap));
  }
  float *q = F(i.a), *out = F(i.b), *kc = F(i.c), *vc = F(i.d), *s = F(i.e),
        *mx = F(i.lda), *l = mx + rows, *acc = F(i.ldc);
  const bool i8 = kv->dtype == GEMMAC_DTYPE_I8;
  auto load = [&](bool is_v, int64_t j0, int64_t n, int64_t g, float *dst) {
    for (int64_t j = 0; j < n; ++j) {
      const int64_t row = (j0 + j) % cap, at = (row * KV + g) * D;
      for (int64_t d = 0; d < D; ++d) {
        float x = i8 ? float(static_cast<const int8_t *>(
                           is_v ? kv->v : kv->k)[at + d]) *
                           (is_v ? kv->v_scale : kv->k_scale)[row * KV + g]
                     : static_cast<const float *>(is_v ? kv->v : kv->k)[at + d];
        dst[j * D + d] = Bf16Round(x);
      }
    }
    g_->executed.dma_bytes += n * D * (i8 ? 1 : 4);
  };
  for (int64_t h = 0; h < H; ++h) {
    const int64_t g = h / per;
    for (int64_t r = 0; r < rows; ++r) {
      mx[r] = -INFINITY;
      l[r] = 0;
    }
    std::fill(acc, acc + rows * D, 0.0f);
    for (int64_t j0 = lo; j0 <= p_last; j0 += kMxuTile) {
      const int64_t n = std::min(kMxuTile, p_last - j0 + 1);
      load(false, j0, n, g, kc);
      load(true, j0, n, g, vc);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t p = p_first + r;
        const int64_t first = a.window > 0 ? p - a.window + 1 : 0;
        const float *qr = q + (r * H + h) * D;
        float *sr = s + r * kMxuTile, m_new = mx[r];
        for (int64_t j = 0; j < n; ++j) {
          const int64_t pos = j0 + j;
          if (pos > p || pos < first) {
            sr[j] = -INFINITY;
            continue;
          }
          float dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += qr[d] * kc[j * D + d];
          dot *= a.scale;
          if (a.softcap > 0)
            dot = a.softcap * std::tanh(dot / a.softcap);
          sr[j] = dot;
          m_new = std::max(m_new, dot);
        }
        if (m_new == -INFINITY)
          continue; // nothing visible in this chunk yet
        const float corr = std::exp(mx[r] - m_new);
        l[r] *= corr;
        float *ar = acc + r * D;
        for (int64_t d = 0; d < D; ++d)
          ar[d] *= corr;
        for (int64_t j = 0; j < n; ++j) {
          if (sr[j] == -INFINITY)
            continue;
          const float pj = std::exp(sr[j] - m_new);
          l[r] += pj;
          const float pb = Bf16Round(pj);
          for (int64_t d = 0; d < D; ++d)
            ar[d] += pb * vc[j * D + d];
        }
        mx[r] = m_new;
      }
      g_->executed.mxu_tiles += 2 * ((rows + kMxuTile - 1) / kMxuTile);
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t d = 0; d < D; ++d)
        out[(r * H + h) * D + d] = acc[r * D + d] / l[r];
  }
  return GEMMAC_PLUGIN_OK;
}

int32_t Machine::Run(const Schedule &s) {
  int64_t n = 0;
  for (const Instr &i : s.code) {
    if ((++n & 255) == 0 && ctx_.cancel && *ctx_.cancel)
      return GEMMAC_PLUGIN_CANCELLED;
    int32_t rc = GEMMAC_PLUGIN_OK;
    switch (i.kind) {
    case Kind::kDmaIn:
      Dma(i, true);
      break;
    case Kind::kDmaOut:
      Dma(i, false);
      break;
    case Kind::kGather:
      rc = Gather(i);
      break;
    case Kind::kKvWrite:
      rc = KvWrite(i);
      break;
    case Kind::kMxu:
      Mxu(i);
      break;
    case Kind::kVpu:
      Vector(i);
      break;
    case Kind::kAttention:
      rc = Attention(i);
      break;
    }
    if (rc != GEMMAC_PLUGIN_OK)
      return rc;
  }
  return GEMMAC_PLUGIN_OK;
}

} // namespace

int32_t Execute(Graph *g, const gemmac_exec_context &ctx,
                std::string *message) {
  if (ctx.tokens < 1 || ctx.past < 0) {
    *message =
        Format("tpu: %s: context has tokens %lld and past %lld, "
               "expected tokens >= 1 and past >= 0",
               g->name.c_str(), (long long)ctx.tokens, (long long)ctx.past);
    return GEMMAC_PLUGIN_INVALID_ARGUMENT;
  }
  for (const Schedule &s : g->schedules)
    if (s.bucket >= ctx.tokens) {
      g->executed = Stats{};
      if (ctx.cancel && *ctx.cancel)
        return GEMMAC_PLUGIN_CANCELLED;
      Machine m(g, ctx, message);
      return m.Run(s);
    }
  *message = Format(
      "tpu: %s: context.tokens is %lld, expected at most the "
      "largest bucket %lld",
      g->name.c_str(), (long long)ctx.tokens,
      g->schedules.empty() ? 0LL : (long long)g->schedules.back().bucket);
  return GEMMAC_PLUGIN_INVALID_ARGUMENT;
}

} // namespace gemmac::tpu
