// The ops that read weights (embed, rms_norm, linear, lm_head), for f32, bf16
// and f16 weights, against double-precision loops over the exact values the
// stored weights hold.
#include <cmath>
#include <cstring>

#include "cpu_test_support.h"

namespace gemmac::cpu_test {
namespace {

using WeightsTest = CpuPluginTest;

const int32_t kWeightDTypes[] = {GEMMAC_DTYPE_F32, GEMMAC_DTYPE_BF16,
                                 GEMMAC_DTYPE_F16};

// Every one of the 65536 f16 and bf16 bit patterns goes through embed with
// scale 1, so the backend's conversion is checked exhaustively (inf, NaN,
// subnormals, signed zero) against the tests' own decoding.
TEST_P(WeightsTest, EmbedConvertsEveryHalfPatternExactly) {
  const int64_t V = 65536;
  std::vector<uint16_t> table(V);
  std::vector<int32_t> tokens(V);
  for (int64_t i = 0; i < V; ++i) {
    table[i] = uint16_t(i);
    tokens[i] = int32_t((i * 7919) % V); // a permutation: 7919 is odd
  }
  for (int32_t dtype : {GEMMAC_DTYPE_F16, GEMMAC_DTYPE_BF16}) {
    SCOPED_TRACE(DTypeName(dtype));
    std::vector<float> out(V, 123.0f);
    Run(GEMMAC_OP_EMBED, Attrs(), {GEMMAC_DTYPE_I32, dtype},
        {Tensor(tokens.data(), GEMMAC_DTYPE_I32, {V}),
         Tensor(table.data(), dtype, {V, 1})},
        Tensor(out.data(), GEMMAC_DTYPE_F32, {V, 1}));
    for (int64_t t = 0; t < V; ++t) {
      const uint16_t bits = uint16_t(tokens[t]);
      const double want =
          dtype == GEMMAC_DTYPE_F16 ? F16ToDouble(bits) : Bf16ToDouble(bits);
      if (std::isnan(want)) {
        ASSERT_TRUE(std::isnan(out[t])) << "bits 0x" << std::hex << bits;
      } else {
        ASSERT_EQ(double(out[t]), want) << "bits 0x" << std::hex << bits;
        ASSERT_EQ(std::signbit(out[t]), std::signbit(want));
      }
    }
  }
}

TEST_P(WeightsTest, Embed) {
  const int64_t V = 37, H = 45;
  std::mt19937 rng(10);
  for (int32_t dtype : kWeightDTypes) {
    SCOPED_TRACE(DTypeName(dtype));
    Weights table = MakeWeights(dtype, V * H, rng, -1, 1);
    std::vector<int32_t> tokens = {0, 36, 5, 5, 17, 1, 36};
    const int64_t T = int64_t(tokens.size());
    std::vector<float> out(T * H);
    gemmac_op_attrs a = Attrs();
    a.scale = 6.6875f; // sqrt(45) in bf16, as the compiler passes it
    Run(GEMMAC_OP_EMBED, a, {GEMMAC_DTYPE_I32, dtype},
        {Tensor(tokens.data(), GEMMAC_DTYPE_I32, {T}),
         Tensor(table.data(), dtype, {V, H})},
        Tensor(out.data(), GEMMAC_DTYPE_F32, {T, H}));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < H; ++i) {
        const double want = table.values[tokens[t] * H + i] * a.scale;
        // One f32 rounding of the product.
        ASSERT_NEAR(out[t * H + i], want, 6e-8 * std::fabs(want))
            << "t " << t << " i " << i;
      }
  }
}

// Reference: y = x * rsqrt(mean(x^2) + eps) * (offset + w) per group of D.
void CheckRmsNorm(const std::vector<float> &x, const Weights &w, int64_t T,
                  int64_t N, int64_t D, double eps, double offset,
                  const std::vector<float> &y) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t g = 0; g < N / D; ++g) {
      const float *xg = &x[t * N + g * D];
      double ss = 0;
      for (int64_t d = 0; d < D; ++d)
        ss += double(xg[d]) * xg[d];
      const double inv = 1.0 / std::sqrt(ss / double(D) + eps);
      for (int64_t d = 0; d < D; ++d) {
        const double want = xg[d] * inv * (offset + w.values[d]);
        // f32 sum of squares and a few roundings: 1e-5 relative to the
        // normalized magnitude.
        ASSERT_NEAR(y[t * N + g * D + d], want,
                    1e-5 * (std::fabs(want) + std::fabs(xg[d] * inv)))
            << "t " << t << " group " << g << " d " << d;
      }
    }
}

