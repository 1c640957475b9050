// The inner product of a few token rows with a few weight rows, in any
// weight format: the building block of linear over quantized weights and of
// the fused ops (qkv_proj, gated_mlp, final_head).
//
// A kernel walks its output rows in tiles of kRowTile (8) in a
// tbb::parallel_for and, for each tile, calls a TileDotFn per group of up
// to four tokens, so that the four share each decoded weight block. For the
// row-major formats a tile is 8 calls of the format's RowDotFn; for the
// packed Q4G32R8 it is one pass over the tile's contiguous 144-byte runs
// that keeps the 8 rows' sums side by side (the shape an 8-row SIMD kernel
// has). An rms_norm in front of the matrix is folded into the product:
// with g given, the function returns
//   sum_k x[i, k] * (offset + g[k]) * w[n, k]
// and the caller multiplies by the token's 1/rms (RmsInv), which equals
// (rms_norm(x) @ w^T)[i, n] up to f32 rounding without materializing the
// normalized rows.
#ifndef GEMMAC_BACKENDS_CPU_ROWS_H_
#define GEMMAC_BACKENDS_CPU_ROWS_H_

#include <cmath>
#include <cstdint>

#include "numeric.h"

namespace gemmac::cpu {

// Tokens that share one decode of a weight block.
constexpr int64_t kTokenGroup = 4;

// out[i] = sum_k x[i * w.cols + k] * G[k] * w[n, k] for i < nt (1..4), with
// G[k] = offset + g[k] when g is not null, else 1. Summation order: within
// a block of the format (docs/quantization.md's groups; 256 columns for
// f32/bf16/f16/q8c) the products v * G * x are summed in f32, the sum is
// multiplied by the block's scale (Q4G32: d; Q4G128: d, plus m times the
// block's sum of G * x), the blocks are summed in f32 and the total is
// multiplied by the row's scale (Q8C).
using RowDotFn = void (*)(const WeightMatrix &w, int64_t n, const float *x,
                          int64_t nt, const float *g, float offset, float *out);

// The row-dot of a weight dtype already checked by IsWeightDType.
RowDotFn RowDotFor(int32_t dtype, bool folded_norm);

// Output rows of one tile: the row group of the packed formats.
constexpr int64_t kRowTile = 8;

// out[r * kTokenGroup + i] = the RowDotFn product of row n0 + r and token i,
// for r < nr (1..kRowTile) and i < nt (1..kTokenGroup); n0 is a multiple of
// kRowTile. Q4G32R8 computes all 8 rows of the group (they exist: its rows
// are a multiple of 8) and returns the first nr. Its summation order: per
// 32-column block, sum_j (nibble_j - 8) * (x_j * G_j) in f32 (G_j scales
// the 32 x values once for the 8 rows, where the row formats multiply it
// into each decoded weight), times the row's d, summed over blocks in f32:
// the Q4G32 arithmetic up to f32 rounding.
using TileDotFn = void (*)(const WeightMatrix &w, int64_t n0, int64_t nr,
                           const float *x, int64_t nt, const float *g,
                           float offset, float *out);

// The tile-dot of a weight dtype already checked by IsWeightDType.
TileDotFn TileDotFor(int32_t dtype, bool folded_norm);

// Tiles of kRowTile rows covering n rows.
inline int64_t RowTiles(int64_t n) { return (n + kRowTile - 1) / kRowTile; }

// 1 / sqrt(mean(x^2) + eps) over x[0, n): the factor rms_norm applies to a
// row, computed with the same f32 reduction as the rms_norm kernel.
inline float RmsInv(const float *x, int64_t n, float eps) {
  float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
  for (int64_t i = 0; i < n; ++i)
    ss += x[i] * x[i];
  return 1.0f / std::sqrt(ss / float(n) + eps);
}

} // namespace gemmac::cpu

#endif // GEMMAC_BACKENDS_CPU_ROWS_H_
