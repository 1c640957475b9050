// rope against a double-precision loop, at small and very large positions.
#include <cmath>

#include "cpu_test_support.h"

namespace gemmac::cpu_test {
namespace {

using RopeTest = CpuPluginTest;

struct RopeCase {
  int64_t past;
  float theta;
  float rope_scale;
};

TEST_P(RopeTest, SplitHalfRotationAtAbsolutePositions) {
  std::mt19937 rng(20);
  const int64_t T = 5, H = 3, D = 32;
  // Position 0, an ordinary decode position, Gemma 3's global theta with
  // linear scaling 8, and positions near 128K where an f32 angle would be
  // off by ~1e-2 rad (the tolerance below is 1e-5).
  for (RopeCase c :
       {RopeCase{0, 10000.0f, 1.0f}, RopeCase{37, 10000.0f, 1.0f},
        RopeCase{1000, 1e6f, 8.0f}, RopeCase{131000, 10000.0f, 1.0f}}) {
    SCOPED_TRACE("past " + std::to_string(c.past));
    std::vector<float> x = Uniform(T * H * D, rng, -2, 2), y(T * H * D);
    gemmac_op_attrs a = Attrs();
    a.head_dim = int32_t(D);
    a.theta = c.theta;
    a.rope_scale = c.rope_scale;
    const gemmac_exec_context ctx = Context(c.past, T);
    Run(GEMMAC_OP_ROPE, a, {GEMMAC_DTYPE_F32},
        {Tensor(x.data(), GEMMAC_DTYPE_F32, {T, H * D})},
        Tensor(y.data(), GEMMAC_DTYPE_F32, {T, H * D}), &ctx);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < D / 2; ++i) {
          const double pos = double(c.past + t) / double(c.rope_scale);
          const double ang =
              pos * std::pow(double(c.theta), -2.0 * double(i) / double(D));
          const double x0 = x[t * H * D + h * D + i];
          const double x1 = x[t * H * D + h * D + i + D / 2];
          const double y0 = x0 * std::cos(ang) - x1 * std::sin(ang);
          const double y1 = x1 * std::cos(ang) + x0 * std::sin(ang);
          // |x| <= 2: a few f32 roundings of terms of size <= 2.
          ASSERT_NEAR(y[t * H * D + h * D + i], y0, 1e-5)
              << "t " << t << " h " << h << " i " << i;
          ASSERT_NEAR(y[t * H * D + h * D + i + D / 2], y1, 1e-5)
              << "t " << t << " h " << h << " i " << i;
        }
  }
}

TEST_P(RopeTest, RunsInPlace) {
  std::mt19937 rng(21);
  const int64_t T = 4, H = 2, D = 16;
  std::vector<float> x = Uniform(T * H * D, rng, -2, 2), y(T * H * D);
  gemmac_op_attrs a = Attrs();
  a.head_dim = int32_t(D);
  const gemmac_exec_context ctx = Context(9, T);
  Run(GEMMAC_OP_ROPE, a, {GEMMAC_DTYPE_F32},
      {Tensor(x.data(), GEMMAC_DTYPE_F32, {T, H * D})},
      Tensor(y.data(), GEMMAC_DTYPE_F32, {T, H * D}), &ctx);
  Run(GEMMAC_OP_ROPE, a, {GEMMAC_DTYPE_F32},
      {Tensor(x.data(), GEMMAC_DTYPE_F32, {T, H * D})},
      Tensor(x.data(), GEMMAC_DTYPE_F32, {T, H * D}), &ctx);
  EXPECT_EQ(x, y);
}

GEMMAC_CPU_INSTANTIATE(RopeTest);

} // namespace
} // namespace gemmac::cpu_test
