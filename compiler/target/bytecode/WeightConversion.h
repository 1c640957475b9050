//===- WeightConversion.h - the compiler's one place for float formats -*- C++
//-*-===//
//
// Conversions between the weight formats a checkpoint stores and the ones a
// module stores (f32, bf16, f16). The bytecode emitter converts each weight
// while it writes the segment; nothing else in the compiler converts weight
// bytes. Narrowing rounds to nearest, ties to even (what PyTorch's
// .to(torch.bfloat16) does); widening is exact. Inputs are little-endian.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_TARGET_BYTECODE_WEIGHTCONVERSION_H
#define GEMMAC_TARGET_BYTECODE_WEIGHTCONVERSION_H

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace gemmac {

enum class WeightFormat { F32, BF16, F16 };

inline size_t weightFormatBytes(WeightFormat f) {
  return f == WeightFormat::F32 ? 4 : 2;
}

inline float bf16ToF32(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32ToBf16(float value) {
  uint32_t u;
  std::memcpy(&u, &value, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu) != 0)
    return static_cast<uint16_t>((u >> 16) | 0x0040u); // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float f16ToF32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13); // inf / NaN
  } else if (exp != 0) {
    u = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {
    u = sign; // zero
  } else {
    // Subnormal half: normalize into an f32 normal.
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    u = sign | static_cast<uint32_t>(112 - e) << 23 | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32ToF16(float value) {
  uint32_t u;
  std::memcpy(&u, &value, 4);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u) // inf or NaN
    return sign | (abs > 0x7f800000u ? 0x7e00u : 0x7c00u);
  if (abs >= 0x477ff000u) // rounds to >= 65520: overflow to inf
    return sign | 0x7c00u;
  if (abs < 0x38800000u) { // below the smallest f16 normal (2^-14)
    if (abs < 0x33000000u) // below half the smallest subnormal: zero
      return sign;
    uint32_t exp = abs >> 23;
    uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - exp; // 14..24 for the subnormal range
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u)))
      ++half;
    return sign | static_cast<uint16_t>(half);
  }
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return sign | static_cast<uint16_t>(((rounded >> 13) - (112u << 10)));
}

/// Converts `count` elements from `src` (format `from`) into `dst` (format
/// `to`). `src` need not be aligned.
inline void convertWeights(const void *src, WeightFormat from, void *dst,
                           WeightFormat to, size_t count) {
  if (from == to) {
    std::memcpy(dst, src, count * weightFormatBytes(from));
    return;
  }
  const unsigned char *in = static_cast<const unsigned char *>(src);
  unsigned char *out = static_cast<unsigned char *>(dst);
  for (size_t i = 0; i < count; ++i) {
    float f;
    if (from == WeightFormat::F32) {
      std::memcpy(&f, in + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, in + 2 * i, 2);
      f = from == WeightFormat::BF16 ? bf16ToF32(h) : f16ToF32(h);
    }
    if (to == WeightFormat::F32) {
      std::memcpy(out + 4 * i, &f, 4);
    } else {
      uint16_t h = to == WeightFormat::BF16 ? f32ToBf16(f) : f32ToF16(f);
      std::memcpy(out + 2 * i, &h, 2);
    }
  }
}

} // namespace gemmac

#endif // GEMMAC_TARGET_BYTECODE_WEIGHTCONVERSION_H
