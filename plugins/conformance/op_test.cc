// Op checks: every op of docs/ops.md, the fused ones too, with every input
// dtype the reference takes (all weight formats where the op reads a weight,
// f32 and i8 KV caches for attention), T = 1 and T = 5 tokens, random valid
// inputs, run on the plugin under test and on the reference plugin through
// the ABI, every output element compared (and, for attention, the KV cache
// the call wrote). A case the plugin's supports() declines is skipped with
// the reason: a plugin may support a subset, the runtime runs the rest on
// the CPU plugin.
//
// Tolerances (per output element; `ref` is the reference's value):
//   f32 arithmetic, element-wise ops, norms, rope, attention, embed, and
//   fused ops on float weights:   |d| <= 1e-4 * (1 + |ref|)
//   linear / lm_head on float weights (a dot over K):
//                                 |d| <= 1e-5 * sum_k |w_k x_k| + 1e-5
//   linear / lm_head on quantized weights: the CPU plugin rounds the
//   activations to Q8 codes (blocks of 32, d = max|x| / 127) before its
//   integer dots, an error of at most d/2 per element, so
//                                 |d| <= 2^-7 * 1.5 * sum_k |w_k x_k| + 1e-5
//   fused ops on quantized weights (qkv_proj, gated_mlp, final_head): each
//   inner dot's bound above, carried through the epilogue (norms, RoPE,
//   GeGLU, soft-cap) by its derivative (FusedBound below), plus the f32
//   bound 1e-4 * (1 + |ref|)
//   --precision bf16 (plugins that compute in bf16, 8 significant bits)
//   widens every float-weight bound above to 1e-2 (relative, or of
//   sum |w x| for dots). The bounds are tight enough that adding 1e-3 to
//   one f32 output fails a case.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "formats.h"
#include "harness.h"

