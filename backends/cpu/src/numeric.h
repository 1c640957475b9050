// The one place where the CPU backend turns stored weight formats into f32.
//
// Every kernel reads weights in their stored dtype straight from the mapped
// module and converts each element in registers through Weight<>::Load, so a
// new weight format means a new specialization here and nothing else. The
// conversions are branch-free so the loops that call them vectorize.
#ifndef GEMMAC_BACKENDS_CPU_NUMERIC_H_
#define GEMMAC_BACKENDS_CPU_NUMERIC_H_

#include <cstdint>
#include <cstring>

#include "gemmac/plugin.h"

namespace gemmac::cpu {

inline float BitsToF32(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

inline uint32_t F32ToBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}

// bf16 is the top half of an f32, so widening is exact.
inline float Bf16ToF32(uint16_t h) { return BitsToF32(uint32_t(h) << 16); }

// IEEE half -> f32, exact for every input (normals, subnormals, inf, NaN).
// Branch-free (after M. Dukhan's FP16 library) so it vectorizes: normals are
// rebased by shifting the exponent into place and scaling by 2^-112, which
// also maps the all-ones exponent to f32 inf/NaN; subnormals are produced by
// the "magic number" subtraction, which is exact for them.
inline float F16ToF32(uint16_t h) {
  const uint32_t w = uint32_t(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w; // drops the sign
  const uint32_t exp_offset = 0xE0u << 23;
  const float exp_scale = BitsToF32(0x7800000u); // 2^-112
  const float normalized = BitsToF32((two_w >> 4) + exp_offset) * exp_scale;
  const uint32_t magic_mask = 126u << 23;
  const float magic_bias = 0.5f;
  const float denormalized = BitsToF32((two_w >> 17) | magic_mask) - magic_bias;
  // Select with a mask, not ?:, which GCC turns into a branch that stops
  // vectorization. The test is two_w < 2^27 (a zero or subnormal half) as a
  // signed compare of the sign-less bits: SSE2 has no unsigned one.
  const uint32_t subnormal =
      0u - uint32_t(int32_t(w & 0x7FFFFFFFu) < int32_t(1u << 26));
  const uint32_t result = sign | (F32ToBits(denormalized) & subnormal) |
                          (F32ToBits(normalized) & ~subnormal);
  return BitsToF32(result);
}

// A weight dtype: how it is stored and how one element becomes f32.
template <int32_t DType> struct Weight;

template <> struct Weight<GEMMAC_DTYPE_F32> {
  using Storage = float;
  static float Load(float v) { return v; }
};

template <> struct Weight<GEMMAC_DTYPE_BF16> {
  using Storage = uint16_t;
  static float Load(uint16_t v) { return Bf16ToF32(v); }
};

template <> struct Weight<GEMMAC_DTYPE_F16> {
  using Storage = uint16_t;
  static float Load(uint16_t v) { return F16ToF32(v); }
};

inline bool IsWeightDType(int32_t dtype) {
  return dtype == GEMMAC_DTYPE_F32 || dtype == GEMMAC_DTYPE_BF16 ||
         dtype == GEMMAC_DTYPE_F16;
}

inline int64_t DTypeSize(int32_t dtype) {
  switch (dtype) {
  case GEMMAC_DTYPE_F32:
  case GEMMAC_DTYPE_I32:
    return 4;
  case GEMMAC_DTYPE_BF16:
  case GEMMAC_DTYPE_F16:
    return 2;
  default:
    return 0;
  }
}

// Calls fn(Weight<DType>{}) for a weight dtype already checked by
// IsWeightDType; the one switch from run-time dtype to compiled loop.
template <typename Fn> void DispatchWeight(int32_t dtype, Fn &&fn) {
  switch (dtype) {
  case GEMMAC_DTYPE_BF16:
    fn(Weight<GEMMAC_DTYPE_BF16>{});
    break;
  case GEMMAC_DTYPE_F16:
    fn(Weight<GEMMAC_DTYPE_F16>{});
    break;
  default:
    fn(Weight<GEMMAC_DTYPE_F32>{});
    break;
  }
}

} // namespace gemmac::cpu

#endif // GEMMAC_BACKENDS_CPU_NUMERIC_H_
