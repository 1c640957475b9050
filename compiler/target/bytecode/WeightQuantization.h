//===- WeightQuantization.h - the compiler's quantizers ---------*- C++ -*-===//
//
// Quantizes rows of f32 weights into the block formats of
// docs/quantization.md (Q8C, Q4G32, Q4G128), and packs Q4G32 rows into the
// CPU's Q4G32R8 layout. The bytecode emitter calls these row by row (eight
// rows at a time when packing) while it streams a weight into the module; the
// unit test (test/unit/compiler/quantization_test.cc) checks them against its
// own reading of the spec. Rounding is to nearest with ties away from zero
// (roundf), and the 4-bit formats pick each nibble against the f16-rounded
// scale (and minimum) they store, so a value is reconstructed from exactly
// the numbers its nibble was chosen for.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_TARGET_BYTECODE_WEIGHTQUANTIZATION_H
#define GEMMAC_TARGET_BYTECODE_WEIGHTQUANTIZATION_H

#include "target/bytecode/WeightConversion.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace gemmac {

/// Bytes of one block: Q4G32 stores f16 d + 16 bytes of nibbles for 32
/// values, Q4G128 f16 d + f16 m + 64 bytes for 128.
inline constexpr size_t kQ4G32Block = 32, kQ4G32BlockBytes = 18;
inline constexpr size_t kQ4G128Block = 128, kQ4G128BlockBytes = 68;
/// Q4G32R8 packs groups of 8 rows: per 32-column block, one run of the 8
/// rows' f16 scales (16 bytes) then their 8 nibble arrays (128 bytes).
inline constexpr size_t kQ4G32R8Rows = 8, kQ4G32R8RunBytes = 144;

