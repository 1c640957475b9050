// The quantized weight formats (Q8C, Q4G32, Q4G128 of docs/quantization.md)
// in embed, linear and lm_head: hand-written blocks decoded exactly, and
// random matrices against double-precision loops over the values the stored
// bytes hold (dequantized by the tests' own decoder, cpu_test_support.cc).
#include <cmath>
#include <cstring>

#include "cpu_test_support.h"

namespace gemmac::cpu_test {
namespace {

using QuantTest = CpuPluginTest;

const int32_t kQuantDTypes[] = {GEMMAC_DTYPE_Q8C, GEMMAC_DTYPE_Q4G32,
                                GEMMAC_DTYPE_Q4G128};

// A K divisible by the format's group (any K for Q8C: odd, to leave a
// vector tail).
int64_t ColsFor(int32_t dtype) {
  switch (dtype) {
  case GEMMAC_DTYPE_Q4G32:
    return 96;
  case GEMMAC_DTYPE_Q4G128:
    return 384;
  default:
    return 301;
  }
}

// The test's quantizer and decoder agree with the formats' definitions: each
// value is within one quantization step of the original, and the bytes are
// gemmac_weight_bytes() long.
TEST_P(QuantTest, TheTestQuantizerIsWithinOneStep) {
  std::mt19937 rng(40);
  const int64_t rows = 5, cols = 256;
  const std::vector<float> src = Uniform(rows * cols, rng, -2, 1);
  for (int32_t dtype : kQuantDTypes) {
    SCOPED_TRACE(DTypeName(dtype));
    const Weights w = QuantizeMatrix(dtype, rows, cols, src);
    EXPECT_EQ(int64_t(w.bytes.size()), gemmac_weight_bytes(dtype, rows, cols));
    for (int64_t i = 0; i < rows * cols; ++i) {
      // The coarsest step: Q4G32's d is max|w|/8 <= 2/8, Q4G128's
      // (max - min)/15 <= 3/15, Q8C's max|w|/127.
      const double step = dtype == GEMMAC_DTYPE_Q8C ? 2.0 / 127 : 0.25;
      ASSERT_LE(std::fabs(w.values[i] - src[i]), step) << i;
    }
  }
}

// Embed with scale 1 returns the stored weights. Every value here is exact
// in f32, so the decode is checked bit for bit, nibble order included.
TEST_P(QuantTest, EmbedDecodesHandWrittenBlocks) {
  {
    SCOPED_TRACE("q4g32");
    // Two rows of one block; d = 0.5 and -0.25. Byte j holds element j in
    // its low nibble and element j + 16 in its high nibble.
    std::vector<uint8_t> b(2 * 18);
    const uint16_t d[2] = {0x3800, 0xB400};
    for (int r = 0; r < 2; ++r) {
      std::memcpy(&b[r * 18], &d[r], 2);
      for (int j = 0; j < 16; ++j)
        b[r * 18 + 2 + j] = uint8_t((j + r) % 16 | ((15 - j) << 4));
    }
    std::vector<int32_t> tokens = {1, 0};
    std::vector<float> out(2 * 32, NAN);
    Run(GEMMAC_OP_EMBED, Attrs(), {GEMMAC_DTYPE_I32, GEMMAC_DTYPE_Q4G32},
        {Tensor(tokens.data(), GEMMAC_DTYPE_I32, {2}),
         Tensor(b.data(), GEMMAC_DTYPE_Q4G32, {2, 32})},
        Tensor(out.data(), GEMMAC_DTYPE_F32, {2, 32}));
    for (int t = 0; t < 2; ++t) {
      const int r = tokens[t];
      const float dv = r == 0 ? 0.5f : -0.25f;
      for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(out[t * 32 + j], float((j + r) % 16 - 8) * dv) << t << j;
        EXPECT_EQ(out[t * 32 + 16 + j], float(15 - j - 8) * dv) << t << j;
      }
    }
  }
  {
    SCOPED_TRACE("q4g128");
    // One row of two blocks: (d, m) = (0.25, -1) and (2, 0.5).
    std::vector<uint8_t> b(2 * 68);
    const uint16_t dm[2][2] = {{0x3400, 0xBC00}, {0x4000, 0x3800}};
    for (int k = 0; k < 2; ++k) {
      std::memcpy(&b[k * 68], &dm[k][0], 2);
      std::memcpy(&b[k * 68 + 2], &dm[k][1], 2);
      for (int j = 0; j < 64; ++j)
        b[k * 68 + 4 + j] = uint8_t((j % 16) | (((j * 7 + k) % 16) << 4));
    }
    std::vector<int32_t> tokens = {0};
    std::vector<float> out(256, NAN);
    Run(GEMMAC_OP_EMBED, Attrs(), {GEMMAC_DTYPE_I32, GEMMAC_DTYPE_Q4G128},
        {Tensor(tokens.data(), GEMMAC_DTYPE_I32, {1}),
         Tensor(b.data(), GEMMAC_DTYPE_Q4G128, {1, 256})},
        Tensor(out.data(), GEMMAC_DTYPE_F32, {1, 256}));
    const float d[2] = {0.25f, 2.0f}, m[2] = {-1.0f, 0.5f};
    for (int k = 0; k < 2; ++k)
      for (int j = 0; j < 64; ++j) {
        EXPECT_EQ(out[k * 128 + j], float(j % 16) * d[k] + m[k]) << k << j;
        EXPECT_EQ(out[k * 128 + 64 + j], float((j * 7 + k) % 16) * d[k] + m[k])
            << k << j;
      }
  }
  {
    SCOPED_TRACE("q8c");
    // [2, 5]: the scales start at byte 10, not 4-aligned.
    std::vector<uint8_t> b(2 * 5 + 2 * 4);
    const int8_t q[10] = {1, -2, 127, -127, 0, 5, 6, -7, 8, -100};
    std::memcpy(b.data(), q, 10);
    const float scale[2] = {0.5f, 3.0f};
    std::memcpy(b.data() + 10, scale, 8);
    std::vector<int32_t> tokens = {1, 0, 1};
    std::vector<float> out(3 * 5, NAN);
    Run(GEMMAC_OP_EMBED, Attrs(), {GEMMAC_DTYPE_I32, GEMMAC_DTYPE_Q8C},
        {Tensor(tokens.data(), GEMMAC_DTYPE_I32, {3}),
         Tensor(b.data(), GEMMAC_DTYPE_Q8C, {2, 5})},
        Tensor(out.data(), GEMMAC_DTYPE_F32, {3, 5}));
    for (int t = 0; t < 3; ++t)
      for (int j = 0; j < 5; ++j)
        EXPECT_EQ(out[t * 5 + j],
                  float(q[tokens[t] * 5 + j]) * scale[tokens[t]])
            << t << j;
  }
}

// Random tables with a scale: the plugin computes w in f32 (one rounding
// of an exact product or sum) and then w * scale (a second); both roundings
// are reproduced here from the exact value, so the check is exact.
TEST_P(QuantTest, EmbedRandomTables) {
  std::mt19937 rng(41);
  const int64_t V = 37, H = 256;
  for (int32_t dtype : kQuantDTypes) {
    SCOPED_TRACE(DTypeName(dtype));
    Weights table = MakeMatrix(dtype, V, H, rng, -1, 1);
    std::vector<int32_t> tokens = {0, 36, 5, 5, 17, 1, 36};
    const int64_t T = int64_t(tokens.size());
    std::vector<float> out(T * H, NAN);
    gemmac_op_attrs a = Attrs();
    a.scale = 16.0f * 1.0009765625f; // not a power of two
    Run(GEMMAC_OP_EMBED, a, {GEMMAC_DTYPE_I32, dtype},
        {Tensor(tokens.data(), GEMMAC_DTYPE_I32, {T}),
         Tensor(table.data(), dtype, {V, H})},
        Tensor(out.data(), GEMMAC_DTYPE_F32, {T, H}));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < H; ++i) {
        const float w = float(table.values[tokens[t] * H + i]);
        ASSERT_EQ(out[t * H + i], w * a.scale) << "t " << t << " i " << i;
      }
  }
}

