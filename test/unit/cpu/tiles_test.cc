// The tile kernels (backends/cpu/src/tiles.h) at every instruction-set level
// this CPU can run, called directly: each level's TileFn for each weight
// format against RefDot (the documented arithmetic in double), and each
// SIMD level against the scalar level (the same integer block sums, so
// only f32 summation order differs); the amx level's panel kernels the same
// way. Levels the CPU cannot run are skipped with a message;
// GEMMAC_CPU_ISA-capped runs of the op tests (CMakeLists) cover the
// dispatch itself.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "cpu_test_support.h"
#include "tiles.h"

namespace gemmac::cpu_test {
namespace {

using cpu::Acts;
using cpu::ActsBuffer;
using cpu::Isa;
using cpu::TileFn;

constexpr double kRel = 1e-5;
// Level against level: the same integer sums, f32 order only.
constexpr double kSame = 2e-6;

struct Case {
  int32_t dtype;
  int64_t K;
};

std::string Name(Isa isa, const Case &c) {
  return std::string(cpu::IsaName(isa)) + " " + DTypeName(c.dtype) + " K " +
         std::to_string(c.K);
}

// Rows with a few outliers, as real activations have.
std::vector<float> Activations(int64_t T, int64_t K, std::mt19937 &rng) {
  std::vector<float> x = Uniform(size_t(T * K), rng, -1, 1);
  for (int64_t i = 0; i < T * K; i += 37)
    x[i] *= 20.0f;
  return x;
}

Weights MatrixFor(int32_t dtype, int64_t rows, int64_t K, std::mt19937 &rng) {
  if (dtype != GEMMAC_DTYPE_Q4G32R8)
    return MakeMatrix(dtype, rows, K, rng, -1, 1);
  Weights w = MakeMatrix(GEMMAC_DTYPE_Q4G32, rows, K, rng, -1, 1);
  w.dtype = GEMMAC_DTYPE_Q4G32R8;
  w.bytes = PackQ4G32R8(rows, K, w.bytes);
  w.values = DequantizeMatrix(w.dtype, rows, K, w.bytes, &w.mag);
  return w;
}

const Isa kLevels[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx};

class TilesTest : public ::testing::TestWithParam<Isa> {};

TEST_P(TilesTest, EveryFormatAgainstTheReferenceAndTheScalarLevel) {
  const Isa isa = GetParam();
  if (!cpu::CanRun(isa))
    GTEST_SKIP() << "this CPU cannot run " << cpu::IsaName(isa) << " ("
                 << cpu::Describe() << ")";
  std::mt19937 rng(71);
  const Case cases[] = {
      {GEMMAC_DTYPE_F32, 40},      {GEMMAC_DTYPE_F32, 1000},
      {GEMMAC_DTYPE_BF16, 13},     {GEMMAC_DTYPE_BF16, 48},
      {GEMMAC_DTYPE_BF16, 64},     {GEMMAC_DTYPE_BF16, 1000},
      {GEMMAC_DTYPE_F16, 96},      {GEMMAC_DTYPE_F16, 333},
      {GEMMAC_DTYPE_Q8C, 40},      {GEMMAC_DTYPE_Q8C, 1000},
      {GEMMAC_DTYPE_Q8C, 1152},    {GEMMAC_DTYPE_Q4G32, 32},
      {GEMMAC_DTYPE_Q4G32, 96},    {GEMMAC_DTYPE_Q4G32, 1152},
      {GEMMAC_DTYPE_Q4G128, 128},  {GEMMAC_DTYPE_Q4G128, 1152},
      {GEMMAC_DTYPE_Q4G32R8, 32},  {GEMMAC_DTYPE_Q4G32R8, 64},
      {GEMMAC_DTYPE_Q4G32R8, 96},  {GEMMAC_DTYPE_Q4G32R8, 1152},
      {GEMMAC_DTYPE_Q4G32R8, 6912}};
  const int64_t T = 7, rows = 16;
  for (const Case &c : cases) {
    SCOPED_TRACE(Name(isa, c));
    const Weights w = MatrixFor(c.dtype, rows, c.K, rng);
    cpu::WeightMatrix wm;
    wm.data = w.bytes.data();
    wm.dtype = c.dtype;
    wm.rows = rows;
    wm.cols = c.K;
    const std::vector<float> x = Activations(T, c.K, rng);
    ActsBuffer buf;
    const Acts a = cpu::PrepareActs(x.data(), T, c.K, nullptr, 0.0f, 0.0f,
                                    cpu::NeedsCodes(c.dtype), buf);
    const TileFn fn = cpu::TileFor(c.dtype, isa);
    const TileFn ref = cpu::TileFor(c.dtype, Isa::kScalar);
    ASSERT_NE(fn, nullptr);
    for (int64_t n0 = 0; n0 < rows; n0 += cpu::kRowTile)
      for (int64_t nr = 1; nr <= cpu::kRowTile; ++nr)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t nt = 1; nt <= cpu::kTokenGroup && t + nt <= T; ++nt) {
            float got[cpu::kRowTile * cpu::kTokenGroup];
            float want[cpu::kRowTile * cpu::kTokenGroup];
            std::fill(std::begin(got), std::end(got), NAN);
            fn(wm, n0, nr, a, t, nt, got);
            ref(wm, n0, nr, a, t, nt, want);
            for (int64_t r = 0; r < nr; ++r)
              for (int64_t i = 0; i < nt; ++i) {
                const std::vector<double> xt(x.begin() + (t + i) * c.K,
                                             x.begin() + (t + i + 1) * c.K);
                const Dot d = RefDot(xt, w, n0 + r);
                const float v = got[r * cpu::kTokenGroup + i];
                ASSERT_NEAR(v, d.value, kRel * d.mag + d.slack + 1e-9)
                    << "row " << n0 + r << " token " << t + i << " (nr " << nr
                    << ", nt " << nt << ")";
                ASSERT_NEAR(v, want[r * cpu::kTokenGroup + i],
                            kSame * d.mag + 1e-9)
                    << "vs scalar, row " << n0 + r << " token " << t + i;
              }
          }
  }
}

cpu::WeightMatrix View(const Weights &w, int64_t rows, int64_t K) {
  cpu::WeightMatrix wm;
  wm.data = w.bytes.data();
  wm.dtype = w.dtype;
  wm.rows = rows;
  wm.cols = K;
  return wm;
}

// The amx level's panel kernels: every output against RefDot and the
// scalar TileFn, for full and partial panels (nr < 16, and a matrix whose
// last panel is short), token counts that do and do not fill 16-row tiles
// (and the bf16 kernel's groups of four), and K from one block to several
// L1 chunks. A panel writes its nr columns of y and nothing else. The
// quantized panels compute the scalar level's integer block sums (f32
// order only); the bf16 panel meets rows split into bf16 hi + lo parts,
// within 2^-17 of each element (tiles.h), so it gets that much more.
TEST(AmxPanels, AgainstTheReferenceAndTheScalarLevel) {
  if (!cpu::CanRun(Isa::kAmx))
    GTEST_SKIP() << "this CPU cannot run amx (" << cpu::Describe() << ")";
  std::mt19937 rng(73);
  const Case cases[] = {
      {GEMMAC_DTYPE_Q8C, 32},       {GEMMAC_DTYPE_Q8C, 1152},
      {GEMMAC_DTYPE_Q8C, 2080},     {GEMMAC_DTYPE_Q4G32, 32},
      {GEMMAC_DTYPE_Q4G32, 1152},   {GEMMAC_DTYPE_Q4G32R8, 32},
      {GEMMAC_DTYPE_Q4G32R8, 96},   {GEMMAC_DTYPE_Q4G32R8, 1152},
      {GEMMAC_DTYPE_Q4G32R8, 6912}, {GEMMAC_DTYPE_Q4G128, 128},
      {GEMMAC_DTYPE_Q4G128, 1152},  {GEMMAC_DTYPE_BF16, 32},
      {GEMMAC_DTYPE_BF16, 1152}};
  for (const Case &c : cases) {
    // Packed rows come in groups of 8; the others end mid-panel.
    const int64_t rows = c.dtype == GEMMAC_DTYPE_Q4G32R8 ? 40 : 37;
    const Weights w = MatrixFor(c.dtype, rows, c.K, rng);
    const cpu::WeightMatrix wm = View(w, rows, c.K);
    const cpu::PanelFn panel = cpu::PanelFor(wm, Isa::kAmx);
    ASSERT_NE(panel, nullptr) << Name(Isa::kAmx, c);
    const TileFn ref = cpu::TileFor(c.dtype, Isa::kScalar);
    const double split =
        c.dtype == GEMMAC_DTYPE_BF16 ? std::ldexp(1.0, -17) : 0.0;
    for (const int64_t T : {1, 5, 16, 33, 80}) {
      const std::vector<float> x = Activations(T, c.K, rng);
      ActsBuffer buf;
      const Acts a = cpu::PrepareActs(x.data(), T, c.K, nullptr, 0.0f, 0.0f,
                                      cpu::NeedsCodes(c.dtype), buf,
                                      cpu::PanelInputOf(c.dtype));
      ASSERT_EQ(a.rows % cpu::kPanelRows, 0);
      for (int64_t n0 = 0; n0 < rows; n0 += cpu::kPanelRows) {
        const int64_t full = std::min(cpu::kPanelRows, rows - n0);
        for (const int64_t nr : {int64_t(1), int64_t(9), full}) {
          if (nr > full)
            continue;
          SCOPED_TRACE(Name(Isa::kAmx, c) + " T " + std::to_string(T) + " n0 " +
                       std::to_string(n0) + " nr " + std::to_string(nr));
          const int64_t ldy = rows + 3;
          std::vector<float> y(size_t(T * ldy), NAN);
          panel(wm, n0, nr, a, y.data() + n0, ldy);
          for (int64_t t = 0; t < T; ++t) {
            const std::vector<double> xt(x.begin() + t * c.K,
                                         x.begin() + (t + 1) * c.K);
            for (int64_t n = 0; n < ldy; ++n) {
              const float v = y[t * ldy + n];
              if (n < n0 || n >= n0 + nr) {
                ASSERT_TRUE(std::isnan(v))
                    << "wrote row " << n << " token " << t;
                continue;
              }
              const Dot d = RefDot(xt, w, n);
              ASSERT_NEAR(v, d.value, (kRel + split) * d.mag + d.slack + 1e-9)
                  << "row " << n << " token " << t;
              // The scalar level's value of the same output.
              const int64_t tile0 = n / cpu::kRowTile * cpu::kRowTile;
              float want[cpu::kRowTile * cpu::kTokenGroup];
              ref(wm, tile0, std::min(cpu::kRowTile, rows - tile0), a, t, 1,
                  want);
              ASSERT_NEAR(v, want[(n - tile0) * cpu::kTokenGroup],
                          (kSame + split) * d.mag + 1e-9)
                  << "vs scalar, row " << n << " token " << t;
            }
          }
        }
      }
    }
  }
}

// Where the panel kernels apply: the amx level, the int8-code formats and
// bf16 (not f32 or f16), whole 32-column blocks, and never in the
// f32-activation mode.
TEST(AmxPanels, OnlyWhereTheyApply) {
  cpu::WeightMatrix wm;
  wm.rows = 16;
  wm.cols = 128;
  for (const Isa isa : kLevels)
    for (const int32_t dtype :
         {GEMMAC_DTYPE_F32, GEMMAC_DTYPE_F16, GEMMAC_DTYPE_BF16,
          GEMMAC_DTYPE_Q8C, GEMMAC_DTYPE_Q4G32, GEMMAC_DTYPE_Q4G128,
          GEMMAC_DTYPE_Q4G32R8}) {
      wm.dtype = dtype;
      const bool want = isa == Isa::kAmx && !cpu::F32ActsMode() &&
                        dtype != GEMMAC_DTYPE_F32 && dtype != GEMMAC_DTYPE_F16;
      EXPECT_EQ(cpu::PanelFor(wm, isa) != nullptr, want)
          << cpu::IsaName(isa) << " " << DTypeName(dtype);
    }
  wm.dtype = GEMMAC_DTYPE_Q8C;
  wm.cols = 40; // not whole blocks: the tiles serve it
  EXPECT_EQ(cpu::PanelFor(wm, Isa::kAmx), nullptr);
  for (const int32_t dtype :
       {GEMMAC_DTYPE_BF16, GEMMAC_DTYPE_Q8C, GEMMAC_DTYPE_Q4G32R8}) {
    const cpu::PanelFn p = cpu::AmxPanels().q8c; // any non-null kernel
    const int64_t min = cpu::PanelMinTokens(dtype);
    EXPECT_FALSE(cpu::UsePanels(p, dtype, min - 1)) << DTypeName(dtype);
    EXPECT_TRUE(cpu::UsePanels(p, dtype, min)) << DTypeName(dtype);
    EXPECT_FALSE(cpu::UsePanels(nullptr, dtype, 1000)) << DTypeName(dtype);
  }
}

// F32ToBf16 (numeric.h), which the bf16 panel's rows go through: round to
// nearest even against an independent choice between the two bf16
// neighbours in double, over random bit patterns (every exponent), exact
// ties, and NaN stays NaN.
TEST(Bf16Rounding, NearestEvenAndNaN) {
  std::mt19937 rng(74);
  for (int i = 0; i < 200000; ++i) {
    const uint32_t bits = uint32_t(rng());
    float f;
    std::memcpy(&f, &bits, 4);
    if (!std::isfinite(f))
      continue;
    const uint32_t down = bits & 0xFFFF0000u, up = down + 0x10000u;
    float fd, fu;
    std::memcpy(&fd, &down, 4);
    std::memcpy(&fu, &up, 4);
    // Past the largest bf16 the upper neighbour is infinity, at 2^128.
    const double fu_at =
        std::isinf(fu) ? std::copysign(std::ldexp(1.0, 128), fu) : fu;
    const double dd = std::fabs(double(f) - fd);
    const double du = std::fabs(fu_at - f);
    const double want =
        dd < du || (dd == du && ((down >> 16) & 1) == 0) ? fd : fu;
    ASSERT_EQ(double(cpu::Bf16ToF32(cpu::F32ToBf16(f))), want) << f;
  }
  EXPECT_EQ(cpu::F32ToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80u); // tie: even
  EXPECT_EQ(cpu::F32ToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82u);
  EXPECT_TRUE(std::isnan(cpu::Bf16ToF32(cpu::F32ToBf16(NAN))));
  const uint32_t low_nan = 0x7F800001u; // payload only in the dropped half
  float f;
  std::memcpy(&f, &low_nan, 4);
  EXPECT_TRUE(std::isnan(cpu::Bf16ToF32(cpu::F32ToBf16(f))));
}

// The Q8 codes of PrepareActs: the documented rule, zero past K.
TEST(TilesPrepare, CodesFollowTheDocumentedRule) {
  std::mt19937 rng(72);
  const int64_t T = 3, K = 100;
  const std::vector<float> x = Activations(T, K, rng);
  ActsBuffer buf;
  const Acts a =
      cpu::PrepareActs(x.data(), T, K, nullptr, 0.0f, 0.0f, true, buf);
  ASSERT_EQ(a.qstride, 128);
  EXPECT_EQ(a.xf, x.data()); // no norm: the rows themselves
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < a.qstride / 32; ++b) {
      float amax = 0.0f;
      for (int64_t k = b * 32; k < std::min<int64_t>(K, b * 32 + 32); ++k)
        amax = std::max(amax, std::fabs(x[t * K + k]));
      const float d = amax / 127.0f;
      EXPECT_EQ(a.xd[t * 4 + b], d);
      int32_t sum = 0;
      for (int64_t k = b * 32; k < b * 32 + 32; ++k) {
        const int8_t q = a.xq[t * a.qstride + k];
        if (k >= K) {
          EXPECT_EQ(q, 0) << "past K at " << k;
          continue;
        }
        const float want = std::nearbyint(x[t * K + k] * (1.0f / d));
        EXPECT_EQ(q, int8_t(want)) << "t " << t << " k " << k;
        sum += q;
      }
      EXPECT_EQ(a.xs[t * 4 + b], sum);
    }
}

INSTANTIATE_TEST_SUITE_P(Levels, TilesTest, ::testing::ValuesIn(kLevels),
                         [](const ::testing::TestParamInfo<Isa> &info) {
                           return std::string(cpu::IsaName(info.param));
                         });

} // namespace
} // namespace gemmac::cpu_test

namespace gemmac::cpu_test {
namespace {

// ExpF (numeric.h), which the GELU of gated_mlp and gelu_tanh use: relative
// error against double exp over its whole range, and the clamps.
TEST(ExpF, RelativeErrorOverTheRange) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.01171875f) {
    const double want = std::exp(double(x));
    worst = std::max(worst, std::fabs(cpu::ExpF(x) - want) / want);
  }
  EXPECT_LT(worst, 4e-7);
  EXPECT_EQ(cpu::ExpF(0.0f), 1.0f);
  EXPECT_GT(cpu::ExpF(-1000.0f), 0.0f); // clamped, not 0 or NaN
  EXPECT_TRUE(std::isfinite(cpu::ExpF(1000.0f)));
}

} // namespace
} // namespace gemmac::cpu_test
