//===- quantization_test.cc - the emitter's quantizers against the spec ---===//
//
// The bytecode emitter quantizes weights with the row functions of
// compiler/target/bytecode/WeightQuantization.h. These tests quantize rows
// with them and read the bytes back with a dequantizer written here from
// docs/quantization.md alone (its own f16 decoder included), then check:
// the error bound of each format per block, exact round trips of values
// already on a format's grid, and the bytes of hand-made blocks.
//
//===----------------------------------------------------------------------===//

#include "target/bytecode/WeightQuantization.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace {

// --- An independent reading of docs/quantization.md ------------------------

/// IEEE half to double, from the definition (sign, 5-bit exponent with bias
/// 15, 10-bit fraction; exponent 0 is subnormal).
double halfToDouble(uint16_t h) {
  int sign = h >> 15 ? -1 : 1;
  int exp = (h >> 10) & 0x1f;
  int frac = h & 0x3ff;
  if (exp == 0x1f)
    return frac ? NAN : sign * INFINITY;
  if (exp == 0)
    return sign * std::ldexp(frac, -24);
  return sign * std::ldexp(1024 + frac, exp - 25);
}

uint16_t readU16(const unsigned char *p) { return p[0] | p[1] << 8; }

/// The most rounding a value `v` can take on its way to f16: half a unit in
/// the last place, 2^-11 relative for normals, 2^-25 absolute for
/// subnormals.
double f16RoundingBound(double v) {
  return std::max(std::fabs(v) * std::ldexp(1.0, -11), std::ldexp(1.0, -25));
}

/// Q8C of a [rows, cols] matrix: int8 q[rows][cols], then f32 scale[rows].
std::vector<double> dequantQ8C(const std::vector<unsigned char> &bytes,
                               size_t rows, size_t cols,
                               std::vector<double> *scales = nullptr) {
  std::vector<double> w(rows * cols);
  for (size_t r = 0; r < rows; ++r) {
    float scale;
    std::memcpy(&scale, bytes.data() + rows * cols + 4 * r, 4);
    if (scales)
      scales->push_back(scale);
    for (size_t c = 0; c < cols; ++c)
      w[r * cols + c] =
          static_cast<int8_t>(bytes[r * cols + c]) * static_cast<double>(scale);
  }
  return w;
}

/// Q4G32 of one row: 18-byte blocks of f16 d and qs[16]; element j is
/// qs[j] & 15 for j < 16, qs[j - 16] >> 4 otherwise; w = (nibble - 8) * d.
std::vector<double> dequantQ4G32(const unsigned char *row, size_t cols,
                                 std::vector<double> *ds = nullptr) {
  std::vector<double> w(cols);
  for (size_t b = 0; b < cols / 32; ++b) {
    const unsigned char *blk = row + 18 * b;
    double d = halfToDouble(readU16(blk));
    if (ds)
      ds->push_back(d);
    for (size_t j = 0; j < 32; ++j) {
      int nibble = j < 16 ? blk[2 + j] & 15 : blk[2 + j - 16] >> 4;
      w[32 * b + j] = (nibble - 8) * d;
    }
  }
  return w;
}

/// Q4G128 of one row: 68-byte blocks of f16 d, f16 m, qs[64]; element j is
/// qs[j] & 15 for j < 64, qs[j - 64] >> 4 otherwise; w = nibble * d + m.
std::vector<double> dequantQ4G128(const unsigned char *row, size_t cols,
                                  std::vector<double> *ds = nullptr,
                                  std::vector<double> *ms = nullptr) {
  std::vector<double> w(cols);
  for (size_t b = 0; b < cols / 128; ++b) {
    const unsigned char *blk = row + 68 * b;
    double d = halfToDouble(readU16(blk)), m = halfToDouble(readU16(blk + 2));
    if (ds)
      ds->push_back(d);
    if (ms)
      ms->push_back(m);
    for (size_t j = 0; j < 128; ++j) {
      int nibble = j < 64 ? blk[4 + j] & 15 : blk[4 + j - 64] >> 4;
      w[128 * b + j] = nibble * d + m;
    }
  }
  return w;
}

// --- Test rows --------------------------------------------------------------

