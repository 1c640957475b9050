// RowDotFn and TileDotFn for every weight format, with and without a folded
// norm weight. Each block is decoded once into a small stack buffer and then
// reused by up to four tokens; the loops over the block vectorize
// (`omp simd`). Q4G32R8's tile kernel (PackedTile) is the hot loop of q4
// modules compiled for the CPU.
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

// A tile of a row-major format: its row-dot, row by row.
template <class F, bool kNorm>
void RowTile(const WeightMatrix &w, int64_t n0, int64_t nr, const float *x,
             int64_t nt, const float *g, float offset, float *out) {
  for (int64_t r = 0; r < nr; ++r)
    RowDot<F, kNorm>(w, n0 + r, x, nt, g, offset, out + r * kTokenGroup);
}

// Q4G32R8: the 8 rows of group n0 / 8 against NT tokens. Each 32-column
// block is one 144-byte run: 8 f16 scales, then 8 x 16 nibble bytes. Per
// run, the 128 nibble bytes become 256 small integers in one pass, then
// each row meets the x slice (scaled by G once per run when a norm is
// folded, not once per row) in a 32-lane product; the 8 x NT sums stay in
// acc across the whole row. Against the row-by-row Q4G32 kernel this reads
// one contiguous stream per tile and shares the x scaling; with SSE2 only
// (no -march) it measured ~10% faster on linear [4096, 1024], T = 1 and 4.
// A row-major vt[j][r] variant (rows as SIMD lanes, no horizontal sums) was
// 2x slower here: its decode gathers bytes 16 apart.
template <bool kNorm, int NT>
void PackedTileN(const Q4G32R8Rows &f, int64_t n0, int64_t nr, const float *x,
                 int64_t K, const float *g, float offset, float *out) {
  constexpr int64_t R = Q4G32R8Rows::kRows;
  constexpr int64_t B = Q4G32R8Rows::kBlock;
  const uint8_t *group = f.base + (n0 / R) * f.group_bytes;
  float acc[R][NT] = {};
  alignas(64) float xg[NT][B];
  for (int64_t k0 = 0; k0 < K; k0 += B) {
    const uint8_t *run = group + k0 / B * Q4G32R8Rows::kRunBytes;
    const float *xs[4] = {};
    for (int i = 0; i < NT; ++i) {
      xs[i] = x + i * K + k0;
      if constexpr (kNorm) {
        const float *gk = g + k0;
#pragma omp simd
        for (int64_t j = 0; j < B; ++j)
          xg[i][j] = xs[i][j] * (offset + gk[j]);
        xs[i] = xg[i];
      }
    }
    const float *x0 = xs[0];
    const float *x1 = NT > 1 ? xs[1] : x0;
    const float *x2 = NT > 2 ? xs[2] : x0;
    const float *x3 = NT > 3 ? xs[3] : x0;
    // The run's 8 x 16 nibble bytes in one loop: 256 small integers.
    alignas(64) float vv[R][B];
    const uint8_t *qall = run + 2 * R;
    for (int64_t r = 0; r < R; ++r) {
#pragma omp simd
      for (int j = 0; j < 16; ++j) {
        vv[r][j] = float(int(qall[16 * r + j] & 15) - 8);
        vv[r][j + 16] = float(int(qall[16 * r + j] >> 4) - 8);
      }
    }
    for (int64_t r = 0; r < R; ++r) {
      const float *v = vv[r];
      float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
      for (int j = 0; j < B; ++j) {
        const float w = v[j];
        s0 += w * x0[j];
        if constexpr (NT > 1)
          s1 += w * x1[j];
        if constexpr (NT > 2)
          s2 += w * x2[j];
        if constexpr (NT > 3)
          s3 += w * x3[j];
      }
      const float d = LoadF16(run + 2 * r);
      const float s[4] = {s0, s1, s2, s3};
      for (int i = 0; i < NT; ++i)
        acc[r][i] += d * s[i];
    }
  }
  for (int64_t r = 0; r < nr; ++r)
    for (int i = 0; i < NT; ++i)
      out[r * kTokenGroup + i] = acc[r][i];
}

template <bool kNorm>
void PackedTile(const WeightMatrix &w, int64_t n0, int64_t nr, const float *x,
                int64_t nt, const float *g, float offset, float *out) {
  const Q4G32R8Rows f(w);
  switch (nt) {
  case 1:
    PackedTileN<kNorm, 1>(f, n0, nr, x, w.cols, g, offset, out);
    break;
  case 2:
    PackedTileN<kNorm, 2>(f, n0, nr, x, w.cols, g, offset, out);
    break;
  case 3:
    PackedTileN<kNorm, 3>(f, n0, nr, x, w.cols, g, offset, out);
    break;
  default:
    PackedTileN<kNorm, 4>(f, n0, nr, x, w.cols, g, offset, out);
    break;
  }
}

template <class F> TileDotFn PickTile(bool norm) {
  return norm ? &RowTile<F, true> : &RowTile<F, false>;
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
  case GEMMAC_DTYPE_Q4G32R8:
    return Pick<Q4G32R8Rows>(folded_norm);
  default:
    return Pick<FloatRows<Weight<GEMMAC_DTYPE_F32>>>(folded_norm);
  }
}

TileDotFn TileDotFor(int32_t dtype, bool folded_norm) {
  switch (dtype) {
  case GEMMAC_DTYPE_BF16:
    return PickTile<FloatRows<Weight<GEMMAC_DTYPE_BF16>>>(folded_norm);
  case GEMMAC_DTYPE_F16:
    return PickTile<FloatRows<Weight<GEMMAC_DTYPE_F16>>>(folded_norm);
  case GEMMAC_DTYPE_Q8C:
    return PickTile<Q8CRows>(folded_norm);
  case GEMMAC_DTYPE_Q4G32:
    return PickTile<Q4G32Rows>(folded_norm);
  case GEMMAC_DTYPE_Q4G128:
    return PickTile<Q4G128Rows>(folded_norm);
  case GEMMAC_DTYPE_Q4G32R8:
    return folded_norm ? &PackedTile<true> : &PackedTile<false>;
  default:
    return PickTile<FloatRows<Weight<GEMMAC_DTYPE_F32>>>(folded_norm);
  }
}

} // namespace gemmac::cpu
