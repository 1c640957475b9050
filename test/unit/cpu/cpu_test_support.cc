#include "cpu_test_support.h"

#include <dlfcn.h>

#include <cmath>
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
  default:
    return "i32";
  }
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

} // namespace gemmac::cpu_test
