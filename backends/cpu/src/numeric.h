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

// f32 -> bf16 rounded to nearest even; a NaN stays a (quiet) NaN.
// Branch-free, so the loops that call it vectorize.
inline uint16_t F32ToBf16(float f) {
  const uint32_t b = F32ToBits(f);
  const uint32_t rounded = (b + 0x7FFFu + ((b >> 16) & 1u)) >> 16;
  const uint32_t nan = (b >> 16) | 0x40u;
  const uint32_t is_nan = 0u - uint32_t((b & 0x7FFFFFFFu) > 0x7F800000u);
  return uint16_t((nan & is_nan) | (rounded & ~is_nan));
}

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

// f32, bf16 or f16: the element-wise weight dtypes (norm weights, and the
// dense forms of linear weights).
inline bool IsFloatWeightDType(int32_t dtype) {
  return dtype == GEMMAC_DTYPE_F32 || dtype == GEMMAC_DTYPE_BF16 ||
         dtype == GEMMAC_DTYPE_F16;
}

// The block-quantized matrix formats of docs/quantization.md, packed
// Q4G32R8 included.
inline bool IsQuantDType(int32_t dtype) {
  return dtype == GEMMAC_DTYPE_Q8C || dtype == GEMMAC_DTYPE_Q4G32 ||
         dtype == GEMMAC_DTYPE_Q4G128 || dtype == GEMMAC_DTYPE_Q4G32R8;
}

// Any dtype a matrix operand (linear, lm_head, embed tables) may have.
inline bool IsWeightDType(int32_t dtype) {
  return IsFloatWeightDType(dtype) || IsQuantDType(dtype);
}

// Columns per scale group of a quantized format; a matrix's cols must be a
// multiple of it. 1 for the formats without groups.
inline int64_t GroupSize(int32_t dtype) {
  switch (dtype) {
  case GEMMAC_DTYPE_Q4G32:
  case GEMMAC_DTYPE_Q4G32R8:
    return 32;
  case GEMMAC_DTYPE_Q4G128:
    return 128;
  default:
    return 1;
  }
}

// Rows a packed format interleaves; a matrix's rows must be a multiple of
// it. 1 for the row-major formats.
inline int64_t RowGroupSize(int32_t dtype) {
  return dtype == GEMMAC_DTYPE_Q4G32R8 ? 8 : 1;
}

// Bytes of one element of a dense dtype; 0 for the block formats, whose
// sizes come from gemmac_weight_bytes() and which carry no alignment rule
// (their f16/f32 scales are read with memcpy).
inline int64_t DTypeSize(int32_t dtype) {
  switch (dtype) {
  case GEMMAC_DTYPE_F32:
  case GEMMAC_DTYPE_I32:
    return 4;
  case GEMMAC_DTYPE_BF16:
  case GEMMAC_DTYPE_F16:
    return 2;
  case GEMMAC_DTYPE_I8:
    return 1;
  default:
    return 0;
  }
}

// Calls fn(Weight<DType>{}) for a float weight dtype already checked by
// IsFloatWeightDType; the one switch from run-time dtype to compiled loop.
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

// Unaligned little-endian loads of the scales inside block formats: a Q8C
// scale array starts at rows * cols bytes, which need not be 4-aligned.
inline float LoadF16(const uint8_t *p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  return F16ToF32(h);
}
inline float LoadF32(const uint8_t *p) {
  float f;
  std::memcpy(&f, p, sizeof(f));
  return f;
}

// exp(x) in plain f32 arithmetic that `omp simd` loops vectorize (no libm
// call): x = n ln2 + r with |r| <= ln2/2 (Cody-Waite), exp(r) by its Taylor
// polynomial to r^7, 2^n from the exponent bits. Inputs are clamped to
// [-87, 88], where 2^n stays a normal float; relative error ~2e-7.
inline float ExpF(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // Round to nearest by the 1.5 * 2^23 trick (no SSE4.1 roundps needed).
  const float shift = 12582912.0f;
  const float n = (x * 1.44269504088896341f + shift) - shift;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * BitsToF32(uint32_t(int32_t(n) + 127) << 23);
}

// gelu_tanh(v) = 0.5 v (1 + tanh(u)), u = sqrt(2/pi) (v + 0.044715 v^3),
// computed as v / (1 + exp(-2u)) (the same function: 1 + tanh(u) =
// 2 / (1 + exp(-2u))) with ExpF, so that loops over it vectorize.
inline float GeluTanhF(float v) {
  const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
  return v / (1.0f + ExpF(-2.0f * u));
}

