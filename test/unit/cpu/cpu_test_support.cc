#include "cpu_test_support.h"

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "gemmac/cpu_plugin.h"

namespace gemmac::cpu_test {

std::string LoadPlugin(Linkage linkage, gemmac_plugin_api *api, void **dl) {
  gemmac_plugin_entry_fn entry = gemmac_cpu_plugin_entry;
  if (linkage == Linkage::kShared) {
    *dl = dlopen(GEMMAC_CPU_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    if (*dl == nullptr)
      return std::string("dlopen ") + GEMMAC_CPU_PLUGIN_PATH + ": " + dlerror();
    entry = reinterpret_cast<gemmac_plugin_entry_fn>(
        dlsym(*dl, GEMMAC_PLUGIN_ENTRY_SYMBOL));
    if (entry == nullptr)
      return std::string("dlsym gemmac_plugin_entry: ") + dlerror();
  }
  *api = {};
  const int32_t rc = entry(GEMMAC_PLUGIN_ABI_MAJOR, api, sizeof(*api));
  if (rc != GEMMAC_PLUGIN_OK)
    return "entry returned " + std::to_string(rc);
  return "";
}

uint16_t Bf16FromFloat(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

double Bf16ToDouble(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t F16FromFloat(float f) {
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double a = std::fabs(double(f));
  if (a >= 65520.0)
    return sign | 0x7C00;
  if (a < std::ldexp(1.0, -14)) // subnormal: units of 2^-24
    return sign | uint16_t(std::nearbyint(a * std::ldexp(1.0, 24)));
  int e;
  std::frexp(a, &e); // a = m * 2^e, m in [0.5, 1)
  int exponent = e - 1;
  double m = std::nearbyint((a / std::ldexp(1.0, exponent) - 1.0) * 1024.0);
  if (m >= 1024.0) {
    m = 0.0;
    ++exponent;
  }
  return sign | uint16_t((exponent + 15) << 10) | uint16_t(m);
}

double F16ToDouble(uint16_t h) {
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  const int e = (h >> 10) & 0x1F;
  const int m = h & 0x3FF;
  if (e == 0)
    return sign * std::ldexp(double(m), -24);
  if (e == 31)
    return m ? std::nan("") : sign * INFINITY;
  return sign * std::ldexp(double(1024 + m), e - 25);
}

Weights MakeWeights(int32_t dtype, size_t n, std::mt19937 &rng, float lo,
                    float hi) {
  Weights w;
  w.dtype = dtype;
  w.values.resize(n);
  std::uniform_real_distribution<float> dist(lo, hi);
  if (dtype == GEMMAC_DTYPE_F32) {
    w.bytes.resize(n * 4);
    for (size_t i = 0; i < n; ++i) {
      const float v = dist(rng);
      std::memcpy(w.bytes.data() + 4 * i, &v, 4);
      w.values[i] = v;
    }
    w.mag = w.values;
    for (double &m : w.mag)
      m = std::fabs(m);
    return w;
  }
  w.bytes.resize(n * 2);
  for (size_t i = 0; i < n; ++i) {
    const float v = dist(rng);
    const uint16_t h =
        dtype == GEMMAC_DTYPE_BF16 ? Bf16FromFloat(v) : F16FromFloat(v);
    std::memcpy(w.bytes.data() + 2 * i, &h, 2);
    w.values[i] = dtype == GEMMAC_DTYPE_BF16 ? Bf16ToDouble(h) : F16ToDouble(h);
  }
  w.mag = w.values;
  for (double &m : w.mag)
    m = std::fabs(m);
  return w;
}

std::vector<float> Uniform(size_t n, std::mt19937 &rng, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float &x : v)
    x = dist(rng);
  return v;
}

gemmac_tensor Tensor(void *data, int32_t dtype,
                     std::initializer_list<int64_t> shape) {
  gemmac_tensor t{};
  t.struct_size = sizeof(t);
  t.data = data;
  t.dtype = dtype;
  t.rank = int32_t(shape.size());
  int i = 0;
  for (int64_t d : shape)
    t.shape[i++] = d;
  return t;
}

gemmac_op_attrs Attrs() {
  gemmac_op_attrs a{};
  a.struct_size = sizeof(a);
  a.scale = 1.0f;
  a.rope_scale = 1.0f;
  a.theta = 10000.0f;
  return a;
}

gemmac_exec_context Context(int64_t past, int64_t tokens,
                            const gemmac_kv_cache *kv, uint32_t num_kv) {
  gemmac_exec_context c{};
  c.struct_size = sizeof(c);
  c.past = past;
  c.tokens = tokens;
  c.kv = kv;
  c.num_kv = num_kv;
  return c;
}

const char *DTypeName(int32_t dtype) {
  switch (dtype) {
  case GEMMAC_DTYPE_F32:
    return "f32";
  case GEMMAC_DTYPE_BF16:
    return "bf16";
  case GEMMAC_DTYPE_F16:
    return "f16";
  case GEMMAC_DTYPE_I8:
    return "i8";
  case GEMMAC_DTYPE_Q8C:
    return "q8c";
  case GEMMAC_DTYPE_Q4G32:
    return "q4g32";
  case GEMMAC_DTYPE_Q4G128:
    return "q4g128";
  case GEMMAC_DTYPE_Q4G32R8:
    return "q4g32r8";
  case GEMMAC_DTYPE_NONE:
    return "none";
  default:
    return "i32";
  }
}

gemmac_tensor Absent() {
  gemmac_tensor t{};
  t.struct_size = sizeof(t);
  t.data = nullptr;
  t.dtype = GEMMAC_DTYPE_NONE;
  t.rank = 0;
  return t;
}

bool IsQuant(int32_t dtype) {
  return dtype == GEMMAC_DTYPE_Q8C || dtype == GEMMAC_DTYPE_Q4G32 ||
         dtype == GEMMAC_DTYPE_Q4G128 || dtype == GEMMAC_DTYPE_Q4G32R8;
}

std::vector<uint8_t> PackQ4G32R8(int64_t rows, int64_t cols,
                                 const std::vector<uint8_t> &q4g32) {
  // Run (g, b) = group g of 8 rows, 32-column block b: bytes
  // [(g * cols/32 + b) * 144, +144): the 8 rows' d, then the 8 rows' qs.
  const int64_t blocks = cols / 32;
  std::vector<uint8_t> out(q4g32.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t *blk = &q4g32[size_t((r * blocks + b) * 18)];
      uint8_t *run = &out[size_t(((r / 8) * blocks + b) * 144)];
      std::memcpy(run + 2 * (r % 8), blk, 2);
      std::memcpy(run + 16 + 16 * (r % 8), blk + 2, 16);
    }
  return out;
}

namespace {

void PutF32(std::vector<uint8_t> &b, size_t at, float f) {
  std::memcpy(b.data() + at, &f, 4);
}
void PutU16(std::vector<uint8_t> &b, size_t at, uint16_t h) {
  std::memcpy(b.data() + at, &h, 2);
}
float GetF32(const std::vector<uint8_t> &b, size_t at) {
  float f;
  std::memcpy(&f, b.data() + at, 4);
  return f;
}
uint16_t GetU16(const std::vector<uint8_t> &b, size_t at) {
  uint16_t h;
  std::memcpy(&h, b.data() + at, 2);
  return h;
}

// A 4-bit value packed as docs/quantization.md orders them: element j of a
// block of n is the low nibble of byte j for j < n/2, else the high nibble
// of byte j - n/2.
void PackNibbles(const int *nib, int n, uint8_t *qs) {
  for (int j = 0; j < n / 2; ++j)
    qs[j] = uint8_t(nib[j] | (nib[j + n / 2] << 4));
}
int Nibble(const uint8_t *qs, int n, int j) {
  return j < n / 2 ? (qs[j] & 15) : (qs[j - n / 2] >> 4);
}

} // namespace

Weights QuantizeMatrix(int32_t dtype, int64_t rows, int64_t cols,
                       const std::vector<float> &src) {
  Weights w;
  w.dtype = dtype;
  const size_t n = size_t(rows * cols);
  switch (dtype) {
  case GEMMAC_DTYPE_F32:
    w.bytes.resize(n * 4);
    std::memcpy(w.bytes.data(), src.data(), n * 4);
    break;
  case GEMMAC_DTYPE_BF16:
  case GEMMAC_DTYPE_F16:
    w.bytes.resize(n * 2);
    for (size_t i = 0; i < n; ++i)
      PutU16(w.bytes, 2 * i,
             dtype == GEMMAC_DTYPE_BF16 ? Bf16FromFloat(src[i])
                                        : F16FromFloat(src[i]));
    break;
  case GEMMAC_DTYPE_Q8C: {
    // int8 q[rows][cols], then f32 scale[rows]; scale = max|w_row| / 127.
    w.bytes.resize(n + size_t(rows) * 4);
    for (int64_t r = 0; r < rows; ++r) {
      float amax = 0.0f;
      for (int64_t c = 0; c < cols; ++c)
        amax = std::max(amax, std::fabs(src[r * cols + c]));
      const float scale = amax / 127.0f;
      for (int64_t c = 0; c < cols; ++c) {
        const double q =
            scale > 0 ? std::round(double(src[r * cols + c]) / scale) : 0.0;
        w.bytes[r * cols + c] =
            uint8_t(int8_t(std::max(-127.0, std::min(127.0, q))));
      }
      PutF32(w.bytes, n + size_t(r) * 4, scale);
    }
    break;
  }
  case GEMMAC_DTYPE_Q4G32: {
    // Blocks of {f16 d, u8 qs[16]}; d = m / -8 with m the element of
    // largest magnitude; nibble = round(w / d) + 8, clamped to [0, 15].
    const int64_t blocks = cols / 32;
    w.bytes.resize(size_t(rows * blocks * 18));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t b = 0; b < blocks; ++b) {
        const float *x = &src[r * cols + b * 32];
        float m = 0.0f;
        for (int j = 0; j < 32; ++j)
          if (std::fabs(x[j]) > std::fabs(m))
            m = x[j];
        const uint16_t d16 = F16FromFloat(m / -8.0f);
        const double d = F16ToDouble(d16);
        int nib[32];
        for (int j = 0; j < 32; ++j) {
          const double q = d != 0 ? std::round(x[j] / d) + 8 : 8;
          nib[j] = int(std::max(0.0, std::min(15.0, q)));
        }
        const size_t at = size_t((r * blocks + b) * 18);
        PutU16(w.bytes, at, d16);
        PackNibbles(nib, 32, w.bytes.data() + at + 2);
      }
    break;
  }
  case GEMMAC_DTYPE_Q4G32R8:
    // Q4G32's bytes, interleaved by groups of 8 rows.
    w.bytes = PackQ4G32R8(
        rows, cols, QuantizeMatrix(GEMMAC_DTYPE_Q4G32, rows, cols, src).bytes);
    break;
  case GEMMAC_DTYPE_Q4G128: {
    // Blocks of {f16 d, f16 m, u8 qs[64]}; m = min, d = (max - min) / 15;
    // nibble = round((w - m) / d), clamped to [0, 15].
    const int64_t blocks = cols / 128;
    w.bytes.resize(size_t(rows * blocks * 68));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t b = 0; b < blocks; ++b) {
        const float *x = &src[r * cols + b * 128];
        float lo = x[0], hi = x[0];
        for (int j = 0; j < 128; ++j) {
          lo = std::min(lo, x[j]);
          hi = std::max(hi, x[j]);
        }
        const uint16_t d16 = F16FromFloat((hi - lo) / 15.0f);
        const uint16_t m16 = F16FromFloat(lo);
        const double d = F16ToDouble(d16), m = F16ToDouble(m16);
        int nib[128];
        for (int j = 0; j < 128; ++j) {
          const double q = d != 0 ? std::round((x[j] - m) / d) : 0;
          nib[j] = int(std::max(0.0, std::min(15.0, q)));
        }
        const size_t at = size_t((r * blocks + b) * 68);
        PutU16(w.bytes, at, d16);
        PutU16(w.bytes, at + 2, m16);
        PackNibbles(nib, 128, w.bytes.data() + at + 4);
      }
    break;
  }
  default:
    ADD_FAILURE() << "QuantizeMatrix: dtype " << dtype;
  }
  w.values = DequantizeMatrix(dtype, rows, cols, w.bytes, &w.mag);
  return w;
}

std::vector<double> DequantizeMatrix(int32_t dtype, int64_t rows, int64_t cols,
                                     const std::vector<uint8_t> &bytes,
                                     std::vector<double> *mag) {
  const size_t n = size_t(rows * cols);
  std::vector<double> v(n), g(n);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const size_t i = size_t(r * cols + c);
      switch (dtype) {
      case GEMMAC_DTYPE_F32:
        v[i] = GetF32(bytes, 4 * i);
        break;
      case GEMMAC_DTYPE_BF16:
        v[i] = Bf16ToDouble(GetU16(bytes, 2 * i));
        break;
      case GEMMAC_DTYPE_F16:
        v[i] = F16ToDouble(GetU16(bytes, 2 * i));
        break;
      case GEMMAC_DTYPE_Q8C:
        v[i] = double(int8_t(bytes[i])) * GetF32(bytes, n + size_t(r) * 4);
        break;
      case GEMMAC_DTYPE_Q4G32: {
        const size_t at = size_t((r * (cols / 32) + c / 32) * 18);
        const int nib = Nibble(bytes.data() + at + 2, 32, int(c % 32));
        v[i] = (nib - 8) * F16ToDouble(GetU16(bytes, at));
        break;
      }
      case GEMMAC_DTYPE_Q4G32R8: {
        // Row r's block lives in run (r / 8, c / 32): its d at 2 * (r % 8),
        // its qs at 16 + 16 * (r % 8).
        const size_t run = size_t(((r / 8) * (cols / 32) + c / 32) * 144);
        const int nib =
            Nibble(bytes.data() + run + 16 + 16 * (r % 8), 32, int(c % 32));
        v[i] = (nib - 8) * F16ToDouble(GetU16(bytes, run + 2 * (r % 8)));
        break;
      }
      case GEMMAC_DTYPE_Q4G128: {
        const size_t at = size_t((r * (cols / 128) + c / 128) * 68);
        const int nib = Nibble(bytes.data() + at + 4, 128, int(c % 128));
        const double d = F16ToDouble(GetU16(bytes, at));
        const double m = F16ToDouble(GetU16(bytes, at + 2));
        v[i] = nib * d + m;
        g[i] = std::fabs(nib * d) + std::fabs(m);
        continue;
      }
      default:
        ADD_FAILURE() << "DequantizeMatrix: dtype " << dtype;
      }
      g[i] = std::fabs(v[i]);
    }
  if (mag != nullptr)
    *mag = std::move(g);
  return v;
}