/// Rows of the kinds real weights have, and the edge cases: gaussian,
/// uniform, gaussian with a few large outliers, all zero, constant, tiny
/// (near f16's subnormals) and all one sign.
std::vector<std::vector<float>> testRows(size_t cols) {
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<std::vector<float>> rows;
  for (int kind = 0; kind < 7; ++kind) {
    for (int rep = 0; rep < 8; ++rep) {
      std::vector<float> x(cols);
      for (size_t j = 0; j < cols; ++j) {
        switch (kind) {
        case 0:
          x[j] = normal(rng);
          break;
        case 1:
          x[j] = uniform(rng) * 3.0f;
          break;
        case 2:
          x[j] = normal(rng) * (j % 37 == 5 ? 200.0f : 1.0f);
          break;
        case 3:
          x[j] = 0.0f;
          break;
        case 4:
          x[j] = -0.375f;
          break;
        case 5:
          x[j] = uniform(rng) * 1e-5f;
          break;
        default:
          x[j] = std::fabs(normal(rng)) + 0.5f;
          break;
        }
      }
      rows.push_back(x);
    }
  }
  return rows;
}

// --- Error bounds
// -------------------------------------------------------------

TEST(Quantization, Q8CErrorIsAtMostHalfAStep) {
  const size_t cols = 96;
  for (const std::vector<float> &x : testRows(cols)) {
    std::vector<unsigned char> bytes(cols + 4);
    float scale = gemmac::quantizeRowQ8C(
        x.data(), cols, reinterpret_cast<int8_t *>(bytes.data()));
    std::memcpy(bytes.data() + cols, &scale, 4);
    std::vector<double> scales;
    std::vector<double> w = dequantQ8C(bytes, 1, cols, &scales);
    double amax = 0;
    for (float v : x)
      amax = std::max(amax, std::fabs(static_cast<double>(v)));
    // scale = max|w| / 127, rounded once to f32.
    EXPECT_NEAR(scales[0], amax / 127, amax / 127 * 1e-7);
    for (size_t j = 0; j < cols; ++j)
      EXPECT_LE(std::fabs(w[j] - x[j]), scales[0] / 2 * (1 + 1e-6) + 1e-30)
          << "element " << j << " = " << x[j];
  }
}

TEST(Quantization, Q4G32ErrorIsAtMostHalfAStep) {
  const size_t cols = 128;
  for (const std::vector<float> &x : testRows(cols)) {
    std::vector<unsigned char> row(cols / 32 * 18);
    ASSERT_TRUE(gemmac::quantizeRowQ4G32(x.data(), cols, row.data()));
    std::vector<double> ds;
    std::vector<double> w = dequantQ4G32(row.data(), cols, &ds);
    for (size_t b = 0; b < cols / 32; ++b) {
      // m: the block's element of largest magnitude; d = f16(m / -8).
      double m = 0;
      for (size_t j = 0; j < 32; ++j)
        if (std::fabs(x[32 * b + j]) > std::fabs(m))
          m = x[32 * b + j];
      double d = ds[b];
      EXPECT_LE(std::fabs(d - m / -8), f16RoundingBound(m / -8))
          << "block " << b << ": stored d is not f16(m / -8)";
      for (size_t j = 0; j < 32; ++j) {
        double v = x[32 * b + j], err = std::fabs(w[32 * b + j] - v);
        if (d == 0) {
          EXPECT_LE(err, 1e-7) << "block " << b << " element " << j;
          continue;
        }
        // Steps -8..7 around 0: a value more than 7.5 steps on the side
        // opposite m (only m's own magnitude gets there) lands on 7.
        double steps = v / d;
        double bound = steps > 7.5 ? std::fabs(d) * (steps - 7) * (1 + 1e-6)
                                   : std::fabs(d) / 2 * (1 + 1e-6);
        EXPECT_LE(err, bound)
            << "block " << b << " element " << j << " = " << v << ", d = " << d;
      }
    }
  }
}