// A weight matrix [rows, cols] as stored in the module, in any weight dtype.
// `rows` counts every stored row: the Q8C scales follow all of them, even
// when a kernel reads only the first few (lm_head over a padded table).
struct WeightMatrix {
  const void *data = nullptr;
  int32_t dtype = GEMMAC_DTYPE_F32;
  int64_t rows = 0;
  int64_t cols = 0;
};

// Row-block views of each weight format, the quantized ones following
// docs/quantization.md. A kernel walks row n in blocks of kBlock columns
// (the last block of a float or Q8C row may be shorter; the group formats
// only ever see whole groups). Decode writes the block's values v[0, len)
// and returns its affine terms, such that for any x
//   sum_j w[n][k0 + j] * x[j] = RowScale(n) * (d * sum_j v[j] x[j]
//                                              + m * sum_j x[j])
// where m is used only when kHasMin. So the kernels multiply-add small
// integers (or the dense values) in f32 within a block and apply the
// block's scale once per block, the row's once per row.
struct BlockTerms {
  float d;
  float m;
};

template <class W> struct FloatRows {
  static constexpr int64_t kBlock = 256;
  static constexpr bool kHasBlockScale = false;
  static constexpr bool kHasMin = false;
  static constexpr bool kHasRowScale = false;
  const typename W::Storage *w;
  int64_t cols;
  explicit FloatRows(const WeightMatrix &m)
      : w(static_cast<const typename W::Storage *>(m.data)), cols(m.cols) {}
  float RowScale(int64_t) const { return 1.0f; }
  BlockTerms Decode(int64_t n, int64_t k0, int64_t len, float *v) const {
    const typename W::Storage *r = w + n * cols + k0;
#pragma omp simd
    for (int64_t j = 0; j < len; ++j)
      v[j] = W::Load(r[j]);
    return {1.0f, 0.0f};
  }
};

// Q8C: int8 q[rows][cols], then f32 scale[rows]; w = q * scale[row].
struct Q8CRows {
  static constexpr int64_t kBlock = 256;
  static constexpr bool kHasBlockScale = false;
  static constexpr bool kHasMin = false;
  static constexpr bool kHasRowScale = true;
  const int8_t *q;
  const uint8_t *scales;
  int64_t cols;
  explicit Q8CRows(const WeightMatrix &m)
      : q(static_cast<const int8_t *>(m.data)),
        scales(static_cast<const uint8_t *>(m.data) + m.rows * m.cols),
        cols(m.cols) {}
  float RowScale(int64_t n) const { return LoadF32(scales + 4 * n); }
  BlockTerms Decode(int64_t n, int64_t k0, int64_t len, float *v) const {
    const int8_t *r = q + n * cols + k0;
#pragma omp simd
    for (int64_t j = 0; j < len; ++j)
      v[j] = float(r[j]);
    return {1.0f, 0.0f};
  }
};

// Q4G32 (GGUF Q4_0): per row, cols/32 blocks of {f16 d, u8 qs[16]};
// element j is qs[j] & 15 (j < 16) or qs[j - 16] >> 4; w = (nibble - 8) * d.
struct Q4G32Rows {
  static constexpr int64_t kBlock = 32;
  static constexpr int64_t kBlockBytes = 18;
  static constexpr bool kHasBlockScale = true;
  static constexpr bool kHasMin = false;
  static constexpr bool kHasRowScale = false;
  const uint8_t *base;
  int64_t row_bytes;
  explicit Q4G32Rows(const WeightMatrix &m)
      : base(static_cast<const uint8_t *>(m.data)),
        row_bytes(m.cols / kBlock * kBlockBytes) {}
  float RowScale(int64_t) const { return 1.0f; }
  BlockTerms Decode(int64_t n, int64_t k0, int64_t, float *v) const {
    const uint8_t *b = base + n * row_bytes + k0 / kBlock * kBlockBytes;
    const uint8_t *qs = b + 2;
#pragma omp simd
    for (int j = 0; j < 16; ++j) {
      v[j] = float(int(qs[j] & 15) - 8);
      v[j + 16] = float(int(qs[j] >> 4) - 8);
    }
    return {LoadF16(b), 0.0f};
  }
};