namespace gemmac::conformance {
namespace {

enum class Role { kAct, kTokens, kWeight, kAbsent };
enum class Tol { kElementwise, kDot, kFused };

struct Operand {
  const char *name;
  Role role;
  int32_t dtype;
  std::vector<int64_t> shape;
  float lo = -1, hi = 1; // value range (tokens: ids in [0, hi))
};

struct OpCase {
  std::string name;
  int32_t op = 0;
  gemmac_op_attrs attrs{};
  std::vector<Operand> inputs;
  std::vector<std::vector<int64_t>> outputs;
  int64_t T = 1, past = 0;
  Tol tol = Tol::kElementwise;
  // Attention: the KV cache of layer attrs.layer.
  int32_t kv_dtype = GEMMAC_DTYPE_F32;
  int32_t capacity = 0;
};

int64_t Count(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

// Page-aligned host memory, as a mapped weight segment is.
struct HostBytes {
  std::unique_ptr<uint8_t, decltype(&std::free)> p{nullptr, &std::free};
  size_t size = 0;
  void Assign(const std::vector<uint8_t> &b) {
    size = (b.size() + 4095) / 4096 * 4096;
    if (size == 0)
      size = 4096;
    p.reset(static_cast<uint8_t *>(std::aligned_alloc(4096, size)));
    std::memset(p.get(), 0, size);
    std::memcpy(p.get(), b.data(), b.size());
  }
};

// One input's bytes and the values they mean (for tolerances).
struct Input {
  std::vector<uint8_t> bytes;
  std::vector<double> values;
  HostBytes host; // weights: read in place by both plugins
};

// gtest names a failing case by this, not by a byte dump.
void PrintTo(const OpCase &c, std::ostream *os) { *os << c.name; }

uint32_t Seed(const std::string &s) {
  uint32_t h = 2166136261u; // FNV-1a: the same inputs on every run
  for (char c : s)
    h = (h ^ uint8_t(c)) * 16777619u;
  return h;
}

std::vector<Input> MakeInputs(const OpCase &c, std::mt19937 &rng) {
  std::vector<Input> ins(c.inputs.size());
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const Operand &o = c.inputs[i];
    Input &in = ins[i];
    const int64_t n = Count(o.shape);
    if (o.role == Role::kAbsent)
      continue;
    if (o.role == Role::kTokens) {
      std::uniform_int_distribution<int32_t> id(0, int32_t(o.hi) - 1);
      in.bytes.resize(size_t(n) * 4);
      for (int64_t t = 0; t < n; ++t) {
        const int32_t v = id(rng);
        std::memcpy(&in.bytes[size_t(t) * 4], &v, 4);
      }
      continue;
    }
    std::uniform_real_distribution<float> u(o.lo, o.hi);
    std::vector<float> src(static_cast<size_t>(n));
    for (float &v : src)
      v = u(rng);
    const int64_t rows = o.shape.size() == 2 ? o.shape[0] : 1;
    EncodedWeight w = Encode(o.dtype, rows, n / rows, src);
    in.bytes = std::move(w.bytes);
    in.values = std::move(w.values);
    if (o.role == Role::kWeight)
      in.host.Assign(in.bytes);
  }
  return ins;
}

std::string Signature(const OpCase &c) {
  std::ostringstream s;
  s << OpName(c.op) << " with dtypes (";
  for (size_t i = 0; i < c.inputs.size(); ++i)
    s << (i ? ", " : "") << c.inputs[i].name << " "
      << DTypeName(c.inputs[i].dtype);
  s << ") -> f32";
  if (c.op == GEMMAC_OP_ATTENTION)
    s << ", KV cache " << DTypeName(c.kv_dtype);
  return s.str();
}

// Everything one plugin needs for one launch of the case.
struct PluginRun {
  const Backend &b;
  DeviceIo io;
  std::vector<Buffer> in_bufs, out_bufs;
  Buffer kv[2][4]; // per cache: k, v, k_scale, v_scale
  gemmac_kv_cache caches[2]{};
  std::vector<gemmac_tensor> in_t, out_t;
  gemmac_kernel *kernel = nullptr;
  // After the launch: the outputs and layer 1's cache, read back.
  std::vector<std::vector<float>> out_host;
  std::vector<uint8_t> kv_host[4];
  explicit PluginRun(const Backend &backend) : b(backend), io(backend) {}
  ~PluginRun() {
    if (kernel)
      b.api().release(b.get(), kernel);
  }
};

size_t KvElem(int32_t kv_dtype) { return kv_dtype == GEMMAC_DTYPE_I8 ? 1 : 4; }

// The KV caches' initial contents, the same for both plugins: random rows
// for positions [past - capacity, past) as an earlier call left them.
struct KvInit {
  std::vector<uint8_t> k, v;
  std::vector<float> ks, vs;
};

KvInit MakeKvInit(const OpCase &c, std::mt19937 &rng) {
  const int64_t KV = c.attrs.num_kv_heads, D = c.attrs.head_dim;
  const int64_t rowv = KV * D, cap = c.capacity;
  KvInit init;
  const size_t el = KvElem(c.kv_dtype);
  init.k.assign(size_t(cap * rowv) * el, 0);
  init.v.assign(init.k.size(), 0);
  init.ks.assign(size_t(cap * KV), 0.0f);
  init.vs.assign(init.ks.size(), 0.0f);
  std::uniform_real_distribution<float> u(-1, 1), s(0.001f, 0.01f);
  std::uniform_int_distribution<int> q(-127, 127);
  for (int64_t p = std::max<int64_t>(0, c.past - cap); p < c.past; ++p) {
    const int64_t row = p % cap;
    for (int64_t i = 0; i < rowv; ++i) {
      const size_t at = size_t(row * rowv + i);
      if (el == 4) {
        const float a = u(rng), b = u(rng);
        std::memcpy(&init.k[at * 4], &a, 4);
        std::memcpy(&init.v[at * 4], &b, 4);
      } else {
        init.k[at] = uint8_t(int8_t(q(rng)));
        init.v[at] = uint8_t(int8_t(q(rng)));
      }
    }
    for (int64_t g = 0; g < KV; ++g) {
      init.ks[size_t(row * KV + g)] = s(rng);
      init.vs[size_t(row * KV + g)] = s(rng);
    }
  }
  return init;
}

// Prepares and launches the case on one plugin; "" or what failed.
std::string Launch(const OpCase &c, std::vector<Input> &ins, const KvInit &kv,
                   PluginRun &r) {
  const gemmac_plugin_api &api = r.b.api();
  std::vector<int32_t> in_dt, out_dt(c.outputs.size(), GEMMAC_DTYPE_F32);
  for (const Operand &o : c.inputs)
    in_dt.push_back(o.dtype);
  gemmac_op_desc d{};
  d.struct_size = sizeof(d);
  d.op = c.op;
  d.attrs = c.attrs;
  d.attrs.struct_size = sizeof(d.attrs);
  d.num_inputs = uint32_t(in_dt.size());
  d.input_dtypes = in_dt.data();
  d.num_outputs = uint32_t(out_dt.size());
  d.output_dtypes = out_dt.data();
  gemmac_plugin_error err{};
  err.struct_size = sizeof(err);
  int32_t rc = api.prepare(r.b.get(), &d, &r.kernel, &err);
  if (rc != GEMMAC_PLUGIN_OK) {
    r.kernel = nullptr;
    return "prepare() returned " + std::to_string(rc) +
           " after supports() "
           "said yes: " +
           err.message;
  }
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const Operand &o = c.inputs[i];
    gemmac_tensor t{};
    t.struct_size = sizeof(t);
    t.dtype = o.dtype;
    if (o.role != Role::kAbsent) {
      t.rank = int32_t(o.shape.size());
      for (size_t j = 0; j < o.shape.size(); ++j)
        t.shape[j] = o.shape[j];
      if (o.role == Role::kWeight) {
        if (std::string e =
                r.io.MapWeights(ins[i].host.p.get(), ins[i].host.size, &t.data);
            !e.empty())
          return "weight " + std::string(o.name) + ": " + e;
      } else {
        r.in_bufs.emplace_back(r.b, ins[i].bytes.size());
        if (r.in_bufs.back().data() == nullptr)
          return "alloc(" + std::to_string(ins[i].bytes.size()) +
                 ") for input " + o.name + " returned NULL";
        if (std::string e = r.io.Put(r.in_bufs.back().data(),
                                     ins[i].bytes.data(), ins[i].bytes.size());
            !e.empty())
          return "input " + std::string(o.name) + ": " + e;
        t.data = r.in_bufs.back().data();
      }
    }
    r.in_t.push_back(t);
  }
  for (const std::vector<int64_t> &shape : c.outputs) {
    const size_t bytes = size_t(Count(shape)) * 4;
    r.out_bufs.emplace_back(r.b, bytes);
    if (r.out_bufs.back().data() == nullptr)
      return "alloc(" + std::to_string(bytes) + ") for an output returned NULL";
    // NaN everywhere: an element the plugin does not write fails.
    const std::vector<uint8_t> nan(bytes, 0xFF);
    if (std::string e = r.io.Put(r.out_bufs.back().data(), nan.data(), bytes);
        !e.empty())
      return "output: " + e;
    gemmac_tensor t{};
    t.struct_size = sizeof(t);
    t.dtype = GEMMAC_DTYPE_F32;
    t.rank = int32_t(shape.size());
    for (size_t j = 0; j < shape.size(); ++j)
      t.shape[j] = shape[j];
    t.data = r.out_bufs.back().data();
    r.out_t.push_back(t);
  }
  gemmac_exec_context ctx{};
  ctx.struct_size = sizeof(ctx);
  ctx.past = c.past;
  ctx.tokens = c.T;
  if (c.op == GEMMAC_OP_ATTENTION) {
    // Two layers, the op reads layer 1: a plugin must index context.kv.
    for (int l = 0; l < 2; ++l) {
      const std::vector<uint8_t> *src[2] = {&kv.k, &kv.v};
      for (int j = 0; j < 2; ++j) {
        r.kv[l][j] = Buffer(r.b, src[j]->size());
        if (r.kv[l][j].data() == nullptr)
          return "alloc() for a KV cache returned NULL";
        if (std::string e =
                r.io.Put(r.kv[l][j].data(), src[j]->data(), src[j]->size());
            !e.empty())
          return "KV cache: " + e;
      }
      gemmac_kv_cache &cache = r.caches[l];
      cache.struct_size = sizeof(cache);
      cache.k = r.kv[l][0].data();
      cache.v = r.kv[l][1].data();
      cache.dtype = c.kv_dtype;
      cache.capacity = c.capacity;
      cache.num_kv_heads = c.attrs.num_kv_heads;
      cache.head_dim = c.attrs.head_dim;
      if (c.kv_dtype == GEMMAC_DTYPE_I8) {
        const std::vector<float> *sc[2] = {&kv.ks, &kv.vs};
        for (int j = 0; j < 2; ++j) {
          r.kv[l][2 + j] = Buffer(r.b, sc[j]->size() * 4);
          if (r.kv[l][2 + j].data() == nullptr)
            return "alloc() for KV cache scales returned NULL";
          if (std::string e = r.io.Put(r.kv[l][2 + j].data(), sc[j]->data(),
                                       sc[j]->size() * 4);
              !e.empty())
            return "KV cache scales: " + e;
        }
        cache.k_scale = static_cast<float *>(r.kv[l][2].data());
        cache.v_scale = static_cast<float *>(r.kv[l][3].data());
      }
    }
    ctx.kv = r.caches;
    ctx.num_kv = 2;
  }
  ctx.stream = r.io.stream();
  rc = api.launch(r.b.get(), r.kernel, r.in_t.data(), uint32_t(r.in_t.size()),
                  r.out_t.data(), uint32_t(r.out_t.size()), &ctx, &err);
  if (rc != GEMMAC_PLUGIN_OK)
    return "launch() returned " + std::to_string(rc) + ": " + err.message;
  if (std::string e = r.io.Finish(); !e.empty())
    return "after launch(): " + e;
  for (Buffer &o : r.out_bufs) {
    r.out_host.emplace_back(o.size() / 4);
    if (std::string e = r.io.Get(r.out_host.back().data(), o.data(), o.size());
        !e.empty())
      return "output: " + e;
  }
  for (int j = 0; j < 4 && c.op == GEMMAC_OP_ATTENTION; ++j) {
    if (r.kv[1][j].data() == nullptr)
      continue;
    r.kv_host[j].resize(r.kv[1][j].size());
    if (std::string e =
            r.io.Get(r.kv_host[j].data(), r.kv[1][j].data(), r.kv[1][j].size());
        !e.empty())
      return "KV cache: " + e;
  }
  return "";
}

struct Bound {
  double rel = 0, abs = 0; // tol = rel * scale + abs
  const char *rule = "";
};

class OpConformance : public ::testing::TestWithParam<OpCase> {
protected:
  static void SetUpTestSuite() {
    plugin_ = new Backend(UnderTest());
    reference_ = new Backend(Reference());
  }
  static void TearDownTestSuite() {
    delete plugin_;
    delete reference_;
    plugin_ = reference_ = nullptr;
  }
  static Backend *plugin_, *reference_;
};
Backend *OpConformance::plugin_ = nullptr;
Backend *OpConformance::reference_ = nullptr;

bool AnyQuantized(const OpCase &c) {
  for (const Operand &o : c.inputs)
    if (IsQuantized(o.dtype))
      return true;
  return false;
}

// ---- the Q8 rounding bound carried through the fused ops --------------------
//
// The dot products inside a fused op each carry the linear bound
// e = 2^-7 * 1.5 * sum_k |w_k x_k| + 1e-5 (quantized weight; float weights:
// 1e-5 * sum + 1e-5); the epilogue's own derivative then carries it to the
// output: a soft-cap is 1-Lipschitz, RoPE mixes a pair (|e_i| + |e_pair|),
// an RMS norm over D values scales by r = rsqrt(mean(h^2) + eps) and mixes
// through the mean (r |offset + w_i| (e_i + |h_i| sum_j |h_j| e_j / (D ms))),
// GeGLU is 1.13 e_g (|u| + e_u) + |gelu(g)| e_u (|gelu'| <= 1.13). These
// values come from the suite's own double-precision pass over the decoded
// inputs; they only size the tolerance, the values compared are the
// reference plugin's.
constexpr double kQ8Rel = 1.5 / 128.0; // 2^-7 * 1.5

struct Dots {
  std::vector<double> val, err; // [rows, N]
};

std::vector<double> NormRows(const std::vector<double> &x, int64_t rows,
                             int64_t K, const std::vector<double> *w,
                             const gemmac_op_attrs &a) {
  if (w == nullptr)
    return x;
  std::vector<double> y(x.size());
  const int64_t D = int64_t(w->size());
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t g = 0; g < K; g += D) {
      double ss = 0;
      for (int64_t i = 0; i < D; ++i)
        ss += x[size_t(t * K + g + i)] * x[size_t(t * K + g + i)];
      const double r = 1 / std::sqrt(ss / double(D) + a.eps);
      for (int64_t i = 0; i < D; ++i)
        y[size_t(t * K + g + i)] =
            x[size_t(t * K + g + i)] * r * (a.offset + (*w)[size_t(i)]);
    }
  return y;
}