Weights MakeMatrix(int32_t dtype, int64_t rows, int64_t cols, std::mt19937 &rng,
                   float lo, float hi) {
  return QuantizeMatrix(dtype, rows, cols,
                        Uniform(size_t(rows * cols), rng, lo, hi));
}

float QuantizeKvRow(const float *x, int64_t n, int8_t *q) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i)
    amax = std::max(amax, std::fabs(x[i]));
  const float s = amax / 127.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float r = s > 0.0f ? std::round(x[i] / s) : 0.0f;
    q[i] = int8_t(std::max(-127.0f, std::min(127.0f, r)));
  }
  return s;
}

std::string LinkageName(const ::testing::TestParamInfo<Linkage> &info) {
  return info.param == Linkage::kStatic ? "Static" : "Shared";
}

void CpuPluginTest::SetUp() {
  const std::string err = LoadPlugin(GetParam(), &api_, &dl_);
  ASSERT_EQ(err, "");
  gemmac_backend_options opts{};
  opts.struct_size = sizeof(opts);
  opts.num_threads = 2;
  gemmac_plugin_error e{};
  e.struct_size = sizeof(e);
  ASSERT_EQ(api_.create(&opts, &backend_, &e), GEMMAC_PLUGIN_OK) << e.message;
  ASSERT_NE(backend_, nullptr);
}

