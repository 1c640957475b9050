// gelu_tanh, mul, add, softcap and scale against double-precision loops.
#include <cmath>

#include "cpu_test_support.h"

namespace gemmac::cpu_test {
namespace {

using ElementwiseTest = CpuPluginTest;

// A rank-3 shape larger than one parallel grain, so several tasks run.
constexpr int64_t kA = 3, kB = 7, kC = 1601;
constexpr size_t kN = size_t(kA * kB * kC);

// Tolerance: f32 results of one or two roundings of a well-conditioned
// expression; 2 ulps relative plus a small absolute term for tanh near 0.
void ExpectNear(const std::vector<float> &got, const std::vector<double> &want,
                double rel, double abs) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], abs + rel * std::fabs(want[i]))
        << "element " << i;
}

TEST_P(ElementwiseTest, GeluTanh) {
  std::mt19937 rng(1);
  std::vector<float> x = Uniform(kN, rng, -6.0f, 6.0f), y(kN);
  Run(GEMMAC_OP_GELU_TANH, Attrs(), {GEMMAC_DTYPE_F32},
      {Tensor(x.data(), GEMMAC_DTYPE_F32, {kA, kB, kC})},
      Tensor(y.data(), GEMMAC_DTYPE_F32, {kA, kB, kC}));
  std::vector<double> want(kN);
  const double k = std::sqrt(2.0 / M_PI);
  for (size_t i = 0; i < kN; ++i) {
    const double v = x[i];
    want[i] = 0.5 * v * (1.0 + std::tanh(k * (v + 0.044715 * v * v * v)));
  }
  ExpectNear(y, want, 1e-5, 1e-6);
}

TEST_P(ElementwiseTest, MulAndAdd) {
  std::mt19937 rng(2);
  std::vector<float> a = Uniform(kN, rng, -3, 3), b = Uniform(kN, rng, -3, 3);
  std::vector<float> prod(kN), sum(kN);
  for (int32_t op : {GEMMAC_OP_MUL, GEMMAC_OP_ADD})
    Run(op, Attrs(), {GEMMAC_DTYPE_F32, GEMMAC_DTYPE_F32},
        {Tensor(a.data(), GEMMAC_DTYPE_F32, {kA, kB, kC}),
         Tensor(b.data(), GEMMAC_DTYPE_F32, {kA, kB, kC})},
        Tensor((op == GEMMAC_OP_MUL ? prod : sum).data(), GEMMAC_DTYPE_F32,
               {kA, kB, kC}));
  std::vector<double> want_prod(kN), want_sum(kN);
  for (size_t i = 0; i < kN; ++i) {
    want_prod[i] = double(a[i]) * b[i];
    want_sum[i] = double(a[i]) + b[i];
  }
  ExpectNear(prod, want_prod, 1.2e-7, 0.0); // one rounding
  ExpectNear(sum, want_sum, 1.2e-7, 1e-30);
}

TEST_P(ElementwiseTest, SoftcapAndScale) {
  std::mt19937 rng(3);
  std::vector<float> x = Uniform(kN, rng, -100, 100), capped(kN), scaled(kN);
  gemmac_op_attrs cap = Attrs();
  cap.softcap = 30.0f;
  Run(GEMMAC_OP_SOFTCAP, cap, {GEMMAC_DTYPE_F32},
      {Tensor(x.data(), GEMMAC_DTYPE_F32, {int64_t(kN)})},
      Tensor(capped.data(), GEMMAC_DTYPE_F32, {int64_t(kN)}));
  gemmac_op_attrs sc = Attrs();
  sc.scale = 0.0625f * 3.0f;
  Run(GEMMAC_OP_SCALE, sc, {GEMMAC_DTYPE_F32},
      {Tensor(x.data(), GEMMAC_DTYPE_F32, {kA * kB, kC})},
      Tensor(scaled.data(), GEMMAC_DTYPE_F32, {kA * kB, kC}));
  std::vector<double> want_cap(kN), want_scale(kN);
  for (size_t i = 0; i < kN; ++i) {
    want_cap[i] = 30.0 * std::tanh(double(x[i]) / 30.0);
    want_scale[i] = double(x[i]) * double(sc.scale);
  }
  ExpectNear(capped, want_cap, 1e-6, 1e-6);
  ExpectNear(scaled, want_scale, 1.2e-7, 0.0);
}

TEST_P(ElementwiseTest, RunsInPlace) {
  // The VM's memory plan may hand the same buffer as input and output.
  std::mt19937 rng(4);
  std::vector<float> x = Uniform(kN, rng, -2, 2);
  const std::vector<float> orig = x;
  gemmac_op_attrs sc = Attrs();
  sc.scale = -2.0f;
  Run(GEMMAC_OP_SCALE, sc, {GEMMAC_DTYPE_F32},
      {Tensor(x.data(), GEMMAC_DTYPE_F32, {int64_t(kN)})},
      Tensor(x.data(), GEMMAC_DTYPE_F32, {int64_t(kN)}));
  for (size_t i = 0; i < kN; ++i)
    ASSERT_EQ(x[i], -2.0f * orig[i]);
}

GEMMAC_CPU_INSTANTIATE(ElementwiseTest);

} // namespace
} // namespace gemmac::cpu_test