Dots DotRows(const std::vector<double> &x, int64_t rows, int64_t K,
             const Input &w, int32_t w_dtype, int64_t N) {
  Dots d;
  d.val.resize(size_t(rows * N));
  d.err.resize(size_t(rows * N));
  const double rel = IsQuantized(w_dtype) ? kQ8Rel : 1e-5;
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double v = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double p = x[size_t(t * K + k)] * w.values[size_t(n * K + k)];
        v += p;
        mag += std::fabs(p);
      }
      d.val[size_t(t * N + n)] = v;
      d.err[size_t(t * N + n)] = rel * mag + 1e-5;
    }
  return d;
}

// The carried bound of every element of output `o` of a fused op.
std::vector<double> FusedBound(const OpCase &c, const std::vector<Input> &ins,
                               size_t o) {
  const gemmac_op_attrs &a = c.attrs;
  const int64_t T = c.T, K = c.inputs[0].shape[1];
  auto opt = [&](size_t i) {
    return c.inputs[i].role == Role::kAbsent ? nullptr : &ins[i].values;
  };
  switch (c.op) {
  case GEMMAC_OP_GATED_MLP: {
    const std::vector<double> x = NormRows(ins[0].values, T, K, opt(1), a);
    const int64_t F = c.inputs[2].shape[0];
    const Dots g = DotRows(x, T, K, ins[2], c.inputs[2].dtype, F);
    const Dots u = DotRows(x, T, K, ins[3], c.inputs[3].dtype, F);
    std::vector<double> e(g.val.size());
    for (size_t i = 0; i < e.size(); ++i) {
      const double v = g.val[i];
      const double gelu =
          0.5 * v * (1 + std::tanh(0.7978845608 * (v + 0.044715 * v * v * v)));
      e[i] = 1.13 * g.err[i] * (std::fabs(u.val[i]) + u.err[i]) +
             std::fabs(gelu) * u.err[i];
    }
    return e;
  }
  case GEMMAC_OP_FINAL_HEAD: {
    const int64_t rows = c.outputs[0][0], first = T - rows;
    std::vector<double> x(ins[0].values.begin() + first * K,
                          ins[0].values.end());
    x = NormRows(x, rows, K, &ins[1].values, a);
    return DotRows(x, rows, K, ins[2], c.inputs[2].dtype, a.rows).err;
  }
  case GEMMAC_OP_QKV_PROJ: {
    const std::vector<double> x = NormRows(ins[0].values, T, K, opt(1), a);
    const int64_t N = c.inputs[2 + o].shape[0], D = a.head_dim;
    const Dots h = DotRows(x, T, K, ins[2 + o], c.inputs[2 + o].dtype, N);
    if (o == 2)
      return h.err; // v: the dot alone
    std::vector<double> e = h.err;
    if (const std::vector<double> *w = opt(5 + o)) {
      for (int64_t t = 0; t < T; ++t)
        for (int64_t g = 0; g < N; g += D) {
          const size_t at = size_t(t * N + g);
          double ss = 0, mix = 0;
          for (int64_t i = 0; i < D; ++i) {
            ss += h.val[at + i] * h.val[at + i];
            mix += std::fabs(h.val[at + i]) * h.err[at + i];
          }
          const double ms = ss / double(D) + a.eps, r = 1 / std::sqrt(ms);
          for (int64_t i = 0; i < D; ++i)
            e[at + i] = r * std::fabs(a.offset + (*w)[size_t(i)]) *
                        (h.err[at + i] +
                         std::fabs(h.val[at + i]) * mix / (double(D) * ms));
        }
    }
    std::vector<double> roped(e.size());
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < N; ++i) {
        const int64_t j = i % D < D / 2 ? i + D / 2 : i - D / 2;
        roped[size_t(t * N + i)] = e[size_t(t * N + i)] + e[size_t(t * N + j)];
      }
    return roped;
  }
  default:
    return {};
  }
}