void CpuPluginTest::TearDown() {
  for (gemmac_kernel *k : kernels_)
    api_.release(backend_, k);
  if (backend_ != nullptr)
    api_.destroy(backend_);
  if (dl_ != nullptr)
    dlclose(dl_);
}

gemmac_op_desc CpuPluginTest::Desc(int32_t op, const gemmac_op_attrs &attrs,
                                   const std::vector<int32_t> &inputs,
                                   const int32_t *output) {
  gemmac_op_desc d{};
  d.struct_size = sizeof(d);
  d.op = op;
  d.attrs = attrs;
  d.num_inputs = uint32_t(inputs.size());
  d.input_dtypes = inputs.data();
  d.num_outputs = 1;
  d.output_dtypes = output;
  return d;
}

gemmac_kernel *CpuPluginTest::Prepare(int32_t op, const gemmac_op_attrs &attrs,
                                      std::vector<int32_t> inputs,
                                      int32_t output) {
  const gemmac_op_desc d = Desc(op, attrs, inputs, &output);
  EXPECT_NE(api_.supports(backend_, &d), 0) << "op " << op;
  gemmac_plugin_error e{};
  e.struct_size = sizeof(e);
  gemmac_kernel *k = nullptr;
  const int32_t rc = api_.prepare(backend_, &d, &k, &e);
  EXPECT_EQ(rc, GEMMAC_PLUGIN_OK) << e.message;
  if (k != nullptr)
    kernels_.push_back(k);
  return k;
}

