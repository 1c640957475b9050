// The inner product of a few token rows with a few weight rows, in any
// weight format, at every instruction-set level: the building block of
// linear, lm_head and the fused ops (qkv_proj, gated_mlp, final_head).
//
// A matrix kernel first prepares its input rows once (PrepareActs): the f32
// rows, normalized when an rms_norm is folded in front of the matrix, and,
// when a weight is quantized, their Q8 codes. It then walks the output rows
// in tiles of kRowTile (8) in a tbb::parallel_for and, per tile, calls the
// weight format's TileFn once per group of up to kTokenGroup (4) tokens, so
// that the tokens share each decoded weight block.
//
// Arithmetic (docs/quantization.md, "Kernel arithmetic"):
//   - float weights (f32, bf16, f16) meet the f32 rows: sum_k w[n,k] x[t,k]
//     with f32 products and sums in any order;
//   - quantized weights meet the Q8 codes of the rows: per block b of 32
//     columns, d_b = max|x| / 127 and q = round-to-nearest-even(x / d_b)
//     (x * (1 / d_b) in f32; 0 when d_b = 0), as GGUF's Q8_0 with an f32
//     scale. Within a block the integer sum of (weight code) * q is exact;
//     blocks are scaled and summed in f32:
//       Q8C    s_n * sum_b d_b * sum_{k in b} w_q[n,k] q[k]
//       Q4G32  sum_b dw[n,b] d_b * sum_{k in b} (nibble - 8) q[k]
//              (Q4G32R8: the same values in the packed layout)
//       Q4G128 sum_B (dw[n,B] sum_{b in B} d_b sum_{k in b} nibble q[k]
//                     + m[n,B] sum_{b in B} d_b qsum_b)
// So every level computes the same integer block sums, and the levels agree
// to f32 reassociation (avx512's one-token Q8C scales each exact 4-product
// part of a block sum by d_b before adding them: f32 rounding only); the
// scalar level is the reference for the others.
//
// The amx level adds panel kernels (PanelFn) for prefill: 16 weight rows
// against all prepared rows at once on AMX tiles. Quantized weights: the
// same integer block sums again (tdpbssd over one 32-column block at a
// time), scaled as above. BF16 weights: each f32 row x is split into two
// bf16 rows, hi = bf16(x) and lo = bf16(x - hi) (to nearest even), and
// tdpbf16ps multiplies both by the weights: products exact, sums in f32.
// hi + lo is x to within 2^-17 |x|, so this is the one place where a level
// differs from the scalar level by more than f32 reassociation: by at most
// 2^-17 * sum_k |w[n,k] x[t,k]| more.
// Matrix kernels use panels when PanelFor() has one and the rows are many
// enough (UsePanels); the TileFns do the rest.
#ifndef GEMMAC_BACKENDS_CPU_TILES_H_
#define GEMMAC_BACKENDS_CPU_TILES_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#include "cpu_features.h"
#include "numeric.h"