TEST_P(WeightsTest, RmsNormWholeRowAndPerHead) {
  std::mt19937 rng(11);
  const int64_t T = 5, N = 96;
  for (int32_t dtype : kWeightDTypes) {
    SCOPED_TRACE(DTypeName(dtype));
    // D == N is the usual norm (offset 1, Gemma); D == 24 is a per-head
    // QK-norm over 4 heads; offset 0 is Gemma 3n's plain weight.
    for (auto [D, offset] : {std::pair<int64_t, float>{N, 1.0f},
                             std::pair<int64_t, float>{24, 1.0f},
                             std::pair<int64_t, float>{24, 0.0f}}) {
      SCOPED_TRACE("D " + std::to_string(D));
      std::vector<float> x = Uniform(T * N, rng, -3, 3), y(T * N);
      Weights w = MakeWeights(dtype, D, rng, -0.5f, 0.5f);
      gemmac_op_attrs a = Attrs();
      a.eps = 1e-6f;
      a.offset = offset;
      Run(GEMMAC_OP_RMS_NORM, a, {GEMMAC_DTYPE_F32, dtype},
          {Tensor(x.data(), GEMMAC_DTYPE_F32, {T, N}),
           Tensor(w.data(), dtype, {D})},
          Tensor(y.data(), GEMMAC_DTYPE_F32, {T, N}));
      CheckRmsNorm(x, w, T, N, D, a.eps, offset, y);

      // In place, as the memory plan may ask.
      std::vector<float> inplace = x;
      Run(GEMMAC_OP_RMS_NORM, a, {GEMMAC_DTYPE_F32, dtype},
          {Tensor(inplace.data(), GEMMAC_DTYPE_F32, {T, N}),
           Tensor(w.data(), dtype, {D})},
          Tensor(inplace.data(), GEMMAC_DTYPE_F32, {T, N}));
      EXPECT_EQ(inplace, y);
    }
  }
}

// Reference for linear and lm_head: y[t, n] = sum_k x[t, k] * w[n, k] in
// double. Tolerance: 1e-5 of sum_k |x w|, the bound of f32 accumulation over
// these K (about 80 ulps of the magnitudes summed).
void CheckMatmul(const std::vector<float> &x, const Weights &w, int64_t T,
                 int64_t K, int64_t N, const std::vector<float> &y) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double want = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        want += double(x[t * K + k]) * w.values[n * K + k];
        mag += std::fabs(double(x[t * K + k]) * w.values[n * K + k]);
      }
      ASSERT_NEAR(y[t * N + n], want, 1e-5 * mag + 1e-12)
          << "t " << t << " n " << n;
    }
}

TEST_P(WeightsTest, Linear) {
  std::mt19937 rng(12);
  for (int32_t dtype : kWeightDTypes) {
    SCOPED_TRACE(DTypeName(dtype));
    // T = 1 is decode; T = 7 covers the 4-token block and its remainder; an
    // odd K leaves a vector tail; N spans several parallel tasks.
    for (int64_t T : {1, 7}) {
      const int64_t K = 301, N = 131;
      std::vector<float> x = Uniform(T * K, rng, -1, 1), y(T * N, NAN);
      Weights w = MakeWeights(dtype, N * K, rng, -1, 1);
      Run(GEMMAC_OP_LINEAR, Attrs(), {GEMMAC_DTYPE_F32, dtype},
          {Tensor(x.data(), GEMMAC_DTYPE_F32, {T, K}),
           Tensor(w.data(), dtype, {N, K})},
          Tensor(y.data(), GEMMAC_DTYPE_F32, {T, N}));
      CheckMatmul(x, w, T, K, N, y);
    }
  }
}

