// Shared fixture of the CPU backend tests: loads the plugin either through
// the static entry or from libgemmac_cpu.so (the test parameter), creates a
// backend, and offers small helpers to prepare and launch one op. Also the
// tests' own weight encodings (f32 -> bf16/f16 and back), written here from
// the IEEE definitions so they share no code with the backend.
#ifndef GEMMAC_TEST_UNIT_CPU_CPU_TEST_SUPPORT_H_
#define GEMMAC_TEST_UNIT_CPU_CPU_TEST_SUPPORT_H_

#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gemmac/plugin.h"

namespace gemmac::cpu_test {

enum class Linkage { kStatic, kShared };

// Loads the plugin table. For kShared, *dl receives the dlopen handle.
// Returns an empty string on success, else what went wrong.
std::string LoadPlugin(Linkage linkage, gemmac_plugin_api *api, void **dl);

// Test-side numeric formats.
uint16_t Bf16FromFloat(float f); // round to nearest even
double Bf16ToDouble(uint16_t h);
uint16_t F16FromFloat(float f); // round to nearest; finite inputs
double F16ToDouble(uint16_t h); // from the IEEE 754 definition

// A weight tensor's stored bytes and the exact values they hold.
struct Weights {
  int32_t dtype = GEMMAC_DTYPE_F32;
  std::vector<uint8_t> bytes;
  std::vector<double> values;
  // Per element, the magnitude a kernel's f32 sums may round against: |w|,
  // except Q4G128, whose kernels sum nibble * d and m separately:
  // |nibble * d| + |m|. Tolerances of matrix products scale with
  // sum_k |x_k| * mag_k.
  std::vector<double> mag;
  void *data() { return bytes.data(); }
};
Weights MakeWeights(int32_t dtype, size_t n, std::mt19937 &rng, float lo,
                    float hi);

// The quantized weight formats, written here from docs/quantization.md and
// sharing no code with the backend.
bool IsQuant(int32_t dtype);
// Quantizes src [rows, cols] (row-major) into dtype's byte layout (any
// weight dtype; float ones are rounded to nearest); values and mag come
// from DequantizeMatrix of those bytes.
Weights QuantizeMatrix(int32_t dtype, int64_t rows, int64_t cols,
                       const std::vector<float> &src);
// The Q4G32R8 layout of a Q4G32 matrix (rows % 8 == 0): the same blocks,
// moved to docs/quantization.md's "Packed layouts" order.
std::vector<uint8_t> PackQ4G32R8(int64_t rows, int64_t cols,
                                 const std::vector<uint8_t> &q4g32);
// One output of a matrix product as the tile kernels compute it
// (backends/cpu/src/tiles.h, docs/quantization.md "Kernel arithmetic"): a
// float weight meets the input row xp; a quantized weight meets xp's Q8
// codes, blocks of 32 columns with d = max|x| / 127 and q = round-to-even
// (x / d), written here in double. value is the exact product; tolerances
// are kRel * mag (the f32 sums) + slack, where slack is sum d * |w| over the
// elements whose code sits within 1e-3 of a rounding tie: the kernel rounds
// an f32 x (one or two ulps from the reference's) and may pick the other
// code there. slack is 0 for float weights and almost always 0 otherwise.
// Under GEMMAC_CPU_F32_ACTS=1 quantized weights meet xp too, as the kernels
// then do.
struct Dot {
  double value = 0, mag = 0, slack = 0;
};
Dot RefDot(const std::vector<double> &xp, const Weights &w, int64_t n);

// Uniform values in [lo, hi), quantized.
Weights MakeMatrix(int32_t dtype, int64_t rows, int64_t cols, std::mt19937 &rng,
                   float lo, float hi);
// The exact values of stored bytes, in double; *mag (if given) as in
// Weights::mag.
std::vector<double> DequantizeMatrix(int32_t dtype, int64_t rows, int64_t cols,
                                     const std::vector<uint8_t> &bytes,
                                     std::vector<double> *mag = nullptr);
// The int8 KV cache row format: s = max|x| / 127 in f32, q = round(x / s)
// (f32 division, half away from zero), all zeros when s == 0. Returns s.
float QuantizeKvRow(const float *x, int64_t n, int8_t *q);

std::vector<float> Uniform(size_t n, std::mt19937 &rng, float lo, float hi);

gemmac_tensor Tensor(void *data, int32_t dtype,
                     std::initializer_list<int64_t> shape);
gemmac_op_attrs Attrs();
gemmac_exec_context Context(int64_t past, int64_t tokens,
                            const gemmac_kv_cache *kv = nullptr,
                            uint32_t num_kv = 0);

const char *DTypeName(int32_t dtype);

// An optional input left out: dtype none, data NULL, rank 0.
gemmac_tensor Absent();

class CpuPluginTest : public ::testing::TestWithParam<Linkage> {
protected:
  void SetUp() override;
  void TearDown() override;

  // Prepares op with the given dtypes (output f32); fails the test if the
  // plugin refuses.
  gemmac_kernel *Prepare(int32_t op, const gemmac_op_attrs &attrs,
                         std::vector<int32_t> inputs,
                         int32_t output = GEMMAC_DTYPE_F32);
  // Returns the code; *message gets the plugin's message on failure.
  int32_t Launch(gemmac_kernel *kernel, std::vector<gemmac_tensor> inputs,
                 gemmac_tensor output, const gemmac_exec_context *context,
                 std::string *message = nullptr);
  // Prepare, launch and release; the launch must succeed.
  void Run(int32_t op, const gemmac_op_attrs &attrs,
           std::vector<int32_t> dtypes, std::vector<gemmac_tensor> inputs,
           gemmac_tensor output, const gemmac_exec_context *context = nullptr);
  gemmac_op_desc Desc(int32_t op, const gemmac_op_attrs &attrs,
                      const std::vector<int32_t> &inputs,
                      const int32_t *output);

  // Ops with several outputs (all f32): prepare with num_outputs, launch
  // with an output array, and both together (the launch must succeed).
  gemmac_kernel *PrepareN(int32_t op, const gemmac_op_attrs &attrs,
                          std::vector<int32_t> inputs, int num_outputs);
  int32_t LaunchN(gemmac_kernel *kernel, std::vector<gemmac_tensor> inputs,
                  std::vector<gemmac_tensor> outputs,
                  const gemmac_exec_context *context,
                  std::string *message = nullptr);
  void RunN(int32_t op, const gemmac_op_attrs &attrs,
            std::vector<int32_t> dtypes, std::vector<gemmac_tensor> inputs,
            std::vector<gemmac_tensor> outputs,
            const gemmac_exec_context *context = nullptr);

  gemmac_plugin_api api_{};
  void *dl_ = nullptr;
  gemmac_backend *backend_ = nullptr;
  std::vector<gemmac_kernel *> kernels_;
};

std::string LinkageName(const ::testing::TestParamInfo<Linkage> &info);
inline void PrintTo(Linkage linkage, std::ostream *os) {
  *os << (linkage == Linkage::kStatic ? "static entry" : "libgemmac_cpu.so");
}

#define GEMMAC_CPU_INSTANTIATE(Suite)                                          \
  INSTANTIATE_TEST_SUITE_P(                                                    \
      Linkage, Suite, ::testing::Values(Linkage::kStatic, Linkage::kShared),   \
      LinkageName)

} // namespace gemmac::cpu_test

#endif // GEMMAC_TEST_UNIT_CPU_CPU_TEST_SUPPORT_H_