TEST(Quantization, Q4G128ErrorIsAtMostHalfAStep) {
  const size_t cols = 256;
  for (const std::vector<float> &x : testRows(cols)) {
    std::vector<unsigned char> row(cols / 128 * 68);
    ASSERT_TRUE(gemmac::quantizeRowQ4G128(x.data(), cols, row.data()));
    std::vector<double> ds, ms;
    std::vector<double> w = dequantQ4G128(row.data(), cols, &ds, &ms);
    for (size_t b = 0; b < cols / 128; ++b) {
      double lo = x[128 * b], hi = x[128 * b];
      for (size_t j = 0; j < 128; ++j) {
        lo = std::min(lo, static_cast<double>(x[128 * b + j]));
        hi = std::max(hi, static_cast<double>(x[128 * b + j]));
      }
      double d = ds[b], m = ms[b], exact = (hi - lo) / 15;
      EXPECT_LE(std::fabs(m - lo), f16RoundingBound(lo));
      EXPECT_LE(std::fabs(d - exact), f16RoundingBound(exact));
      // Half a step, plus what the f16 rounding of m and d moves the ends
      // of the grid: |m - min| at the bottom, 15 |d - exact| at the top.
      double bound = d / 2 * (1 + 1e-6) + std::fabs(m - lo) +
                     15 * std::fabs(d - exact) + 1e-12;
      for (size_t j = 0; j < 128; ++j)
        EXPECT_LE(std::fabs(w[128 * b + j] - x[128 * b + j]), bound)
            << "block " << b << " element " << j << " = " << x[128 * b + j];
    }
  }
}

// --- Values on the grid come back exactly
// -------------------------------------

TEST(Quantization, GridValuesRoundTripExactly) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> nib(0, 15), q8(-127, 127);
  // Q8C: scale a power of two, so max|w| / 127 recovers it exactly.
  {
    const size_t cols = 64;
    const float scale = 1.0f / 128;
    std::vector<float> x(cols);
    for (size_t j = 0; j < cols; ++j)
      x[j] = q8(rng) * scale;
    x[3] = -127 * scale;
    std::vector<unsigned char> bytes(cols + 4);
    float got = gemmac::quantizeRowQ8C(
        x.data(), cols, reinterpret_cast<int8_t *>(bytes.data()));
    EXPECT_EQ(got, scale);
    std::memcpy(bytes.data() + cols, &got, 4);
    std::vector<double> w = dequantQ8C(bytes, 1, cols);
    for (size_t j = 0; j < cols; ++j)
      EXPECT_EQ(w[j], x[j]) << j;
  }
  // Q4G32: w = (n - 8) * d with -8 * d present, so m / -8 is d again.
  {
    const size_t cols = 64;
    const float d = -0.0078125f * 3; // f16-exact; negative: m is positive
    std::vector<float> x(cols);
    for (size_t j = 0; j < cols; ++j)
      x[j] = (nib(rng) - 8) * d;
    x[5] = -8 * d;
    x[40] = -8 * d;
    std::vector<unsigned char> row(cols / 32 * 18);
    ASSERT_TRUE(gemmac::quantizeRowQ4G32(x.data(), cols, row.data()));
    std::vector<double> w = dequantQ4G32(row.data(), cols);
    for (size_t j = 0; j < cols; ++j)
      EXPECT_EQ(w[j], x[j]) << j;
  }
  // Q4G128: w = m + n * d with n = 0 and n = 15 present.
  {
    const size_t cols = 256;
    const float d = 0.03125f, m = -0.25f;
    std::vector<float> x(cols);
    for (size_t j = 0; j < cols; ++j)
      x[j] = m + nib(rng) * d;
    for (size_t b = 0; b < 2; ++b) {
      x[128 * b + 7] = m;
      x[128 * b + 100] = m + 15 * d;
    }
    std::vector<unsigned char> row(cols / 128 * 68);
    ASSERT_TRUE(gemmac::quantizeRowQ4G128(x.data(), cols, row.data()));
    std::vector<double> w = dequantQ4G128(row.data(), cols);
    for (size_t j = 0; j < cols; ++j)
      EXPECT_EQ(w[j], x[j]) << j;
  }
}

// --- Byte layouts of hand-made blocks
// -----------------------------------------