// Compares output `o` of the plugin with the reference's; one failure per
// output, naming the first few elements that differ.
void CompareOutput(const OpCase &c, const std::vector<Input> &ins, size_t o,
                   const float *got, const float *want) {
  const std::vector<int64_t> &shape = c.outputs[o];
  const int64_t n = Count(shape), cols = shape.back(), rows = n / cols;
  const bool bf16 = PrecisionLevel() == Precision::kBf16;
  const bool quant = AnyQuantized(c);
  // sum_k |w_k x_k| of each output of a dot (linear, lm_head).
  std::vector<double> mag;
  if (c.tol == Tol::kDot) {
    const std::vector<double> &x = ins[0].values, &w = ins[1].values;
    const int64_t K = c.inputs[0].shape[1];
    mag.resize(size_t(n));
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t j = 0; j < cols; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += std::fabs(x[size_t(t * K + k)] * w[size_t(j * K + k)]);
        mag[size_t(t * cols + j)] = s;
      }
  }
  std::vector<double> carried;
  if (c.tol == Tol::kFused && quant)
    carried = FusedBound(c, ins, o);
  int failures = 0;
  std::ostringstream detail;
  const char *rule = "";
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t i = r * cols + j;
      const double ref = want[i];
      double tol;
      if (c.tol == Tol::kDot && quant) {
        tol = std::ldexp(1.0, -7) * 1.5 * mag[size_t(i)] + 1e-5;
        rule = "quantized weights: 2^-7 * 1.5 * sum|w x| + 1e-5";
      } else if (c.tol == Tol::kDot) {
        tol = (bf16 ? 1e-2 : 1e-5) * mag[size_t(i)] + 1e-5;
        rule = bf16 ? "bf16: 1e-2 * sum|w x| + 1e-5"
                    : "f32 dot: 1e-5 * sum|w x| + 1e-5";
      } else if (c.tol == Tol::kFused && quant) {
        tol = carried[size_t(i)] + 1e-4 * (1 + std::fabs(ref));
        rule = "fused op on quantized weights: the dots' bound 2^-7 * 1.5 * "
               "sum|w x| + 1e-5 carried through the epilogue, + 1e-4 * (1 + "
               "|ref|)";
      } else {
        tol = (bf16 ? 1e-2 : 1e-4) * (1 + std::fabs(ref));
        rule = bf16 ? "bf16: 1e-2 * (1 + |ref|)" : "f32: 1e-4 * (1 + |ref|)";
      }
      const double diff = std::fabs(double(got[i]) - ref);
      if (diff <= tol) // false for NaN: an unwritten or NaN output fails
        continue;
      if (++failures <= 4) {
        detail << "\n  element [";
        for (size_t k = 0, rest = size_t(i); k < shape.size(); ++k) {
          size_t stride = 1;
          for (size_t m = k + 1; m < shape.size(); ++m)
            stride *= size_t(shape[m]);
          detail << (k ? "," : "") << rest / stride;
          rest %= stride;
        }
        detail << "]: plugin " << got[i] << ", reference " << ref << ", |d| "
               << diff << " > tolerance " << tol;
      }
    }
  }
  if (failures > 0)
    ADD_FAILURE() << Signature(c) << ", T=" << c.T << ", past=" << c.past
                  << ": output " << o << " differs from the reference in "
                  << failures << " of " << n << " elements (tolerance " << rule
                  << ")" << detail.str();
}