// Reference: y[t, n] = RefDot (cpu_test_support.h): the stored weight
// values against the Q8 codes of x, in double. Tolerance: 1e-5 of its
// magnitude (see Weights::mag), the bound of f32 block sums over these K
// plus the block and row scalings, and its slack.
void CheckMatmul(const std::vector<float> &x, const Weights &w, int64_t T,
                 int64_t K, int64_t N, const std::vector<float> &y) {
  for (int64_t t = 0; t < T; ++t) {
    const std::vector<double> xt(x.begin() + t * K, x.begin() + (t + 1) * K);
    for (int64_t n = 0; n < N; ++n) {
      const Dot d = RefDot(xt, w, n);
      ASSERT_NEAR(y[t * N + n], d.value, 1e-5 * d.mag + d.slack + 1e-12)
          << "t " << t << " n " << n;
    }
  }
}

TEST_P(QuantTest, Linear) {
  std::mt19937 rng(42);
  for (int32_t dtype : kQuantDTypes) {
    SCOPED_TRACE(DTypeName(dtype));
    // T = 1 is decode; 3, 4 and 7 cover partial and whole groups of four
    // tokens sharing a decoded block; 40 takes the amx level's panels where
    // it runs (a partial 16-token tile); N = 37 is odd and spans tasks.
    for (int64_t T : {1, 3, 4, 7, 40}) {
      SCOPED_TRACE("T " + std::to_string(T));
      const int64_t K = ColsFor(dtype), N = 37;
      std::vector<float> x = Uniform(T * K, rng, -1, 1), y(T * N, NAN);
      Weights w = MakeMatrix(dtype, N, K, rng, -1, 0.5f);
      Run(GEMMAC_OP_LINEAR, Attrs(), {GEMMAC_DTYPE_F32, dtype},
          {Tensor(x.data(), GEMMAC_DTYPE_F32, {T, K}),
           Tensor(w.data(), dtype, {N, K})},
          Tensor(y.data(), GEMMAC_DTYPE_F32, {T, N}));
      CheckMatmul(x, w, T, K, N, y);
    }
  }
}