TEST(Quantization, Q8CBytes) {
  // scale = 127 / 127 = 1. Ties round away from zero (-63.5 -> -64, 2.5 ->
  // 3, not to even); the largest float below 0.5 rounds to 0.
  const float x[6] = {127.0f, -63.5f, 0.0f, 1.4f, 2.5f, 0.49999997f};
  int8_t q[6];
  float scale = gemmac::quantizeRowQ8C(x, 6, q);
  EXPECT_EQ(scale, 1.0f);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], -64);
  EXPECT_EQ(q[2], 0);
  EXPECT_EQ(q[3], 1);
  EXPECT_EQ(q[4], 3);
  EXPECT_EQ(q[5], 0);
  // A zero row: scale 0, q 0.
  const float zeros[3] = {0.0f, -0.0f, 0.0f};
  EXPECT_EQ(gemmac::quantizeRowQ8C(zeros, 3, q), 0.0f);
  EXPECT_EQ(q[0] | q[1] | q[2], 0);
}

TEST(Quantization, Q4G32Bytes) {
  // m = -8 (the largest magnitude), so d = 1 (f16 0x3c00); x[j] = j - 8 for
  // j < 16 takes nibbles 0..15; x[16 + j] = 7 - j takes 15..0; the 7.6 at
  // j = 31 is clamped to 7 (nibble 15), -0.5 at 17 rounds away to -1 (7).
  float x[32];
  for (int j = 0; j < 16; ++j) {
    x[j] = static_cast<float>(j - 8);
    x[16 + j] = static_cast<float>(7 - j);
  }
  x[17] = -0.5f;
  x[31] = 7.6f;
  unsigned char blk[18];
  ASSERT_TRUE(gemmac::quantizeRowQ4G32(x, 32, blk));
  EXPECT_EQ(blk[0], 0x00);
  EXPECT_EQ(blk[1], 0x3c);
  unsigned char want[16];
  for (int j = 0; j < 16; ++j)
    want[j] = static_cast<unsigned char>(j | (15 - j) << 4);
  want[1] = static_cast<unsigned char>(1 | 7 << 4);
  want[15] = static_cast<unsigned char>(15 | 15 << 4);
  for (int j = 0; j < 16; ++j)
    EXPECT_EQ(blk[2 + j], want[j]) << "qs[" << j << "]";
}

TEST(Quantization, Q4G128Bytes) {
  // min = -1, max = 6.5: d = 0.5 (f16 0x3800), m = -1 (f16 0xbc00);
  // x[j] = -1 + (j % 16) * 0.5, so element j has nibble j % 16 and qs[j]
  // holds elements j and j + 64: (j % 16) * 0x11.
  float x[128];
  for (int j = 0; j < 128; ++j)
    x[j] = -1.0f + (j % 16) * 0.5f;
  unsigned char blk[68];
  ASSERT_TRUE(gemmac::quantizeRowQ4G128(x, 128, blk));
  EXPECT_EQ(readU16(blk), 0x3800);
  EXPECT_EQ(readU16(blk + 2), 0xbc00);
  for (int j = 0; j < 64; ++j)
    EXPECT_EQ(blk[4 + j], (j % 16) * 0x11) << "qs[" << j << "]";
  // A constant block: d = 0, every nibble 0, w = m.
  for (float &v : x)
    v = 0.75f;
  ASSERT_TRUE(gemmac::quantizeRowQ4G128(x, 128, blk));
  EXPECT_EQ(readU16(blk), 0x0000);
  EXPECT_EQ(readU16(blk + 2), 0x3a00);
  for (int j = 0; j < 64; ++j)
    EXPECT_EQ(blk[4 + j], 0);
}

TEST(Quantization, ScalesThatDoNotFitF16AreRefused) {
  // |m| / 8 above 65504 has no f16 scale.
  std::vector<float> x(32, 1.0f);
  x[9] = 1.0e6f;
  unsigned char blk[18];
  EXPECT_FALSE(gemmac::quantizeRowQ4G32(x.data(), 32, blk));
  std::vector<float> y(128, 0.0f);
  y[0] = 7.0e4f; // the minimum 0 fits, d = 4667 fits; then m alone:
  unsigned char blk2[68];
  EXPECT_TRUE(gemmac::quantizeRowQ4G128(y.data(), 128, blk2));
  y[1] = -7.0e4f; // m = -70000 does not fit f16
  EXPECT_FALSE(gemmac::quantizeRowQ4G128(y.data(), 128, blk2));
}

} // namespace