// The KV cache rows of layer 1 after the call: written rows as stored values
// (f32 within the f32 bound; i8 codes within one step, scales within 1e-6
// relative), the rest untouched.
void CompareKv(const OpCase &c, const PluginRun &p, const PluginRun &ref) {
  const int64_t KV = c.attrs.num_kv_heads, D = c.attrs.head_dim;
  const int64_t n = int64_t(c.capacity) * KV * D;
  const char *names[4] = {"k", "v", "k_scale", "v_scale"};
  const bool i8 = c.kv_dtype == GEMMAC_DTYPE_I8;
  for (int j = 0; j < (i8 ? 4 : 2); ++j) {
    const int64_t count = j < 2 ? n : int64_t(c.capacity) * KV;
    int failures = 0;
    std::ostringstream first;
    for (int64_t i = 0; i < count; ++i) {
      double a, b, tol;
      if (j < 2 && i8) {
        a = reinterpret_cast<const int8_t *>(p.kv_host[j].data())[i];
        b = reinterpret_cast<const int8_t *>(ref.kv_host[j].data())[i];
        tol = 1;
      } else {
        a = reinterpret_cast<const float *>(p.kv_host[j].data())[i];
        b = reinterpret_cast<const float *>(ref.kv_host[j].data())[i];
        tol = (j < 2 ? 1e-4 : 1e-6) * (j < 2 ? 1 + std::fabs(b) : std::fabs(b));
      }
      if (std::fabs(a - b) <= tol)
        continue;
      if (++failures == 1)
        first << " first at row " << i / (j < 2 ? KV * D : KV) << " (position "
              << "p with p % capacity == row): plugin " << a << ", reference "
              << b;
    }
    if (failures > 0)
      ADD_FAILURE() << Signature(c) << ", T=" << c.T << ", past=" << c.past
                    << ", capacity " << c.capacity << ", window "
                    << c.attrs.window << ": KV cache " << names[j]
                    << " differs from the reference in " << failures
                    << " elements;" << first.str()
                    << " (expected rows (past + t) % capacity written, the "
                       "rest untouched)";
  }
}

