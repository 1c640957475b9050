//===- packing_test.cc - the emitter's Q4G32R8 packing against the spec ---===//
//
// gemma-pack-weights gives q4g32 matrices the CPU's packed type; the bytecode
// emitter then quantizes each row exactly as Q4G32 and moves the blocks of
// each group of 8 rows into one 144-byte run per 32 columns
// (packQ4G32R8 in WeightQuantization.h). These tests check that the packed
// bytes are the Q4G32 bytes permuted as docs/quantization.md ("Packed
// layouts") specifies, with the offsets computed here from the spec, and
// that every Q4G32 byte lands exactly once.
//
//===----------------------------------------------------------------------===//

#include "target/bytecode/WeightQuantization.h"

#include "gemmac/plugin.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace {

/// Q4G32 rows of random values, quantized by the emitter's row quantizer.
std::vector<unsigned char> q4g32Rows(size_t rows, size_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.0f, 1.0f);
  const size_t rowBytes = cols / 32 * 18;
  std::vector<unsigned char> out(rows * rowBytes);
  std::vector<float> row(cols);
  for (size_t r = 0; r < rows; ++r) {
    for (float &v : row)
      v = dist(rng);
    EXPECT_TRUE(gemmac::quantizeRowQ4G32(row.data(), cols, &out[r * rowBytes]));
  }
  return out;
}

/// The emitter's packing of a whole matrix, one group of 8 rows at a time,
/// as it streams a weight.
std::vector<unsigned char> packMatrix(const std::vector<unsigned char> &q4,
                                      size_t rows, size_t cols) {
  const size_t groupBytes = 8 * (cols / 32 * 18);
  std::vector<unsigned char> out(q4.size());
  for (size_t g = 0; g < rows / 8; ++g)
    gemmac::packQ4G32R8(&q4[g * groupBytes], cols, &out[g * groupBytes]);
  return out;
}

TEST(Packing, Q4G32R8IsQ4G32PermutedByTheSpec) {
  for (size_t cols : {32u, 96u, 256u}) {
    SCOPED_TRACE("cols " + std::to_string(cols));
    const size_t rows = 24, blocks = cols / 32;
    const std::vector<unsigned char> q4 = q4g32Rows(rows, cols, 7 + cols);
    const std::vector<unsigned char> packed = packMatrix(q4, rows, cols);
    ASSERT_EQ(static_cast<int64_t>(packed.size()),
              gemmac_weight_bytes(GEMMAC_DTYPE_Q4G32R8, rows, cols));
    // Row r's block b: its d at run + 2 * (r % 8) and its 16 qs bytes at
    // run + 16 + 16 * (r % 8), run = (r / 8 * blocks + b) * 144.
    std::vector<int> hits(packed.size(), 0);
    for (size_t r = 0; r < rows; ++r)
      for (size_t b = 0; b < blocks; ++b) {
        const unsigned char *blk = &q4[(r * blocks + b) * 18];
        const size_t run = (r / 8 * blocks + b) * 144;
        for (size_t i = 0; i < 2; ++i) {
          EXPECT_EQ(packed[run + 2 * (r % 8) + i], blk[i])
              << "d byte " << i << " of row " << r << " block " << b;
          ++hits[run + 2 * (r % 8) + i];
        }
        for (size_t j = 0; j < 16; ++j) {
          EXPECT_EQ(packed[run + 16 + 16 * (r % 8) + j], blk[2 + j])
              << "qs[" << j << "] of row " << r << " block " << b;
          ++hits[run + 16 + 16 * (r % 8) + j];
        }
      }
    // A permutation: every packed byte comes from exactly one Q4G32 byte.
    for (size_t i = 0; i < hits.size(); ++i)
      ASSERT_EQ(hits[i], 1) << "packed byte " << i;
  }
}

TEST(Packing, OneRunHoldsTheEightRowsOfABlock) {
  // Hand-made rows: row r's block has d bytes (r, 0x3c) and qs bytes
  // 16 * r + j, so the run's layout can be read off directly.
  const size_t cols = 64;
  std::vector<unsigned char> q4(8 * 2 * 18);
  for (size_t r = 0; r < 8; ++r)
    for (size_t b = 0; b < 2; ++b) {
      unsigned char *blk = &q4[(r * 2 + b) * 18];
      blk[0] = static_cast<unsigned char>(r + 8 * b);
      blk[1] = 0x3c;
      for (size_t j = 0; j < 16; ++j)
        blk[2 + j] = static_cast<unsigned char>(16 * r + j + b);
    }
  std::vector<unsigned char> packed(q4.size());
  gemmac::packQ4G32R8(q4.data(), cols, packed.data());
  for (size_t b = 0; b < 2; ++b) {
    const unsigned char *run = &packed[b * 144];
    for (size_t r = 0; r < 8; ++r) {
      EXPECT_EQ(run[2 * r], r + 8 * b);
      EXPECT_EQ(run[2 * r + 1], 0x3c);
      for (size_t j = 0; j < 16; ++j)
        EXPECT_EQ(run[16 + 16 * r + j], 16 * r + j + b);
    }
  }
}

TEST(Packing, WeightBytesNeedWholeGroups) {
  EXPECT_EQ(gemmac_weight_bytes(GEMMAC_DTYPE_Q4G32R8, 16, 64), 16 * 2 * 18);
  EXPECT_EQ(gemmac_weight_bytes(GEMMAC_DTYPE_Q4G32R8, 12, 64), -1);
  EXPECT_EQ(gemmac_weight_bytes(GEMMAC_DTYPE_Q4G32R8, 16, 48), -1);
}

} // namespace