int32_t CpuPluginTest::Launch(gemmac_kernel *kernel,
                              std::vector<gemmac_tensor> inputs,
                              gemmac_tensor output,
                              const gemmac_exec_context *context,
                              std::string *message) {
  gemmac_plugin_error e{};
  e.struct_size = sizeof(e);
  const int32_t rc =
      api_.launch(backend_, kernel, inputs.data(), uint32_t(inputs.size()),
                  &output, 1, context, &e);
  if (message != nullptr)
    *message = e.message;
  return rc;
}

void CpuPluginTest::Run(int32_t op, const gemmac_op_attrs &attrs,
                        std::vector<int32_t> dtypes,
                        std::vector<gemmac_tensor> inputs, gemmac_tensor output,
                        const gemmac_exec_context *context) {
  gemmac_kernel *k = Prepare(op, attrs, std::move(dtypes));
  ASSERT_NE(k, nullptr);
  std::string msg;
  ASSERT_EQ(Launch(k, std::move(inputs), output, context, &msg),
            GEMMAC_PLUGIN_OK)
      << msg;
}

gemmac_kernel *CpuPluginTest::PrepareN(int32_t op, const gemmac_op_attrs &attrs,
                                       std::vector<int32_t> inputs,
                                       int num_outputs) {
  const std::vector<int32_t> outs(size_t(num_outputs), GEMMAC_DTYPE_F32);
  gemmac_op_desc d = Desc(op, attrs, inputs, outs.data());
  d.num_outputs = uint32_t(num_outputs);
  EXPECT_NE(api_.supports(backend_, &d), 0) << "op " << op;
  gemmac_plugin_error e{};
  e.struct_size = sizeof(e);
  gemmac_kernel *k = nullptr;
  const int32_t rc = api_.prepare(backend_, &d, &k, &e);
  EXPECT_EQ(rc, GEMMAC_PLUGIN_OK) << e.message;
  if (k != nullptr)
    kernels_.push_back(k);
  return k;
}