namespace detail {
inline bool finiteF16(uint16_t h) { return (h & 0x7c00u) != 0x7c00u; }

/// `v` clamped to [lo, hi] (v is never NaN here: inputs are finite).
inline float clampF(float v, float lo, float hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/// Round to nearest, ties away from zero: what roundf does, for |v| < 2^22,
/// without its library call (the quantizers are the emitter's hot loop).
/// `v - t` is exact for such v, so the tie test is too.
inline int roundAway(float v) {
  int t = static_cast<int>(v); // truncates toward zero
  float frac = v - static_cast<float>(t);
  return t + (frac >= 0.5f) - (frac <= -0.5f);
}
inline void storeF16(unsigned char *dst, uint16_t h) {
  dst[0] = static_cast<unsigned char>(h & 0xff);
  dst[1] = static_cast<unsigned char>(h >> 8);
}
} // namespace detail

/// Q8C of one row of `cols` finite values: `q[j] = clamp(round(x[j] /
/// scale), -127, 127)` with `scale = max|x| / 127` in f32 (0 for a row of
/// zeros, whose q are all 0). Returns the scale.
inline float quantizeRowQ8C(const float *x, size_t cols, int8_t *q) {
  float amax = 0.0f;
  for (size_t j = 0; j < cols; ++j) {
    float a = std::fabs(x[j]);
    amax = a > amax ? a : amax;
  }
  float scale = amax / 127.0f;
  if (scale == 0.0f) {
    std::memset(q, 0, cols);
    return scale;
  }
  for (size_t j = 0; j < cols; ++j) {
    int r = detail::roundAway(detail::clampF(x[j] / scale, -128.0f, 128.0f));
    q[j] = static_cast<int8_t>(r < -127 ? -127 : (r > 127 ? 127 : r));
  }
  return scale;
}

/// Q4G32 of one row (`cols` a multiple of 32) into `cols / 32 * 18` bytes.
/// Per block: `m` is the first element of largest magnitude, `d = f16(m /
/// -8)`, `nibble = clamp(round(x / d) + 8, 0, 15)` (8 when d is 0), element
/// j < 16 in the low nibble of byte j, element j + 16 in its high nibble.
/// Returns false when a scale does not fit f16 (|m| > 8 * 65504).
inline bool quantizeRowQ4G32(const float *x, size_t cols, unsigned char *out) {
  bool ok = true;
  for (size_t b = 0; b < cols / kQ4G32Block; ++b) {
    const float *v = x + b * kQ4G32Block;
    unsigned char *blk = out + b * kQ4G32BlockBytes;
    float amax = 0.0f, m = 0.0f;
    for (size_t j = 0; j < kQ4G32Block; ++j)
      if (std::fabs(v[j]) > amax) {
        amax = std::fabs(v[j]);
        m = v[j];
      }
    uint16_t dh = f32ToF16(m / -8.0f);
    ok &= detail::finiteF16(dh);
    float d = f16ToF32(dh);
    detail::storeF16(blk, dh);
    // Plain loops over a block's values, so the compiler vectorizes them.
    // A zero d divides by 1 instead; its nibbles are replaced below.
    float div = d == 0.0f ? 1.0f : d;
    int nibbles[kQ4G32Block];
    for (size_t j = 0; j < kQ4G32Block; ++j)
      nibbles[j] = detail::roundAway(detail::clampF(v[j] / div, -9.0f, 8.0f));
    for (size_t j = 0; j < kQ4G32Block; ++j)
      nibbles[j] =
          d == 0.0f
              ? 8
              : (nibbles[j] < -8 ? -8 : (nibbles[j] > 7 ? 7 : nibbles[j])) + 8;
    for (size_t j = 0; j < kQ4G32Block / 2; ++j)
      blk[2 + j] = static_cast<unsigned char>(
          nibbles[j] | nibbles[j + kQ4G32Block / 2] << 4);
  }
  return ok;
}

/// Q4G128 of one row (`cols` a multiple of 128) into `cols / 128 * 68` bytes.
/// Per block: `m = f16(min)`, `d = f16((max - min) / 15)`, `nibble =
/// clamp(round((x - m) / d), 0, 15)` (0 when d is 0, as when max == min),
/// element j < 64 in the low nibble of byte j, element j + 64 in its high
/// nibble. Returns false when d or m does not fit f16.
inline bool quantizeRowQ4G128(const float *x, size_t cols, unsigned char *out) {
  bool ok = true;
  for (size_t b = 0; b < cols / kQ4G128Block; ++b) {
    const float *v = x + b * kQ4G128Block;
    unsigned char *blk = out + b * kQ4G128BlockBytes;
    float lo = v[0], hi = v[0];
    for (size_t j = 1; j < kQ4G128Block; ++j) {
      lo = v[j] < lo ? v[j] : lo;
      hi = v[j] > hi ? v[j] : hi;
    }
    uint16_t dh = f32ToF16(hi == lo ? 0.0f : (hi - lo) / 15.0f);
    uint16_t mh = f32ToF16(lo);
    if (!detail::finiteF16(dh) || !detail::finiteF16(mh)) {
      // The caller refuses the row; (v - m) / d would be NaN, whose
      // conversion to int below is undefined.
      ok = false;
      continue;
    }
    float d = f16ToF32(dh), m = f16ToF32(mh);
    detail::storeF16(blk, dh);
    detail::storeF16(blk + 2, mh);
    float div = d == 0.0f ? 1.0f : d; // as in Q4G32
    int nibbles[kQ4G128Block];
    for (size_t j = 0; j < kQ4G128Block; ++j)
      nibbles[j] =
          detail::roundAway(detail::clampF((v[j] - m) / div, -1.0f, 16.0f));
    for (size_t j = 0; j < kQ4G128Block; ++j)
      nibbles[j] =
          d == 0.0f
              ? 0
              : (nibbles[j] < 0 ? 0 : (nibbles[j] > 15 ? 15 : nibbles[j]));
    for (size_t j = 0; j < kQ4G128Block / 2; ++j)
      blk[4 + j] = static_cast<unsigned char>(
          nibbles[j] | nibbles[j + kQ4G128Block / 2] << 4);
  }
  return ok;
}

/// Q4G32R8 of 8 Q4G32 rows: `rows` holds the 8 rows' Q4G32 bytes one after
/// the other (`cols / 32 * 18` each), `out` receives `cols / 32 * 144` bytes.
/// Run b holds block b of rows 0..7: their 8 f16 d, then their 8 qs[16],
/// each copied unchanged, so the values are exactly the Q4G32 ones.
inline void packQ4G32R8(const unsigned char *rows, size_t cols,
                        unsigned char *out) {
  const size_t blocks = cols / kQ4G32Block;
  const size_t rowBytes = blocks * kQ4G32BlockBytes;
  for (size_t b = 0; b < blocks; ++b) {
    unsigned char *run = out + b * kQ4G32R8RunBytes;
    for (size_t r = 0; r < kQ4G32R8Rows; ++r) {
      const unsigned char *blk = rows + r * rowBytes + b * kQ4G32BlockBytes;
      std::memcpy(run + 2 * r, blk, 2);
      std::memcpy(run + 2 * kQ4G32R8Rows + 16 * r, blk + 2, 16);
    }
  }
}

} // namespace gemmac

#endif // GEMMAC_TARGET_BYTECODE_WEIGHTQUANTIZATION_H
