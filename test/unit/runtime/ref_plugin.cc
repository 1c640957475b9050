// A reference backend plugin for the runtime's tests: every op of
// docs/ops.md written the plainest way (no threads, no SIMD), so the VM and
// sessions can be tested before, and independently of, backends/cpu.
// Built as libgemmac_testref.so (exports gemmac_plugin_entry) and linked
// statically into test binaries under GEMMAC_TESTREF_ENTRY.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

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
  // IEEE half.
  int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
  float v = exp == 0    ? std::ldexp(float(man), -24)
            : exp == 31 ? (man ? NAN : INFINITY)
                        : std::ldexp(float(man | 1024), exp - 25);
  return sign ? -v : v;
}

int Fail(gemmac_plugin_error *e, const char *msg) {
  if (e)
    std::snprintf(e->message, sizeof(e->message), "%s", msg);
  return GEMMAC_PLUGIN_INVALID_ARGUMENT;
}

int32_t Create(const gemmac_backend_options *, gemmac_backend **out,
               gemmac_plugin_error *) {
  *out = reinterpret_cast<gemmac_backend *>(new Backend());
  return GEMMAC_PLUGIN_OK;
}
void Destroy(gemmac_backend *b) { delete reinterpret_cast<Backend *>(b); }
int32_t Supports(gemmac_backend *, const gemmac_op_desc *d) {
  return d->op >= 0 && d->op < GEMMAC_OP_COUNT_;
}
int32_t Prepare(gemmac_backend *, const gemmac_op_desc *d, gemmac_kernel **out,
                gemmac_plugin_error *) {
  auto *k = new Kernel{d->op, d->attrs};
  *out = reinterpret_cast<gemmac_kernel *>(k);
  return GEMMAC_PLUGIN_OK;
}
void Release(gemmac_backend *, gemmac_kernel *k) {
  delete reinterpret_cast<Kernel *>(k);
}
void *Alloc(gemmac_backend *, size_t bytes, size_t alignment) {
  if (alignment < sizeof(void *))
    alignment = sizeof(void *);
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

int32_t Launch(gemmac_backend *b, gemmac_kernel *kp, const gemmac_tensor *in,
               uint32_t, const gemmac_tensor *out, uint32_t,
               const gemmac_exec_context *ctx, gemmac_plugin_error *err) {
  reinterpret_cast<Backend *>(b)->launches++;
  if (ctx->cancel && *ctx->cancel)
    return GEMMAC_PLUGIN_CANCELLED;
  const Kernel &k = *reinterpret_cast<Kernel *>(kp);
  const gemmac_op_attrs &a = k.a;
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
        y[t * H + h] = Load(in[1].data, in[1].dtype, ids[t] * H + h) * a.scale;
    }
    break;
  }
  case GEMMAC_OP_RMS_NORM: {
    const float *x = static_cast<const float *>(in[0].data);
    int64_t N = in[0].shape[1], D = in[1].shape[0];
    for (int64_t t = 0; t < T; ++t)
      for (int64_t g = 0; g < N; g += D) {
        double ss = 0;
        for (int64_t i = 0; i < D; ++i)
          ss += double(x[t * N + g + i]) * x[t * N + g + i];
        float r = 1.0f / std::sqrt(float(ss / D) + a.eps);
        for (int64_t i = 0; i < D; ++i)
          y[t * N + g + i] = x[t * N + g + i] * r *
                             (a.offset + Load(in[1].data, in[1].dtype, i));
      }
    break;
  }
  case GEMMAC_OP_LINEAR:
  case GEMMAC_OP_LM_HEAD: {
    const float *x = static_cast<const float *>(in[0].data);
    int64_t K = in[0].shape[1];
    int64_t N = k.op == GEMMAC_OP_LINEAR ? in[1].shape[0] : a.rows;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (int64_t i = 0; i < K; ++i)
          acc +=
              double(x[t * K + i]) * Load(in[1].data, in[1].dtype, n * K + i);
        y[t * N + n] = float(acc);
      }
    break;
  }
  case GEMMAC_OP_ROPE: {
    const float *x = static_cast<const float *>(in[0].data);
    int64_t W = in[0].shape[1], D = a.head_dim, half = D / 2;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < W / D; ++h)
        for (int64_t i = 0; i < half; ++i) {
          double ang = double(ctx->past + t) / a.rope_scale *
                       std::pow(double(a.theta), -2.0 * i / D);
          const float *xs = x + t * W + h * D;
          float *ys = y + t * W + h * D;
          float x0 = xs[i], x1 = xs[i + half];
          ys[i] = float(x0 * std::cos(ang) - x1 * std::sin(ang));
          ys[i + half] = float(x1 * std::cos(ang) + x0 * std::sin(ang));
        }
    break;
  }
  case GEMMAC_OP_ATTENTION: {
    if (a.layer < 0 || uint32_t(a.layer) >= ctx->num_kv)
      return Fail(err, "attention: layer out of range");
    const gemmac_kv_cache &kv = ctx->kv[a.layer];
    const float *q = static_cast<const float *>(in[0].data);
    const float *kin = static_cast<const float *>(in[1].data);
    const float *vin = static_cast<const float *>(in[2].data);
    int64_t H = a.num_heads, KV = a.num_kv_heads, D = a.head_dim;
    float *kc = static_cast<float *>(kv.k);
    float *vc = static_cast<float *>(kv.v);
    for (int64_t t = 0; t < T; ++t) {
      int64_t row = (ctx->past + t) % kv.capacity;
      std::memcpy(kc + row * KV * D, kin + t * KV * D, sizeof(float) * KV * D);
      std::memcpy(vc + row * KV * D, vin + t * KV * D, sizeof(float) * KV * D);
    }
    double *s = new double[ctx->past + T];
    for (int64_t t = 0; t < T; ++t) {
      int64_t p = ctx->past + t;
      int64_t lo = a.window > 0 ? p - a.window + 1 : 0;
      if (lo < 0)
        lo = 0;
      if (p - lo + 1 > kv.capacity) {
        delete[] s;
        return Fail(err, "attention: visible keys exceed the cache");
      }
      for (int64_t h = 0; h < H; ++h) {
        int64_t g = h / (H / KV);
        double mx = -INFINITY;
        for (int64_t j = lo; j <= p; ++j) {
          const float *kr = kc + ((j % kv.capacity) * KV + g) * D;
          double d = 0;
          for (int64_t i = 0; i < D; ++i)
            d += double(q[(t * H + h) * D + i]) * kr[i];
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
            acc += s[j] * vc[((j % kv.capacity) * KV + g) * D + i];
          y[(t * H + h) * D + i] = float(acc / sum);
        }
      }
    }
    delete[] s;
    break;
  }
  default: {
    const float *x = static_cast<const float *>(in[0].data);
    int64_t n = Elements(out[0]);
    for (int64_t i = 0; i < n; ++i) {
      float v = x[i];
      switch (k.op) {
      case GEMMAC_OP_GELU_TANH:
        v = 0.5f * v *
            (1.0f + std::tanh(0.7978845608f * (v + 0.044715f * v * v * v)));
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

} // namespace

extern "C" GEMMAC_PLUGIN_EXPORT int32_t GEMMAC_TESTREF_ENTRY(
    uint32_t abi_major, gemmac_plugin_api *api, size_t api_size) {
  if (abi_major != GEMMAC_PLUGIN_ABI_MAJOR || api_size < sizeof(*api))
    return GEMMAC_PLUGIN_UNSUPPORTED;
  std::memset(api, 0, sizeof(*api));
  api->struct_size = sizeof(*api);
  api->abi_major = GEMMAC_PLUGIN_ABI_MAJOR;
  api->abi_minor = GEMMAC_PLUGIN_ABI_MINOR;
  api->name = "testref";
  api->version = "0";
  api->create = Create;
  api->destroy = Destroy;
  api->supports = Supports;
  api->prepare = Prepare;
  api->release = Release;
  api->launch = Launch;
  api->alloc = Alloc;
  api->free = Free;
  return GEMMAC_PLUGIN_OK;
}