int32_t CpuPluginTest::LaunchN(gemmac_kernel *kernel,
                               std::vector<gemmac_tensor> inputs,
                               std::vector<gemmac_tensor> outputs,
                               const gemmac_exec_context *context,
                               std::string *message) {
  gemmac_plugin_error e{};
  e.struct_size = sizeof(e);
  const int32_t rc =
      api_.launch(backend_, kernel, inputs.data(), uint32_t(inputs.size()),
                  outputs.data(), uint32_t(outputs.size()), context, &e);
  if (message != nullptr)
    *message = e.message;
  return rc;
}

void CpuPluginTest::RunN(int32_t op, const gemmac_op_attrs &attrs,
                         std::vector<int32_t> dtypes,
                         std::vector<gemmac_tensor> inputs,
                         std::vector<gemmac_tensor> outputs,
                         const gemmac_exec_context *context) {
  gemmac_kernel *k =
      PrepareN(op, attrs, std::move(dtypes), int(outputs.size()));
  ASSERT_NE(k, nullptr);
  std::string msg;
  ASSERT_EQ(LaunchN(k, std::move(inputs), std::move(outputs), context, &msg),
            GEMMAC_PLUGIN_OK)
      << msg;
}

Dot RefDot(const std::vector<double> &xp, const Weights &w, int64_t n) {
  const int64_t K = int64_t(xp.size());
  const double *wv = w.values.data() + n * K;
  const double *wm = w.mag.data() + n * K;
  Dot d;
  // GEMMAC_CPU_F32_ACTS=1 (tiles.h): quantized weights meet x itself.
  const char *f32_acts = std::getenv("GEMMAC_CPU_F32_ACTS");
  if (!IsQuant(w.dtype) || (f32_acts && std::strcmp(f32_acts, "1") == 0)) {
    for (int64_t k = 0; k < K; ++k) {
      d.value += xp[k] * wv[k];
      d.mag += std::fabs(xp[k]) * wm[k];
    }
    return d;
  }
  for (int64_t k0 = 0; k0 < K; k0 += 32) {
    const int64_t k1 = std::min<int64_t>(K, k0 + 32);
    double amax = 0;
    for (int64_t k = k0; k < k1; ++k)
      amax = std::max(amax, std::fabs(xp[k]));
    const double db = amax / 127.0;
    if (db == 0)
      continue;
    for (int64_t k = k0; k < k1; ++k) {
      const double r = xp[k] / db;
      const double q = std::nearbyint(r); // ties to even: the default mode
      const double xq = q * db;
      d.value += xq * wv[k];
      d.mag += std::fabs(xq) * wm[k];
      if (std::fabs(std::fabs(r - std::floor(r)) - 0.5) < 1e-3)
        d.slack += db * wm[k];
    }
  }
  return d;
}

} // namespace gemmac::cpu_test