namespace gemmac::cpu {

// Tokens that share one decode of a weight block.
constexpr int64_t kTokenGroup = 4;
// Output rows of one tile: the row group of the packed formats.
constexpr int64_t kRowTile = 8;
// Columns per Q8 activation block.
constexpr int64_t kActBlock = 32;

// Input rows prepared for the TileFns.
struct Acts {
  int64_t T = 0;             // rows
  int64_t K = 0;             // columns
  const float *xf = nullptr; // [T, K]: the rows, normalized if a norm is folded
  // Present when a quantized weight will read them (else null):
  int64_t qstride = 0;         // K rounded up to 64; codes past K are 0
  const int8_t *xq = nullptr;  // [T, qstride] Q8 codes
  const float *xd = nullptr;   // [T, qstride / 32] block scales d_b
  const int32_t *xs = nullptr; // [T, qstride / 32] block sums of codes
  // Rows of xq, xd and xs: T, or T rounded up to kPanelRows (zero codes,
  // zero scales) when prepared for the panel kernels.
  int64_t rows = 0;
  // Prepared for the panel kernels: the same codes as one contiguous
  // 16 x 32 tile per (16 rows, 32-column block), [rows / 16][qstride / 32]
  // [16][32], so that a tile load reads 512 consecutive bytes; and the
  // block scales the same way, [rows / 16][qstride / 32][16].
  const int8_t *xqp = nullptr;
  const float *xdp = nullptr;
  const float *xep = nullptr; // xd * xs (f32), the same layout as xdp
  // Prepared for the bf16 panel kernel: xf split into bf16 hi and lo parts
  // (above), laid out per (32-column block, 16 rows) as the 16 x 32 hi tile
  // then the lo tile, contiguous: [K / 32][rows / 16][2][16][32] (K a
  // multiple of 32), so that a block's tiles for consecutive rows follow
  // each other.
  const uint16_t *xbp = nullptr;
};

// out[r * kTokenGroup + i] = the product above of weight row n0 + r and
// prepared row t + i, for r < nr (1..kRowTile) and i < nt (1..kTokenGroup).
// n0 is a multiple of kRowTile; Q4G32R8 computes all 8 rows of its group
// (they exist: its rows are a multiple of 8) and returns the first nr.
using TileFn = void (*)(const WeightMatrix &w, int64_t n0, int64_t nr,
                        const Acts &a, int64_t t, int64_t nt, float *out);

// The TileFns of one level; a null entry falls back to the level below.
struct TileKernels {
  TileFn f32 = nullptr;
  TileFn bf16 = nullptr;
  TileFn f16 = nullptr;
  TileFn q8c = nullptr;
  TileFn q4g32 = nullptr;
  TileFn q4g128 = nullptr;
  TileFn q4g32r8 = nullptr;
};

// Each level's table (tiles_scalar.cc, tiles_avx2.cc, tiles_avx512.cc).
// Only call a level's kernels when CanRun(level).
const TileKernels &ScalarTiles();
const TileKernels &Avx2Tiles();
const TileKernels &Avx512Tiles();

// The TileFn of a weight dtype (already checked by IsWeightDType) at `isa`,
// or at ActiveIsa().
TileFn TileFor(int32_t dtype, Isa isa);
TileFn TileFor(int32_t dtype);

// Weight rows of one panel: the 16 int32 columns of an AMX tile.
constexpr int64_t kPanelRows = 16;

// y[t * ldy + r] = the product above of weight row n0 + r and prepared row
// t, for r < nr (1..kPanelRows) and every t < a.T; nothing else of y is
// written. n0 is a multiple of kPanelRows; a must have been prepared with
// panel rows (PrepareActs).
using PanelFn = void (*)(const WeightMatrix &w, int64_t n0, int64_t nr,
                         const Acts &a, float *y, int64_t ldy);

// The amx level's panel kernels (tiles_amx.cc): Q8C, Q4G32, Q4G32R8,
// Q4G128 and BF16 with cols a multiple of 32; null entries elsewhere. Only call
// them when CanRun(Isa::kAmx).
struct PanelKernels {
  PanelFn q8c = nullptr;
  PanelFn q4g32 = nullptr;
  PanelFn q4g32r8 = nullptr;
  PanelFn q4g128 = nullptr;
  PanelFn bf16 = nullptr;
};

// What a panel kernel reads of the prepared rows (PrepareActs' `panel`):
// the Q8 codes (quantized weights) or the bf16 rows (BF16 weights).
enum PanelInput : int { kPanelNone = 0, kPanelCodes = 1, kPanelBf16 = 2 };
int PanelInputOf(int32_t dtype);
const PanelKernels &AmxPanels();

// The PanelFn of a weight matrix at `isa` (or ActiveIsa()), or null when
// the level has none for its dtype and shape (the TileFns serve it then).
PanelFn PanelFor(const WeightMatrix &w, Isa isa);
PanelFn PanelFor(const WeightMatrix &w);

// Prepared rows from which a matrix kernel takes the panel kernels of a
// weight dtype: below, a panel wastes most of a tile's 16 rows and repacks
// the weights for little reuse. Where the panels overtake the avx512 tiles
// (one thread, hot weights, K 1152): bf16 at about 5 rows (1.6x at 8), Q8C
// at about 8 (1.8x at 12), the 4-bit formats at about 12 (1.3x at 16).
inline int64_t PanelMinTokens(int32_t dtype) {
  return dtype == GEMMAC_DTYPE_BF16 ? 8 : dtype == GEMMAC_DTYPE_Q8C ? 12 : 16;
}
inline bool UsePanels(PanelFn panel, int32_t dtype, int64_t T) {
  return panel != nullptr && T >= PanelMinTokens(dtype);
}

// GEMMAC_CPU_F32_ACTS=1 (read once per process): quantized weights are
// decoded to f32 and meet the f32 rows, as the float formats do (weights-
// only quantization, scalar code, slow). For checking a module's weights
// against an f32 copy of their values; not for production.
bool F32ActsMode();

// Whether a weight dtype reads the Q8 codes (every quantized dtype, unless
// F32ActsMode()).
bool NeedsCodes(int32_t dtype);

// An allocator of cache-line (64-byte) aligned storage: a row of a tile
// load or a vector load that straddles two lines costs two.
template <class T> struct LineAligned {
  using value_type = T;
  LineAligned() = default;
  template <class U> LineAligned(const LineAligned<U> &) {}
  T *allocate(size_t n) {
    return static_cast<T *>(
        ::operator new(n * sizeof(T), std::align_val_t(64)));
  }
  void deallocate(T *p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U> bool operator==(const LineAligned<U> &) const {
    return true;
  }
  template <class U> bool operator!=(const LineAligned<U> &) const {
    return false;
  }
};
template <class T> using LineVector = std::vector<T, LineAligned<T>>;

// Backing store of prepared rows; grows to the largest request and is
// reused (one per launching thread: see ThreadActsBuffer). Line-aligned:
// the panel kernels load their tiles from it.
struct ActsBuffer {
  LineVector<float> xf;
  LineVector<int8_t> xq;
  LineVector<int8_t> xqp;
  LineVector<float> xd;
  LineVector<float> xdp;
  LineVector<float> xep;
  LineVector<int32_t> xs;
  LineVector<uint16_t> xbp;
};
ActsBuffer &ThreadActsBuffer();

// Prepares rows [0, T) of x [T, K]. With norm set, the f32 rows are
// rms_norm(x) * (offset + norm) (the rms_norm op's arithmetic); without it
// xf is x itself (no copy). With codes set, also their Q8 codes. `panel`
// (PanelInput bits) adds what the panel kernels read, with the rows padded
// to a multiple of kPanelRows: kPanelCodes (with codes set) the codes' tile
// layout, kPanelBf16 the bf16 rows (K a multiple of 32). Runs in parallel
// over tokens; buf must outlive the returned Acts.
Acts PrepareActs(const float *x, int64_t T, int64_t K, const float *norm,
                 float offset, float eps, bool codes, ActsBuffer &buf,
                 int panel = kPanelNone);

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

#endif // GEMMAC_BACKENDS_CPU_TILES_H_
