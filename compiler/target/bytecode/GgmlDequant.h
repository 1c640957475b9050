//===- GgmlDequant.h - GGUF block formats the emitter reads -----*- C++ -*-===//
//
// The ggml block formats a GGUF weight may arrive in (Q4_0, Q8_0, Q4_K, Q5_K,
// Q6_K), decoded to f32 exactly as ggml's reference dequantize_row_* functions
// do (ggml-quants.c: the same products, in the same order, in f32), so a
// weight's values are the ones llama.cpp computes with. The emitter decodes a
// row at a time and then stores it as the module's dtype; a Q4_0 row stored
// as Q4G32 is the same bytes and is copied instead (docs/quantization.md).
// Also decodes rows of the module's own quantized formats, so the emitter can
// measure what requantizing cost.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_TARGET_BYTECODE_GGMLDEQUANT_H
#define GEMMAC_TARGET_BYTECODE_GGMLDEQUANT_H

#include "target/bytecode/WeightConversion.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/StringSwitch.h"

#include <cstddef>
#include <cstdint>

namespace gemmac {

enum class GgmlBlockFormat { None, Q4_0, Q8_0, Q4_K, Q5_K, Q6_K };

/// The block format a gemma.weight's source_dtype names; None for a float.
inline GgmlBlockFormat ggmlBlockFormatOf(llvm::StringRef sourceDtype) {
  return llvm::StringSwitch<GgmlBlockFormat>(sourceDtype)
      .Case("Q4_0", GgmlBlockFormat::Q4_0)
      .Case("Q8_0", GgmlBlockFormat::Q8_0)
      .Case("Q4_K", GgmlBlockFormat::Q4_K)
      .Case("Q5_K", GgmlBlockFormat::Q5_K)
      .Case("Q6_K", GgmlBlockFormat::Q6_K)
      .Default(GgmlBlockFormat::None);
}

inline size_t ggmlBlockElements(GgmlBlockFormat f) {
  return f == GgmlBlockFormat::Q4_0 || f == GgmlBlockFormat::Q8_0 ? 32 : 256;
}

/// ggml-common.h: block_q4_0 {f16 d; u8 qs[16]}, block_q8_0 {f16 d; i8
/// qs[32]}, block_q4_K {f16 d, dmin; u8 scales[12]; u8 qs[128]}, block_q5_K
/// {f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}, block_q6_K {u8
/// ql[128]; u8 qh[64]; i8 scales[16]; f16 d}.
inline size_t ggmlBlockBytes(GgmlBlockFormat f) {
  switch (f) {
  case GgmlBlockFormat::Q4_0:
    return 18;
  case GgmlBlockFormat::Q8_0:
    return 34;
  case GgmlBlockFormat::Q4_K:
    return 144;
  case GgmlBlockFormat::Q5_K:
    return 176;
  case GgmlBlockFormat::Q6_K:
    return 210;
  case GgmlBlockFormat::None:
    break;
  }
  return 0;
}

/// Bytes of a row of `cols` values (cols a multiple of the block size).
inline uint64_t ggmlRowBytes(GgmlBlockFormat f, uint64_t cols) {
  return cols / ggmlBlockElements(f) * ggmlBlockBytes(f);
}

namespace detail {
inline float loadF16(const unsigned char *p) {
  return f16ToF32(static_cast<uint16_t>(p[0] | p[1] << 8));
}

/// ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j of a
/// Q4_K/Q5_K block's 12 packed bytes.
inline void scaleMinK4(int j, const unsigned char *q, uint8_t &d, uint8_t &m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}
} // namespace detail

/// Decodes one row of `cols` values of format `f` from `src` into `y`.
inline void dequantizeRowGgml(GgmlBlockFormat f, const unsigned char *src,
                              uint64_t cols, float *y) {
  const uint64_t blocks = cols / ggmlBlockElements(f);
  const size_t blockBytes = ggmlBlockBytes(f);
  for (uint64_t b = 0; b < blocks; ++b) {
    const unsigned char *x = src + b * blockBytes;
    switch (f) {
    case GgmlBlockFormat::Q4_0: {
      const float d = detail::loadF16(x);
      const unsigned char *qs = x + 2;
      for (int j = 0; j < 16; ++j) {
        const int x0 = (qs[j] & 0x0F) - 8;
        const int x1 = (qs[j] >> 4) - 8;
        y[j] = x0 * d;
        y[j + 16] = x1 * d;
      }
      y += 32;
      break;
    }
    case GgmlBlockFormat::Q8_0: {
      const float d = detail::loadF16(x);
      for (int j = 0; j < 32; ++j)
        y[j] = static_cast<int8_t>(x[2 + j]) * d;
      y += 32;
      break;
    }
    case GgmlBlockFormat::Q4_K: {
      const float d = detail::loadF16(x);
      const float min = detail::loadF16(x + 2);
      const unsigned char *scales = x + 4;
      const unsigned char *q = x + 16;
      int is = 0;
      uint8_t sc, m;
      for (int j = 0; j < 256; j += 64) {
        detail::scaleMinK4(is + 0, scales, sc, m);
        const float d1 = d * sc;
        const float m1 = min * m;
        detail::scaleMinK4(is + 1, scales, sc, m);
        const float d2 = d * sc;
        const float m2 = min * m;
        for (int l = 0; l < 32; ++l)
          *y++ = d1 * (q[l] & 0xF) - m1;
        for (int l = 0; l < 32; ++l)
          *y++ = d2 * (q[l] >> 4) - m2;
        q += 32;
        is += 2;
      }
      break;
    }
    case GgmlBlockFormat::Q5_K: {
      const float d = detail::loadF16(x);
      const float min = detail::loadF16(x + 2);
      const unsigned char *scales = x + 4;
      const unsigned char *qh = x + 16;
      const unsigned char *ql = x + 48;
      int is = 0;
      uint8_t sc, m;
      uint8_t u1 = 1, u2 = 2;
      for (int j = 0; j < 256; j += 64) {
        detail::scaleMinK4(is + 0, scales, sc, m);
        const float d1 = d * sc;
        const float m1 = min * m;
        detail::scaleMinK4(is + 1, scales, sc, m);
        const float d2 = d * sc;
        const float m2 = min * m;
        for (int l = 0; l < 32; ++l)
          *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; ++l)
          *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        ql += 32;
        is += 2;
        u1 <<= 2;
        u2 <<= 2;
      }
      break;
    }
    case GgmlBlockFormat::Q6_K: {
      const unsigned char *ql = x;
      const unsigned char *qh = x + 128;
      const int8_t *sc = reinterpret_cast<const int8_t *>(x + 192);
      const float d = detail::loadF16(x + 208);
      for (int n = 0; n < 256; n += 128) {
        for (int l = 0; l < 32; ++l) {
          const int is = l / 16;
          const int q1 = static_cast<int8_t>((ql[l + 0] & 0xF) |
                                             (((qh[l] >> 0) & 3) << 4)) -
                         32;
          const int q2 = static_cast<int8_t>((ql[l + 32] & 0xF) |
                                             (((qh[l] >> 2) & 3) << 4)) -
                         32;
          const int q3 = static_cast<int8_t>((ql[l + 0] >> 4) |
                                             (((qh[l] >> 4) & 3) << 4)) -
                         32;
          const int q4 = static_cast<int8_t>((ql[l + 32] >> 4) |
                                             (((qh[l] >> 6) & 3) << 4)) -
                         32;
          y[l + 0] = d * sc[is + 0] * q1;
          y[l + 32] = d * sc[is + 2] * q2;
          y[l + 64] = d * sc[is + 4] * q3;
          y[l + 96] = d * sc[is + 6] * q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
      }
      break;
    }
    case GgmlBlockFormat::None:
      return;
    }
  }
}

/// Decodes one stored row of the module's formats (docs/quantization.md):
/// Q8C (`cols` int8 codes; the row's scale is passed), Q4G32, Q4G128.
inline void dequantizeRowQ8C(const int8_t *q, float scale, uint64_t cols,
                             float *y) {
  for (uint64_t j = 0; j < cols; ++j)
    y[j] = q[j] * scale;
}
inline void dequantizeRowQ4G32(const unsigned char *row, uint64_t cols,
                               float *y) {
  // Element j of a block is qs[j] & 15 for j < 16, qs[j - 16] >> 4 after:
  // the Q4_0 order, so the Q4_0 decoder reads it.
  dequantizeRowGgml(GgmlBlockFormat::Q4_0, row, cols, y);
}
inline void dequantizeRowQ4G128(const unsigned char *row, uint64_t cols,
                                float *y) {
  for (uint64_t b = 0; b < cols / 128; ++b) {
    const unsigned char *x = row + b * 68;
    const float d = detail::loadF16(x), m = detail::loadF16(x + 2);
    for (int j = 0; j < 64; ++j) {
      y[b * 128 + j] = (x[4 + j] & 15) * d + m;
      y[b * 128 + j + 64] = (x[4 + j] >> 4) * d + m;
    }
  }
}

} // namespace gemmac

#endif // GEMMAC_TARGET_BYTECODE_GGMLDEQUANT_H