TEST_P(WeightsTest, LmHeadScoresOnlyTheFirstRows) {
  std::mt19937 rng(13);
  const int64_t T = 3, H = 64, V = 50, R = 41;
  for (int32_t dtype : kWeightDTypes) {
    SCOPED_TRACE(DTypeName(dtype));
    std::vector<float> x = Uniform(T * H, rng, -1, 1), y(T * R, NAN);
    Weights table = MakeWeights(dtype, V * H, rng, -1, 1);
    gemmac_op_attrs a = Attrs();
    a.rows = int32_t(R);
    Run(GEMMAC_OP_LM_HEAD, a, {GEMMAC_DTYPE_F32, dtype},
        {Tensor(x.data(), GEMMAC_DTYPE_F32, {T, H}),
         Tensor(table.data(), dtype, {V, H})},
        Tensor(y.data(), GEMMAC_DTYPE_F32, {T, R}));
    CheckMatmul(x, table, T, H, R, y);
  }
}

TEST_P(WeightsTest, ResultsDoNotDependOnTheThreadCount) {
  // Each output element is computed by one thread with the same code, so
  // one thread and several must agree bit for bit.
  std::mt19937 rng(14);
  const int64_t T = 6, K = 512, N = 700;
  std::vector<float> x = Uniform(T * K, rng, -1, 1);
  Weights w = MakeWeights(GEMMAC_DTYPE_BF16, N * K, rng, -1, 1);
  std::vector<float> y_many(T * N);
  Run(GEMMAC_OP_LINEAR, Attrs(), {GEMMAC_DTYPE_F32, GEMMAC_DTYPE_BF16},
      {Tensor(x.data(), GEMMAC_DTYPE_F32, {T, K}),
       Tensor(w.data(), GEMMAC_DTYPE_BF16, {N, K})},
      Tensor(y_many.data(), GEMMAC_DTYPE_F32, {T, N}));

  gemmac_backend_options opts{};
  opts.struct_size = sizeof(opts);
  opts.num_threads = 1;
  gemmac_backend *one = nullptr;
  ASSERT_EQ(api_.create(&opts, &one, nullptr), GEMMAC_PLUGIN_OK);
  const int32_t dtypes[] = {GEMMAC_DTYPE_F32, GEMMAC_DTYPE_BF16};
  const int32_t out_dtype = GEMMAC_DTYPE_F32;
  gemmac_op_desc d = Desc(GEMMAC_OP_LINEAR, Attrs(),
                          std::vector<int32_t>(dtypes, dtypes + 2), &out_dtype);
  d.input_dtypes = dtypes;
  gemmac_kernel *k = nullptr;
  ASSERT_EQ(api_.prepare(one, &d, &k, nullptr), GEMMAC_PLUGIN_OK);
  std::vector<float> y_one(T * N);
  gemmac_tensor in[2] = {Tensor(x.data(), GEMMAC_DTYPE_F32, {T, K}),
                         Tensor(w.data(), GEMMAC_DTYPE_BF16, {N, K})};
  gemmac_tensor out = Tensor(y_one.data(), GEMMAC_DTYPE_F32, {T, N});
  EXPECT_EQ(api_.launch(one, k, in, 2, &out, 1, nullptr, nullptr),
            GEMMAC_PLUGIN_OK);
  api_.release(one, k);
  api_.destroy(one);
  EXPECT_EQ(y_one, y_many);
}

GEMMAC_CPU_INSTANTIATE(WeightsTest);

} // namespace
} // namespace gemmac::cpu_test