TEST_P(OpConformance, MatchesReference) {
  const OpCase &c = GetParam();
  ASSERT_TRUE(plugin_->ok()) << plugin_->error();
  ASSERT_TRUE(reference_->ok()) << reference_->error();
  std::vector<int32_t> in_dt, out_dt(c.outputs.size(), GEMMAC_DTYPE_F32);
  for (const Operand &o : c.inputs)
    in_dt.push_back(o.dtype);
  gemmac_op_desc d{};
  d.struct_size = sizeof(d);
  d.op = c.op;
  d.attrs = c.attrs;
  d.attrs.struct_size = sizeof(d.attrs);
  d.num_inputs = uint32_t(in_dt.size());
  d.input_dtypes = in_dt.data();
  d.num_outputs = uint32_t(out_dt.size());
  d.output_dtypes = out_dt.data();
  ASSERT_TRUE(reference_->api().supports(reference_->get(), &d))
      << "the reference declines " << Signature(c) << ": a bug in the suite";
  if (!plugin_->api().supports(plugin_->get(), &d))
    GTEST_SKIP() << "plugin does not support op " << Signature(c);

  std::mt19937 rng(Seed(c.name));
  std::vector<Input> ins = MakeInputs(c, rng);
  KvInit kv;
  if (c.op == GEMMAC_OP_ATTENTION)
    kv = MakeKvInit(c, rng);
  PluginRun p(*plugin_), ref(*reference_);
  const std::string perr = Launch(c, ins, kv, p);
  ASSERT_EQ(perr, "") << UnderTest().path << ": " << Signature(c)
                      << ", T=" << c.T << ": " << perr;
  const std::string rerr = Launch(c, ins, kv, ref);
  ASSERT_EQ(rerr, "") << "reference: " << Signature(c) << ": " << rerr;
  for (size_t o = 0; o < c.outputs.size(); ++o)
    CompareOutput(c, ins, o, p.out_host[o].data(), ref.out_host[o].data());
  if (c.op == GEMMAC_OP_ATTENTION)
    CompareKv(c, p, ref);
}

// ---- the cases -------------------------------------------------------------

constexpr int32_t kWeightDTypes[] = {GEMMAC_DTYPE_F32,    GEMMAC_DTYPE_BF16,
                                     GEMMAC_DTYPE_F16,    GEMMAC_DTYPE_Q8C,
                                     GEMMAC_DTYPE_Q4G32,  GEMMAC_DTYPE_Q4G128,
                                     GEMMAC_DTYPE_Q4G32R8};
constexpr int32_t kFloatDTypes[] = {GEMMAC_DTYPE_F32, GEMMAC_DTYPE_BF16,
                                    GEMMAC_DTYPE_F16};
constexpr int32_t F32 = GEMMAC_DTYPE_F32;