// Q4G128: per row, cols/128 blocks of {f16 d, f16 m, u8 qs[64]}; element j
// is qs[j] & 15 (j < 64) or qs[j - 64] >> 4; w = nibble * d + m.
struct Q4G128Rows {
  static constexpr int64_t kBlock = 128;
  static constexpr int64_t kBlockBytes = 68;
  static constexpr bool kHasBlockScale = true;
  static constexpr bool kHasMin = true;
  static constexpr bool kHasRowScale = false;
  const uint8_t *base;
  int64_t row_bytes;
  explicit Q4G128Rows(const WeightMatrix &m)
      : base(static_cast<const uint8_t *>(m.data)),
        row_bytes(m.cols / kBlock * kBlockBytes) {}
  float RowScale(int64_t) const { return 1.0f; }
  BlockTerms Decode(int64_t n, int64_t k0, int64_t, float *v) const {
    const uint8_t *b = base + n * row_bytes + k0 / kBlock * kBlockBytes;
    const uint8_t *qs = b + 4;
#pragma omp simd
    for (int j = 0; j < 64; ++j) {
      v[j] = float(qs[j] & 15);
      v[j + 64] = float(qs[j] >> 4);
    }
    return {LoadF16(b), LoadF16(b + 2)};
  }
};

// Q4G32R8: Q4G32's blocks with each group of 8 rows interleaved per
// 32-column block: a 144-byte run of the 8 rows' f16 d, then their 8
// qs[16]. This view reads one row (embed's lookup, and any caller that
// walks rows); the tile kernels (tiles_*.cc) read whole runs instead.
struct Q4G32R8Rows {
  static constexpr int64_t kBlock = 32;
  static constexpr int64_t kRows = 8;
  static constexpr int64_t kRunBytes = 144; // 8 * (2 + 16)
  static constexpr bool kHasBlockScale = true;
  static constexpr bool kHasMin = false;
  static constexpr bool kHasRowScale = false;
  const uint8_t *base;
  int64_t group_bytes; // one group of 8 rows: cols / 32 runs
  explicit Q4G32R8Rows(const WeightMatrix &m)
      : base(static_cast<const uint8_t *>(m.data)),
        group_bytes(m.cols / kBlock * kRunBytes) {}
  float RowScale(int64_t) const { return 1.0f; }
  BlockTerms Decode(int64_t n, int64_t k0, int64_t, float *v) const {
    const uint8_t *run =
        base + (n / kRows) * group_bytes + k0 / kBlock * kRunBytes;
    const int64_t i = n % kRows;
    const uint8_t *qs = run + 2 * kRows + 16 * i;
#pragma omp simd
    for (int j = 0; j < 16; ++j) {
      v[j] = float(int(qs[j] & 15) - 8);
      v[j + 16] = float(int(qs[j] >> 4) - 8);
    }
    return {LoadF16(run + 2 * i), 0.0f};
  }
};

// Writes the f32 weights w[n][k0, k0 + len) of any format (embed's row
// lookup): the block's values with its scale applied, one f32 operation
// per term, exactly the formula of docs/quantization.md.
template <class F>
void DequantizeBlock(const F &f, int64_t n, int64_t k0, int64_t len,
                     float *out) {
  const BlockTerms t = f.Decode(n, k0, len, out);
  if constexpr (F::kHasMin) {
#pragma omp simd
    for (int64_t j = 0; j < len; ++j)
      out[j] = out[j] * t.d + t.m;
  } else if constexpr (F::kHasBlockScale) {
#pragma omp simd
    for (int64_t j = 0; j < len; ++j)
      out[j] *= t.d;
  } else if constexpr (F::kHasRowScale) {
    const float s = f.RowScale(n);
#pragma omp simd
    for (int64_t j = 0; j < len; ++j)
      out[j] *= s;
  }
}

// Calls fn(Rows{matrix}) with the row-block view of any weight dtype
// already checked by IsWeightDType.
template <typename Fn> void DispatchRows(const WeightMatrix &m, Fn &&fn) {
  switch (m.dtype) {
  case GEMMAC_DTYPE_BF16:
    fn(FloatRows<Weight<GEMMAC_DTYPE_BF16>>(m));
    break;
  case GEMMAC_DTYPE_F16:
    fn(FloatRows<Weight<GEMMAC_DTYPE_F16>>(m));
    break;
  case GEMMAC_DTYPE_Q8C:
    fn(Q8CRows(m));
    break;
  case GEMMAC_DTYPE_Q4G32:
    fn(Q4G32Rows(m));
    break;
  case GEMMAC_DTYPE_Q4G128:
    fn(Q4G128Rows(m));
    break;
  case GEMMAC_DTYPE_Q4G32R8:
    fn(Q4G32R8Rows(m));
    break;
  default:
    fn(FloatRows<Weight<GEMMAC_DTYPE_F32>>(m));
    break;
  }
}

} // namespace gemmac::cpu

#endif // GEMMAC_BACKENDS_CPU_NUMERIC_H_