TEST_P(QuantTest, LmHeadScoresOnlyTheFirstRows) {
  // R < V: the Q8C scales follow all V rows of the table, not R.
  std::mt19937 rng(43);
  const int64_t V = 50, R = 41;
  for (int32_t dtype : kQuantDTypes)
    for (int64_t T : {3, 20}) {
      SCOPED_TRACE(std::string(DTypeName(dtype)) + " T " + std::to_string(T));
      const int64_t H = dtype == GEMMAC_DTYPE_Q4G128 ? 128 : 64;
      std::vector<float> x = Uniform(T * H, rng, -1, 1), y(T * R, NAN);
      Weights table = MakeMatrix(dtype, V, H, rng, -1, 1);
      gemmac_op_attrs a = Attrs();
      a.rows = int32_t(R);
      Run(GEMMAC_OP_LM_HEAD, a, {GEMMAC_DTYPE_F32, dtype},
          {Tensor(x.data(), GEMMAC_DTYPE_F32, {T, H}),
           Tensor(table.data(), dtype, {V, H})},
          Tensor(y.data(), GEMMAC_DTYPE_F32, {T, R}));
      CheckMatmul(x, table, T, H, R, y);
    }
}

TEST_P(QuantTest, ResultsDoNotDependOnTheThreadCount) {
  std::mt19937 rng(44);
  const int64_t T = 6, K = 512, N = 301;
  std::vector<float> x = Uniform(T * K, rng, -1, 1);
  for (int32_t dtype : kQuantDTypes) {
    SCOPED_TRACE(DTypeName(dtype));
    Weights w = MakeMatrix(dtype, N, K, rng, -1, 1);
    std::vector<float> y_many(T * N);
    Run(GEMMAC_OP_LINEAR, Attrs(), {GEMMAC_DTYPE_F32, dtype},
        {Tensor(x.data(), GEMMAC_DTYPE_F32, {T, K}),
         Tensor(w.data(), dtype, {N, K})},
        Tensor(y_many.data(), GEMMAC_DTYPE_F32, {T, N}));

    gemmac_backend_options opts{};
    opts.struct_size = sizeof(opts);
    opts.num_threads = 1;
    gemmac_backend *one = nullptr;
    ASSERT_EQ(api_.create(&opts, &one, nullptr), GEMMAC_PLUGIN_OK);
    const int32_t dtypes[] = {GEMMAC_DTYPE_F32, dtype};
    const int32_t out_dtype = GEMMAC_DTYPE_F32;
    gemmac_op_desc d =
        Desc(GEMMAC_OP_LINEAR, Attrs(),
             std::vector<int32_t>(dtypes, dtypes + 2), &out_dtype);
    d.input_dtypes = dtypes;
    gemmac_kernel *k = nullptr;
    ASSERT_EQ(api_.prepare(one, &d, &k, nullptr), GEMMAC_PLUGIN_OK);
    std::vector<float> y_one(T * N);
    gemmac_tensor in[2] = {Tensor(x.data(), GEMMAC_DTYPE_F32, {T, K}),
                           Tensor(w.data(), dtype, {N, K})};
    gemmac_tensor out = Tensor(y_one.data(), GEMMAC_DTYPE_F32, {T, N});
    EXPECT_EQ(api_.launch(one, k, in, 2, &out, 1, nullptr, nullptr),
              GEMMAC_PLUGIN_OK);
    api_.release(one, k);
    api_.destroy(one);
    EXPECT_EQ(y_one, y_many);
  }
}

GEMMAC_CPU_INSTANTIATE(QuantTest);

} // namespace
} // namespace gemmac::cpu_test