Operand Act(const char *name, std::vector<int64_t> shape, float lo = -1,
            float hi = 1) {
  return {name, Role::kAct, F32, std::move(shape), lo, hi};
}
// Norm vectors and matrices live in the weight segment (host memory).
Operand Weight(const char *name, int32_t dtype, std::vector<int64_t> shape,
               float lo = -0.25f, float hi = 0.25f) {
  return {name, Role::kWeight, dtype, std::move(shape), lo, hi};
}
Operand Norm(const char *name, int64_t n, int32_t dtype = F32) {
  return Weight(name, dtype, {n}, -0.5f, 0.5f);
}
Operand Absent(const char *name) {
  return {name, Role::kAbsent, GEMMAC_DTYPE_NONE, {}, 0, 0};
}

gemmac_op_attrs Attrs() {
  gemmac_op_attrs a{};
  a.struct_size = sizeof(a);
  a.eps = 1e-6f;
  a.offset = 1.0f;
  a.theta = 10000.0f;
  a.rope_scale = 1.0f;
  return a;
}

std::vector<OpCase> AllCases() {
  std::vector<OpCase> cases;
  auto add = [&](std::string name, int32_t op, gemmac_op_attrs a,
                 std::vector<Operand> in, std::vector<std::vector<int64_t>> out,
                 int64_t T, Tol tol = Tol::kElementwise, int64_t past = 0) {
    OpCase c;
    c.name = std::move(name) + "_T" + std::to_string(T);
    c.op = op;
    c.attrs = a;
    c.inputs = std::move(in);
    c.outputs = std::move(out);
    c.T = T;
    c.past = past;
    c.tol = tol;
    cases.push_back(std::move(c));
    return &cases.back();
  };
  for (int64_t T : {1, 5}) {
    for (int32_t w : kWeightDTypes) {
      const std::string dt = DTypeName(w);
      gemmac_op_attrs a = Attrs();
      a.scale = 11.3125f; // sqrt(128) in bf16, as the compiler sets it
      add("embed_" + dt, GEMMAC_OP_EMBED, a,
          {{"tokens", Role::kTokens, GEMMAC_DTYPE_I32, {T}, 0, 16},
           Weight("table", w, {16, 128}, -1, 1)},
          {{T, 128}}, T);
      add("linear_" + dt, GEMMAC_OP_LINEAR, Attrs(),
          {Act("x", {T, 128}), Weight("w", w, {24, 128})}, {{T, 24}}, T,
          Tol::kDot);
      a = Attrs();
      a.rows = 37;
      add("lm_head_" + dt, GEMMAC_OP_LM_HEAD, a,
          {Act("x", {T, 128}), Weight("table", w, {40, 128})}, {{T, 37}}, T,
          Tol::kDot);
      for (int norms = 0; norms < 2; ++norms) {
        const std::string var = norms ? "_norms" : "_no_norms";
        a = Attrs();
        a.head_dim = 8;
        a.num_heads = 4;
        a.num_kv_heads = 2;
        add("qkv_proj_" + dt + var, GEMMAC_OP_QKV_PROJ, a,
            {Act("x", {T, 128}), norms ? Norm("norm", 128) : Absent("norm"),
             Weight("wq", w, {32, 128}), Weight("wk", w, {16, 128}),
             Weight("wv", w, {16, 128}),
             norms ? Norm("q_norm", 8) : Absent("q_norm"),
             norms ? Norm("k_norm", 8) : Absent("k_norm")},
            {{T, 32}, {T, 16}, {T, 16}}, T, Tol::kFused, 3);
        add("gated_mlp_" + dt + (norms ? "_norm" : "_no_norm"),
            GEMMAC_OP_GATED_MLP, Attrs(),
            {Act("x", {T, 128}), norms ? Norm("norm", 128) : Absent("norm"),
             Weight("w_gate", w, {16, 128}), Weight("w_up", w, {16, 128})},
            {{T, 16}}, T, Tol::kFused);
      }
      a = Attrs();
      a.rows = 37;
      add("final_head_" + dt, GEMMAC_OP_FINAL_HEAD, a,
          {Act("x", {T, 128}), Norm("norm", 128),
           Weight("table", w, {40, 128})},
          {{T, 37}}, T, Tol::kFused);
      // Gemma 2's soft-cap; at T > 1 only the last position's logits.
      a.softcap = 3.0f;
      add("final_head_" + dt + (T > 1 ? "_softcap_last" : "_softcap"),
          GEMMAC_OP_FINAL_HEAD, a,
          {Act("x", {T, 128}), Norm("norm", 128),
           Weight("table", w, {40, 128})},
          {{T > 1 ? 1 : T, 37}}, T, Tol::kFused);
    }
    // Mixed weight dtypes in one fused op.
    gemmac_op_attrs a = Attrs();
    a.head_dim = 8;
    a.num_heads = 4;
    a.num_kv_heads = 2;
    add("qkv_proj_mixed", GEMMAC_OP_QKV_PROJ, a,
        {Act("x", {T, 128}), Norm("norm", 128),
         Weight("wq", GEMMAC_DTYPE_Q4G32R8, {32, 128}),
         Weight("wk", GEMMAC_DTYPE_Q8C, {16, 128}),
         Weight("wv", GEMMAC_DTYPE_BF16, {16, 128}), Absent("q_norm"),
         Absent("k_norm")},
        {{T, 32}, {T, 16}, {T, 16}}, T, Tol::kFused, 3);
    add("gated_mlp_mixed", GEMMAC_OP_GATED_MLP, Attrs(),
        {Act("x", {T, 128}), Norm("norm", 128),
         Weight("w_gate", GEMMAC_DTYPE_Q4G32, {16, 128}),
         Weight("w_up", GEMMAC_DTYPE_Q4G128, {16, 128})},
        {{T, 16}}, T, Tol::kFused);

    for (int32_t w : kFloatDTypes)
      for (int64_t D : {64, 16}) // the usual norm and a per-head QK-norm
        add("rms_norm_" + std::string(DTypeName(w)) + "_D" + std::to_string(D),
            GEMMAC_OP_RMS_NORM, Attrs(), {Act("x", {T, 64}), Norm("w", D, w)},
            {{T, 64}}, T);
    add("add_rms_norm", GEMMAC_OP_ADD_RMS_NORM, Attrs(),
        {Act("x", {T, 64}), Act("y", {T, 64}), Norm("w", 64)},
        {{T, 64}, {T, 64}}, T);
    for (float rs : {1.0f, 8.0f}) {
      a = Attrs();
      a.head_dim = 16;
      a.rope_scale = rs;
      add(rs == 1 ? "rope" : "rope_scaled", GEMMAC_OP_ROPE, a,
          {Act("x", {T, 64})}, {{T, 64}}, T, Tol::kElementwise, 7);
    }
    add("gelu_tanh", GEMMAC_OP_GELU_TANH, Attrs(), {Act("x", {T, 64}, -4, 4)},
        {{T, 64}}, T);
    add("mul", GEMMAC_OP_MUL, Attrs(), {Act("a", {T, 64}), Act("b", {T, 64})},
        {{T, 64}}, T);
    add("add", GEMMAC_OP_ADD, Attrs(), {Act("a", {T, 64}), Act("b", {T, 64})},
        {{T, 64}}, T);
    a = Attrs();
    a.softcap = 5.0f;
    add("softcap", GEMMAC_OP_SOFTCAP, a, {Act("x", {T, 64}, -12, 12)},
        {{T, 64}}, T);
    a = Attrs();
    a.scale = 0.37f;
    add("scale", GEMMAC_OP_SCALE, a, {Act("x", {T, 64})}, {{T, 64}}, T);

    // Grouped attention (query heads per KV head > 1) on a global layer
    // with past rows, and on a sliding window over a ring smaller than the
    // context (window + T - 1 <= capacity) with a soft-cap. The long shape
    // has 1500 past positions, where a plugin that splits the keys across
    // threads or blocks (flash-decoding) actually splits them, and its ring
    // has wrapped.
    struct AttentionShape {
      const char *name;
      int32_t heads, head_dim, window;
      float scale, softcap;
      int64_t past_global, past_ring;
      int32_t capacity_global, capacity_ring;
    };
    const AttentionShape shapes[] = {
        {"attention_", 4, 16, 4, 0.25f, 3.0f, 3, 9, 16, 8},
        {"attention_long_", 8, 64, 512, 0.125f, 30.0f, 1500, 1500, 2048, 520},
    };
    for (const AttentionShape &sh : shapes)
      for (int32_t kv : {GEMMAC_DTYPE_F32, GEMMAC_DTYPE_I8})
        for (int ring = 0; ring < 2; ++ring) {
          a = Attrs();
          a.layer = 1;
          a.num_heads = sh.heads;
          a.num_kv_heads = 2;
          a.head_dim = sh.head_dim;
          a.scale = sh.scale;
          a.window = ring ? sh.window : 0;
          a.softcap = ring ? sh.softcap : 0.0f;
          const int64_t q = sh.heads * sh.head_dim, k = 2 * sh.head_dim;
          OpCase *c = add(
              std::string(sh.name) + DTypeName(kv) +
                  (ring ? "_ring_window_softcap" : "_global"),
              GEMMAC_OP_ATTENTION, a,
              {Act("q", {T, q}), Act("k", {T, k}), Act("v", {T, k})}, {{T, q}},
              T, Tol::kElementwise, ring ? sh.past_ring : sh.past_global);
          c->kv_dtype = kv;
          c->capacity = ring ? sh.capacity_ring : sh.capacity_global;
        }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Ops, OpConformance, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<OpCase> &info) {
                           return info.param.name;
                         });

} // namespace
} // namespace gemmac::conformance
