// RowDotFn for every weight format, with and without a folded norm weight.
// Each block is decoded once into a small stack buffer and then reused by
// up to four tokens; the loops over the block vectorize (`omp simd`).
#include "rows.h"

#include <algorithm>

namespace gemmac::cpu {
namespace {

template <class F, bool kNorm, int NT>
void RowDotN(const F &f, int64_t n, const float *x, int64_t K, const float *g,
             float offset, float *out) {
  alignas(64) float v[F::kBlock];
  // The block's G[k] for the Q4G128 minimum term (sum_j G x); only used
  // with a folded norm, where G is not 1.
  alignas(64) float gv[F::kHasMin && kNorm ? F::kBlock : 1];
  float acc[NT] = {};
  for (int64_t k0 = 0; k0 < K; k0 += F::kBlock) {
    const int64_t len = std::min<int64_t>(F::kBlock, K - k0);
    const BlockTerms bt = f.Decode(n, k0, len, v);
    if constexpr (kNorm) {
      const float *gk = g + k0;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        const float G = offset + gk[j];
        v[j] *= G;
        if constexpr (F::kHasMin)
          gv[j] = G;
      }
    }
    const float *x0 = x + k0;
    const float *x1 = x0 + (NT > 1 ? K : 0);
    const float *x2 = x0 + (NT > 2 ? 2 * K : 0);
    const float *x3 = x0 + (NT > 3 ? 3 * K : 0);
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int64_t j = 0; j < len; ++j) {
      const float w = v[j];
      s0 += w * x0[j];
      if constexpr (NT > 1)
        s1 += w * x1[j];
      if constexpr (NT > 2)
        s2 += w * x2[j];
      if constexpr (NT > 3)
        s3 += w * x3[j];
    }
    const float s[4] = {s0, s1, s2, s3};
    if constexpr (F::kHasMin) {
      float z0 = 0.0f, z1 = 0.0f, z2 = 0.0f, z3 = 0.0f;
#pragma omp simd reduction(+ : z0, z1, z2, z3)
      for (int64_t j = 0; j < len; ++j) {
        float G = 1.0f;
        if constexpr (kNorm)
          G = gv[j];
        z0 += G * x0[j];
        if constexpr (NT > 1)
          z1 += G * x1[j];
        if constexpr (NT > 2)
          z2 += G * x2[j];
        if constexpr (NT > 3)
          z3 += G * x3[j];
      }
      const float z[4] = {z0, z1, z2, z3};
      for (int i = 0; i < NT; ++i)
        acc[i] += bt.d * s[i] + bt.m * z[i];
    } else if constexpr (F::kHasBlockScale) {
      for (int i = 0; i < NT; ++i)
        acc[i] += bt.d * s[i];
    } else {
      for (int i = 0; i < NT; ++i)
        acc[i] += s[i];
    }
  }
  const float rs = f.RowScale(n);
  for (int i = 0; i < NT; ++i)
    out[i] = F::kHasRowScale ? acc[i] * rs : acc[i];
}

template <class F, bool kNorm>
void RowDot(const WeightMatrix &w, int64_t n, const float *x, int64_t nt,
            const float *g, float offset, float *out) {
  const F f(w);
  switch (nt) {
  case 1:
    RowDotN<F, kNorm, 1>(f, n, x, w.cols, g, offset, out);
    break;
  case 2:
    RowDotN<F, kNorm, 2>(f, n, x, w.cols, g, offset, out);
    break;
  case 3:
    RowDotN<F, kNorm, 3>(f, n, x, w.cols, g, offset, out);
    break;
  default:
    RowDotN<F, kNorm, 4>(f, n, x, w.cols, g, offset, out);
    break;
  }
}

template <class F> RowDotFn Pick(bool norm) {
  return norm ? &RowDot<F, true> : &RowDot<F, false>;
}

} // namespace

RowDotFn RowDotFor(int32_t dtype, bool folded_norm) {
  switch (dtype) {
  case GEMMAC_DTYPE_BF16:
    return Pick<FloatRows<Weight<GEMMAC_DTYPE_BF16>>>(folded_norm);
  case GEMMAC_DTYPE_F16:
    return Pick<FloatRows<Weight<GEMMAC_DTYPE_F16>>>(folded_norm);
  case GEMMAC_DTYPE_Q8C:
    return Pick<Q8CRows>(folded_norm);
  case GEMMAC_DTYPE_Q4G32:
    return Pick<Q4G32Rows>(folded_norm);
  case GEMMAC_DTYPE_Q4G128:
    return Pick<Q4G128Rows>(folded_norm);
  default:
    return Pick<FloatRows<Weight<GEMMAC_DTYPE_F32>>>(folded_norm);
  }
}

} // namespace gemmac::cpu
