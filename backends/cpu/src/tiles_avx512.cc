// The avx512 level of tiles.h: AVX-512 F/BW/VL/DQ + VNNI TileFns for every
// weight format. This file is compiled with the build's baseline flags; each
// function below enables the instructions it uses with a target attribute
// (GEMMAC_AVX512), and everything but the table accessor at the bottom has
// internal linkage, so no AVX-512 code can be picked by the linker for a
// baseline caller. Only call these kernels when CanRun(Isa::kAvx512).
//
// Float weights: 16-lane f32 FMAs, one accumulator per (row, token); BF16
// splits 32 weights into even and odd columns without a widening shuffle.
//
// Quantized weights: the integer block sums are exact, as tiles.h requires.
// vpdpbusd multiplies unsigned bytes by signed bytes and adds each group of
// 4 products into a 32-bit lane, so with u the stored nibble or byte and q
// the activation codes
//   Q4G32, Q4G32R8  sum (u - 8) q = dpbusd(u, q) - 8 qsum_b
//   Q8C             sum w q       = dpbusd(w + 128, q) - 128 qsum_b
//   Q4G128          sum u q       = dpbusd(u, q)
// with qsum_b = Acts::xs. The weight bytes are arranged (once per step,
// shared by the NT <= 4 tokens) so that every 64-bit lane holds 8 bytes of
// one row at the same column offset: rows a and a + 4 in 128-bit lane a.
// Then each vpdpbusd meets a plain 64-bit broadcast of 8 codes, four of
// them cover a 32-column block of 8 rows in one accumulator whose dword
// pairs are a row's two partial sums, and two blocks reduce in three
// instructions (PairSums) to the exact int32 block sums, which are then
// converted to f32 and scaled.
//
// One token (decode) reads a tile's rows one after another instead, as one
// sequential stream (FloatRowsSequential, Q8CRowsSequential); there Q8C
// meets |w| with the codes negated where w < 0, which needs no correction.
#include "tiles.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

// GCC 12's AVX-512 headers start some intrinsics from a self-initialized
// "undefined" vector, which -Wall reports as uninitialized in every caller.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace gemmac::cpu {
namespace {

// Exactly the features DetectCpu() checks for the level (no BMI: it does
// not check it).
#define GEMMAC_AVX512                                                          \
  __attribute__((                                                              \
      target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define GEMMAC_AVX512_INLINE GEMMAC_AVX512 inline __attribute__((always_inline))
// The loops over rows, tokens and vectors have constant trip counts; they
// must be unrolled for their vectors to live in registers (-O2 does not).
#define GEMMAC_UNROLL _Pragma("GCC unroll 16")

// ---------------------------------------------------------------------------
// Float weights (f32, bf16, f16) against the f32 rows.

// Loads 16 weights as f32; Masked loads the first `m` lanes, zero elsewhere,
// and reads nothing past them.
struct LoadF32x16 {
  using T = float;
  GEMMAC_AVX512_INLINE static __m512 Full(const float *p) {
    return _mm512_loadu_ps(p);
  }
  GEMMAC_AVX512_INLINE static __m512 Masked(const float *p, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, p);
  }
};
struct LoadBf16x16 {
  using T = uint16_t;
  GEMMAC_AVX512_INLINE static __m512 Widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  GEMMAC_AVX512_INLINE static __m512 Full(const uint16_t *p) {
    return Widen(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
  }
  GEMMAC_AVX512_INLINE static __m512 Masked(const uint16_t *p, __mmask16 m) {
    return Widen(_mm256_maskz_loadu_epi16(m, p));
  }
};
struct LoadF16x16 {
  using T = uint16_t;
  GEMMAC_AVX512_INLINE static __m512 Full(const uint16_t *p) {
    return _mm512_cvtph_ps(
        _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
  }
  GEMMAC_AVX512_INLINE static __m512 Masked(const uint16_t *p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
  }
};

// RB weight rows against NT tokens: RB * NT accumulators of 16 lanes, one
// f32 reduction per (row, token) at the end.
template <class L, int NT, int RB>
GEMMAC_AVX512 void FloatRowsNT(const typename L::T *const *rows,
                               const float *const *x, int64_t K, float *out) {
  // The same rows of the next tile, fetched while this one computes: a
  // tile's 8 rows are 8 short streams that the hardware prefetchers pick
  // up too late. (Prefetches never fault, past the matrix either.)
  const int64_t ahead = kRowTile * K;
  __m512 acc[RB][NT];
  GEMMAC_UNROLL
  for (int r = 0; r < RB; ++r)
    GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i)
    acc[r][i] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 xv[NT];
    GEMMAC_UNROLL
    for (int i = 0; i < NT; ++i)
      xv[i] = _mm512_loadu_ps(x[i] + k);
    GEMMAC_UNROLL
    for (int r = 0; r < RB; ++r) {
      _mm_prefetch(reinterpret_cast<const char *>(rows[r] + k + ahead),
                   _MM_HINT_T0);
      const __m512 wv = L::Full(rows[r] + k);
      GEMMAC_UNROLL
      for (int i = 0; i < NT; ++i)
        acc[r][i] = _mm512_fmadd_ps(wv, xv[i], acc[r][i]);
    }
  }
  if (k < K) {
    const __mmask16 m = __mmask16((1u << (K - k)) - 1u);
    __m512 xv[NT];
    GEMMAC_UNROLL
    for (int i = 0; i < NT; ++i)
      xv[i] = _mm512_maskz_loadu_ps(m, x[i] + k);
    GEMMAC_UNROLL
    for (int r = 0; r < RB; ++r) {
      const __m512 wv = L::Masked(rows[r] + k, m);
      GEMMAC_UNROLL
      for (int i = 0; i < NT; ++i)
        acc[r][i] = _mm512_fmadd_ps(wv, xv[i], acc[r][i]);
    }
  }
  GEMMAC_UNROLL
  for (int r = 0; r < RB; ++r)
    GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i)
    out[r * kTokenGroup + i] = _mm512_reduce_add_ps(acc[r][i]);
}

// BF16 rows against NT tokens, 32 columns per step without a widening
// shuffle: the 32-bit lane j of 32 loaded weights holds w[2j] (low half) and
// w[2j + 1] (high half), so a shift and a mask make them two f32 vectors,
// the even and the odd columns. The tokens' 32 columns are split the same
// way once per step (two permutes, shared by the RB rows). The products are
// the same f32 products as FloatRowsNT's; only the order of the sums
// differs.
template <int NT, int RB>
GEMMAC_AVX512_INLINE void
Bf16Step(const uint16_t *const *rows, const float *const *x, int64_t k,
         __mmask32 mw, const char *const *prefetch, __m512 (&acc)[RB][NT]) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12,
                                        10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13,
                                       11, 9, 7, 5, 3, 1);
  const __m512i hi = _mm512_set1_epi32(int32_t(0xFFFF0000u));
  __m512 xe[NT], xo[NT];
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i) {
    const __m512 a = _mm512_maskz_loadu_ps(__mmask16(mw), x[i] + k);
    const __m512 b = _mm512_maskz_loadu_ps(__mmask16(mw >> 16), x[i] + k + 16);
    xe[i] = _mm512_permutex2var_ps(a, even, b);
    xo[i] = _mm512_permutex2var_ps(a, odd, b);
  }
  GEMMAC_UNROLL
  for (int r = 0; r < RB; ++r) {
    if (prefetch != nullptr)
      _mm_prefetch(prefetch[r] + 2 * k, _MM_HINT_T0);
    const __m512i v = _mm512_maskz_loadu_epi16(mw, rows[r] + k);
    const __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    const __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(v, hi));
    GEMMAC_UNROLL
    for (int i = 0; i < NT; ++i)
      acc[r][i] =
          _mm512_fmadd_ps(wo, xo[i], _mm512_fmadd_ps(we, xe[i], acc[r][i]));
  }
}

// BF16 rows against NT tokens, 32 columns per step without a widening
// shuffle: the 32-bit lane j of 32 loaded weights holds w[2j] (low half) and
// w[2j + 1] (high half), so a shift and a mask make them two f32 vectors,
// the even and the odd columns. The tokens' 32 columns are split the same
// way once per step (two permutes, shared by the RB rows). The products are
// the same f32 products as FloatRowsNT's; only the order of the sums
// differs.
template <int NT, int RB>
GEMMAC_AVX512 void Bf16RowsNT(const uint16_t *const *rows,
                              const float *const *x, int64_t K, float *out) {
  // The same rows of the next tile (see FloatRowsNT).
  const char *next[RB];
  GEMMAC_UNROLL
  for (int r = 0; r < RB; ++r)
    next[r] = reinterpret_cast<const char *>(rows[r] + kRowTile * K);
  __m512 acc[RB][NT];
  GEMMAC_UNROLL
  for (int r = 0; r < RB; ++r)
    GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i)
    acc[r][i] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32)
    Bf16Step<NT, RB>(rows, x, k, ~__mmask32(0), next, acc);
  if (k < K) // the last 1..31 columns
    Bf16Step<NT, RB>(rows, x, k, (__mmask32(1) << (K - k)) - 1u, nullptr, acc);
  GEMMAC_UNROLL
  for (int r = 0; r < RB; ++r)
    GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i)
    out[r * kTokenGroup + i] = _mm512_reduce_add_ps(acc[r][i]);
}

// How far ahead of its loads a kernel that reads one sequential stream
// (the one-token rows below, the Q4G32R8 groups) prefetches: 4 KB measured
// best on Zen 5 (q8 decode +6% over no prefetch; 2 KB and 8 KB in between).
constexpr int64_t kStreamAhead = 4096;

// One token (decode): the tile's rows one after another. They are adjacent
// in memory, so the tile is one sequential stream: on Zen 5 eight
// interleaved row streams read at 70-85% of the rate of one stream (the
// prefetchers follow one stream well and eight poorly), while one stream
// runs at the probe's rate. The token's row stays in L1 across the rows.
template <class L>
GEMMAC_AVX512 void FloatRowsSequential(const typename L::T *row, int64_t nr,
                                       const float *x, int64_t K, float *out) {
  for (int64_t r = 0; r < nr; ++r, row += K) {
    __m512 acc[4];
    GEMMAC_UNROLL
    for (int j = 0; j < 4; ++j)
      acc[j] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 64 <= K; k += 64) {
      GEMMAC_UNROLL
      for (int j = 0; j < 4; ++j) {
        if (j * 16 * sizeof(typename L::T) % 64 == 0)
          _mm_prefetch(reinterpret_cast<const char *>(row + k + 16 * j) +
                           kStreamAhead,
                       _MM_HINT_T0);
        acc[j] = _mm512_fmadd_ps(L::Full(row + k + 16 * j),
                                 _mm512_loadu_ps(x + k + 16 * j), acc[j]);
      }
    }
    for (; k + 16 <= K; k += 16)
      acc[0] =
          _mm512_fmadd_ps(L::Full(row + k), _mm512_loadu_ps(x + k), acc[0]);
    if (k < K) {
      const __mmask16 m = __mmask16((1u << (K - k)) - 1u);
      acc[1] = _mm512_fmadd_ps(L::Masked(row + k, m),
                               _mm512_maskz_loadu_ps(m, x + k), acc[1]);
    }
    out[r * kTokenGroup] = _mm512_reduce_add_ps(_mm512_add_ps(
        _mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  }
}

template <class L, int NT>
GEMMAC_AVX512 void FloatTile(const WeightMatrix &w, int64_t n0, int64_t nr,
                             const Acts &a, int64_t t, float *out) {
  using T = typename L::T;
  const int64_t K = a.K;
  const T *base = static_cast<const T *>(w.data);
  if constexpr (NT == 1)
    return FloatRowsSequential<L>(base + n0 * K, nr, a.xf + t * K, K, out);
  const float *x[NT];
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i)
    x[i] = a.xf + (t + i) * K;
  // Rows past nr repeat row nr - 1 (they may not exist) and are dropped.
  const T *rows[kRowTile];
  GEMMAC_UNROLL
  for (int r = 0; r < kRowTile; ++r)
    rows[r] = base + (n0 + std::min<int64_t>(r, nr - 1)) * K;
  // Up to 2 tokens, the 8 rows in one pass (16 accumulators); 3 or 4
  // tokens, two passes of 4 rows (the rows of the second pass stream from
  // memory, the tokens are reread from cache).
  constexpr int RB = NT <= 2 ? 8 : 4;
  float tmp[kRowTile * kTokenGroup];
  for (int r0 = 0; r0 < nr; r0 += RB) {
    if constexpr (std::is_same_v<L, LoadBf16x16>)
      Bf16RowsNT<NT, RB>(rows + r0, x, K, tmp + r0 * kTokenGroup);
    else
      FloatRowsNT<L, NT, RB>(rows + r0, x, K, tmp + r0 * kTokenGroup);
  }
  for (int64_t r = 0; r < nr; ++r)
    GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i)
    out[r * kTokenGroup + i] = tmp[r * kTokenGroup + i];
}

// ---------------------------------------------------------------------------
// Integer building blocks of the quantized formats.
//
// Lane layout of a step's block sums (PairSums): 128-bit lane a holds
// (row a, block b), (row a + 4, block b), (row a, b + 1), (row a + 4, b + 1).

// The lanes of the first block of a step.
constexpr __mmask16 kFirstBlock = 0x3333;

// 8 codes broadcast to every 64-bit lane.
GEMMAC_AVX512_INLINE __m512i Bcast8(const int8_t *q) {
  int64_t v;
  std::memcpy(&v, q, 8);
  return _mm512_set1_epi64(v);
}

// sum_c dpbusd(n[c], codes q[8c, 8c + 8)) for c < 4: 32 columns of 8 rows.
// One dependent chain of 4 with 3 or 4 tokens (enough chains in flight),
// two chains of 2 with fewer.
template <int NT>
GEMMAC_AVX512_INLINE __m512i Dot32(const __m512i *n, const int8_t *q) {
  if constexpr (NT <= 2) {
    const __m512i e = _mm512_dpbusd_epi32(
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), n[0], Bcast8(q)), n[1],
        Bcast8(q + 8));
    const __m512i o = _mm512_dpbusd_epi32(
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), n[2], Bcast8(q + 16)), n[3],
        Bcast8(q + 24));
    return _mm512_add_epi32(e, o);
  } else {
    __m512i s = _mm512_setzero_si512();
    GEMMAC_UNROLL
    for (int c = 0; c < 4; ++c)
      s = _mm512_dpbusd_epi32(s, n[c], Bcast8(q + 8 * c));
    return s;
  }
}

// The exact block sums of two Dot32 results (blocks b, b + 1): the sums of
// their dword pairs, in the step layout.
GEMMAC_AVX512_INLINE __m512i PairSums(__m512i A, __m512i B) {
  const __m512 a = _mm512_castsi512_ps(A), b = _mm512_castsi512_ps(B);
  return _mm512_add_epi32(
      _mm512_castps_si512(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))),
      _mm512_castps_si512(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))));
}

// The 32-bit values p[0], p[1] spread in the step layout ([v0, v0, v1, v1]
// per 128 bits); without `two`, p[1] is not read and its lanes are 0.
GEMMAC_AVX512_INLINE __m512i Pair32(const void *p, bool two) {
  if (two) {
    int64_t v;
    std::memcpy(&v, p, 8);
    const __m512i b = _mm512_set1_epi64(v);
    return _mm512_unpacklo_epi32(b, b);
  }
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_maskz_set1_epi32(kFirstBlock, v);
}

// z[c] (c < 8), 128-bit lane a = qword c of rows a and a + 4, from the 8
// rows' 64-byte vectors: an 8 x 8 transpose of qwords (24 shuffles).
GEMMAC_AVX512_INLINE void TransposeQwords(const __m512i *rows, __m512i *z) {
  __m512i p[4], q[4];
  GEMMAC_UNROLL
  for (int a = 0; a < 4; ++a) {
    p[a] = _mm512_unpacklo_epi64(rows[a], rows[a + 4]); // qwords 0, 2, 4, 6
    q[a] = _mm512_unpackhi_epi64(rows[a], rows[a + 4]); // qwords 1, 3, 5, 7
  }
  // 4 x 4 transposes of 128-bit lanes: lane L of p[a] -> lane a of z[2L].
  const __m512i p01l = _mm512_shuffle_i64x2(p[0], p[1], 0x44);
  const __m512i p01h = _mm512_shuffle_i64x2(p[0], p[1], 0xEE);
  const __m512i p23l = _mm512_shuffle_i64x2(p[2], p[3], 0x44);
  const __m512i p23h = _mm512_shuffle_i64x2(p[2], p[3], 0xEE);
  const __m512i q01l = _mm512_shuffle_i64x2(q[0], q[1], 0x44);
  const __m512i q01h = _mm512_shuffle_i64x2(q[0], q[1], 0xEE);
  const __m512i q23l = _mm512_shuffle_i64x2(q[2], q[3], 0x44);
  const __m512i q23h = _mm512_shuffle_i64x2(q[2], q[3], 0xEE);
  z[0] = _mm512_shuffle_i64x2(p01l, p23l, 0x88);
  z[2] = _mm512_shuffle_i64x2(p01l, p23l, 0xDD);
  z[4] = _mm512_shuffle_i64x2(p01h, p23h, 0x88);
  z[6] = _mm512_shuffle_i64x2(p01h, p23h, 0xDD);
  z[1] = _mm512_shuffle_i64x2(q01l, q23l, 0x88);
  z[3] = _mm512_shuffle_i64x2(q01l, q23l, 0xDD);
  z[5] = _mm512_shuffle_i64x2(q01h, q23h, 0x88);
  z[7] = _mm512_shuffle_i64x2(q01h, q23h, 0xDD);
}

// Out rows of a step-layout accumulator: row a is lanes 4a and 4a + 2, row
// a + 4 lanes 4a + 1 and 4a + 3 (the two blocks of a step).
GEMMAC_AVX512_INLINE void StoreRows(__m512 acc, int64_t nr, int i,
                                    const float *scale, float *out) {
  alignas(64) float v[16];
  _mm512_store_ps(v, _mm512_add_ps(acc, _mm512_permute_ps(acc, 0x4E)));
  for (int64_t r = 0; r < nr; ++r) {
    const float s = v[r < 4 ? 4 * r : 4 * (r - 4) + 1];
    out[r * kTokenGroup + i] = scale != nullptr ? s * scale[r] : s;
  }
}

// ---------------------------------------------------------------------------
// Q4G32 and Q4G32R8: nibble blocks of 32 columns, two blocks per step.
//
// A block's 8 rows x 16 nibble bytes arrive as two vectors of 4 rows (one
// row per 128-bit lane: rows 0-3, rows 4-7); their 64-bit unpacks put rows
// a and a + 4 in lane a, bytes 0-7 (u) or 8-15 (v), whose low nibbles are
// elements 0-7 / 8-15 and high nibbles 16-23 / 24-31.

// The weights of a step: w[h][p] = rows 4h..4h+3 of block b + p, one row
// per 128-bit lane; dw the f32 scales in the step layout.
struct Q4Step {
  __m512i w[2][2];
  __m512 dw;
};

// Q4G32R8's scales [b r0..r7, b+1 r0..r7] -> the step layout.
GEMMAC_AVX512_INLINE __m512i R8ScaleOrder() {
  return _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
}

// Q4G32R8: the 144-byte runs of the group, one per block.
struct R8Fetch {
  const uint8_t *group;
  GEMMAC_AVX512_INLINE void Pair(int64_t b, Q4Step &s) const {
    const uint8_t *r0 = group + b * 144, *r1 = r0 + 144;
    // kStreamAhead in the group's one stream: ~1.5x faster with 4 tokens
    // streaming from memory (the hardware prefetcher alone falls behind).
    // At T=1 on Zen 5, q4 decode: 4 KB +3% over 8 KB, +20% over none;
    // prefetcht1 (to L2) -5%.
    GEMMAC_UNROLL
    for (int l = 0; l < 5; ++l)
      _mm_prefetch(reinterpret_cast<const char *>(r0) + kStreamAhead + 64 * l,
                   _MM_HINT_T0);
    s.w[0][0] = _mm512_loadu_si512(r0 + 16);
    s.w[1][0] = _mm512_loadu_si512(r0 + 80);
    s.w[0][1] = _mm512_loadu_si512(r1 + 16);
    s.w[1][1] = _mm512_loadu_si512(r1 + 80);
    const __m256i h = _mm256_inserti128_si256(
        _mm256_castsi128_si256(
            _mm_loadu_si128(reinterpret_cast<const __m128i *>(r0))),
        _mm_loadu_si128(reinterpret_cast<const __m128i *>(r1)), 1);
    s.dw = _mm512_permutexvar_ps(R8ScaleOrder(), _mm512_cvtph_ps(h));
  }
  // The last block of an odd count: block b + 1 is zero weights, scale 0.
  GEMMAC_AVX512_INLINE void Single(int64_t b, Q4Step &s) const {
    const uint8_t *r0 = group + b * 144;
    s.w[0][0] = _mm512_loadu_si512(r0 + 16);
    s.w[1][0] = _mm512_loadu_si512(r0 + 80);
    s.w[0][1] = _mm512_setzero_si512();
    s.w[1][1] = _mm512_setzero_si512();
    const __m256i h = _mm256_castsi128_si256(
        _mm_loadu_si128(reinterpret_cast<const __m128i *>(r0)));
    s.dw = _mm512_maskz_permutexvar_ps(kFirstBlock, R8ScaleOrder(),
                                       _mm512_cvtph_ps(h));
  }
};

// Q4G32: 18-byte blocks {f16 d, qs[16]} along each row; rows past nr repeat
// row nr - 1.
struct Q4G32Fetch {
  const uint8_t *row[kRowTile];
  int64_t ahead; // 8 rows
  GEMMAC_AVX512_INLINE static __m512i Rows4(const uint8_t *const *r,
                                            int64_t off) {
    __m512i v = _mm512_castsi128_si512(
        _mm_loadu_si128(reinterpret_cast<const __m128i *>(r[0] + off)));
    v = _mm512_inserti32x4(
        v, _mm_loadu_si128(reinterpret_cast<const __m128i *>(r[1] + off)), 1);
    v = _mm512_inserti32x4(
        v, _mm_loadu_si128(reinterpret_cast<const __m128i *>(r[2] + off)), 2);
    v = _mm512_inserti32x4(
        v, _mm_loadu_si128(reinterpret_cast<const __m128i *>(r[3] + off)), 3);
    return v;
  }
  // The 16 f16 d of a step in the step layout, put together in integer
  // registers (a 16-lane gather was 40% slower overall, nt = 1).
  GEMMAC_AVX512_INLINE __m256i Scales(int64_t o, bool two) const {
    uint64_t q[4];
    GEMMAC_UNROLL
    for (int a = 0; a < 4; ++a) {
      uint16_t d[4] = {};
      std::memcpy(&d[0], row[a] + o, 2);
      std::memcpy(&d[1], row[a + 4] + o, 2);
      if (two) {
        std::memcpy(&d[2], row[a] + o + 18, 2);
        std::memcpy(&d[3], row[a + 4] + o + 18, 2);
      }
      q[a] = uint64_t(d[0]) | uint64_t(d[1]) << 16 | uint64_t(d[2]) << 32 |
             uint64_t(d[3]) << 48;
    }
    return _mm256_set_epi64x(int64_t(q[3]), int64_t(q[2]), int64_t(q[1]),
                             int64_t(q[0]));
  }
  GEMMAC_AVX512_INLINE void Pair(int64_t b, Q4Step &s) const {
    const int64_t o = b * 18;
    // The same 36 bytes of the next tile's rows (see FloatRowsNT).
    GEMMAC_UNROLL
    for (int r = 0; r < kRowTile; ++r)
      _mm_prefetch(reinterpret_cast<const char *>(row[r] + ahead + o + 35),
                   _MM_HINT_T0);
    s.w[0][0] = Rows4(row, o + 2);
    s.w[1][0] = Rows4(row + 4, o + 2);
    s.w[0][1] = Rows4(row, o + 20);
    s.w[1][1] = Rows4(row + 4, o + 20);
    s.dw = _mm512_cvtph_ps(Scales(o, true));
  }
  GEMMAC_AVX512_INLINE void Single(int64_t b, Q4Step &s) const {
    const int64_t o = b * 18;
    s.w[0][0] = Rows4(row, o + 2);
    s.w[1][0] = Rows4(row + 4, o + 2);
    s.w[0][1] = _mm512_setzero_si512();
    s.w[1][1] = _mm512_setzero_si512();
    s.dw = _mm512_cvtph_ps(Scales(o, false));
  }
};

template <int NT, bool kSingle>
GEMMAC_AVX512_INLINE void
Q4Accumulate(const Q4Step &s, int64_t b, const int8_t *const *xq,
             const float *const *xd, const int32_t *const *xs, __m512 *acc) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  // n[p][c]: elements 8c..8c+7 of block b + p.
  __m512i n[2][4];
  GEMMAC_UNROLL
  for (int p = 0; p < (kSingle ? 1 : 2); ++p) {
    const __m512i u = _mm512_unpacklo_epi64(s.w[0][p], s.w[1][p]);
    const __m512i v = _mm512_unpackhi_epi64(s.w[0][p], s.w[1][p]);
    n[p][0] = _mm512_and_si512(u, m4);
    n[p][1] = _mm512_and_si512(v, m4);
    n[p][2] = _mm512_and_si512(_mm512_srli_epi16(u, 4), m4);
    n[p][3] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
  }
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i) {
    const int8_t *q = xq[i] + b * kActBlock;
    const __m512i d0 = Dot32<NT>(n[0], q);
    const __m512i d1 =
        kSingle ? _mm512_setzero_si512() : Dot32<NT>(n[1], q + kActBlock);
    const __m512i sum = _mm512_sub_epi32(
        PairSums(d0, d1), _mm512_slli_epi32(Pair32(xs[i] + b, !kSingle), 3));
    const __m512 d = _mm512_castsi512_ps(Pair32(xd[i] + b, !kSingle));
    acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(s.dw, d),
                             acc[i]);
  }
}

template <int NT, class Fetch>
GEMMAC_AVX512 void Q4Tile(const Fetch &f, int64_t nr, const Acts &a, int64_t t,
                          float *out) {
  const int64_t nb = a.K / kActBlock, qb = a.qstride / kActBlock;
  const int8_t *xq[NT];
  const float *xd[NT];
  const int32_t *xs[NT];
  __m512 acc[NT];
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i) {
    xq[i] = a.xq + (t + i) * a.qstride;
    xd[i] = a.xd + (t + i) * qb;
    xs[i] = a.xs + (t + i) * qb;
    acc[i] = _mm512_setzero_ps();
  }
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    Q4Step s;
    f.Pair(b, s);
    Q4Accumulate<NT, false>(s, b, xq, xd, xs, acc);
  }
  if (b < nb) {
    Q4Step s;
    f.Single(b, s);
    Q4Accumulate<NT, true>(s, b, xq, xd, xs, acc);
  }
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i)
    StoreRows(acc[i], nr, i, nullptr, out);
}

template <int NT>
GEMMAC_AVX512 void Q4G32R8TileN(const WeightMatrix &w, int64_t n0, int64_t nr,
                                const Acts &a, int64_t t, float *out) {
  R8Fetch f;
  f.group = static_cast<const uint8_t *>(w.data) + (n0 / 8) * (a.K / 32 * 144);
  Q4Tile<NT>(f, nr, a, t, out);
}

template <int NT>
GEMMAC_AVX512 void Q4G32TileN(const WeightMatrix &w, int64_t n0, int64_t nr,
                              const Acts &a, int64_t t, float *out) {
  Q4G32Fetch f;
  const int64_t row_bytes = a.K / 32 * 18;
  const uint8_t *base = static_cast<const uint8_t *>(w.data) + n0 * row_bytes;
  f.ahead = kRowTile * row_bytes;
  for (int r = 0; r < kRowTile; ++r)
    f.row[r] = base + std::min<int64_t>(r, nr - 1) * row_bytes;
  Q4Tile<NT>(f, nr, a, t, out);
}

// ---------------------------------------------------------------------------
// Q8C: row-major int8 rows, 64 columns (two blocks) per step, any K. The
// 8 rows' 64 bytes are transposed to the qword layout (with 2 to 4 tokens;
// one token reads the rows in order, below); the last step reads only the
// rows' remaining bytes (masked) and only the blocks that exist.

// The f32 products of the 64 columns at k of one Q8C row and one token,
// scaled by their blocks' d_b: bytes past K read as 0 (m), codes past K are
// 0 (qstride pads them), and xd has an entry for every block of qstride.
GEMMAC_AVX512_INLINE __m512 Q8CStep(const int8_t *row, const int8_t *xq,
                                    const float *xd, int64_t k, __mmask64 m) {
  const __m512i zero = _mm512_setzero_si512();
  _mm_prefetch(reinterpret_cast<const char *>(row + k) + kStreamAhead,
               _MM_HINT_T0);
  const __m512i wv = _mm512_maskz_loadu_epi8(m, row + k);
  const __m512i q = _mm512_loadu_si512(xq + k);
  const __m512i sq = _mm512_mask_sub_epi8(q, _mm512_movepi8_mask(wv), zero, q);
  const __m512i p = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(wv), sq);
  // Lanes 0-7 take the first of the two block scales, 8-15 the second.
  const __m512i pair =
      _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  double d2;
  std::memcpy(&d2, xd + k / kActBlock, 8);
  const __m512 d =
      _mm512_permutexvar_ps(pair, _mm512_castpd_ps(_mm512_set1_pd(d2)));
  return _mm512_mul_ps(_mm512_cvtepi32_ps(p), d);
}

// One token (decode): the rows one after another, one sequential stream (see
// FloatRowsSequential). Per 64 columns, vpdpbusd meets |w| with the codes
// negated where w < 0, so every dword is the exact sum of 4 products
// w * q; dwords 0-7 belong to block b, 8-15 to block b + 1, and each is
// scaled by its block's d_b before the f32 sum (the block sums of tiles.h,
// distributed over their dwords: f32 rounding differs, not the integers).
GEMMAC_AVX512 void Q8CRowsSequential(const WeightMatrix &w, int64_t n0,
                                     int64_t nr, const Acts &a, int64_t t,
                                     float *out) {
  const int64_t K = a.K, qb = a.qstride / kActBlock;
  const int8_t *row = static_cast<const int8_t *>(w.data) + n0 * K;
  const int8_t *xq = a.xq + t * a.qstride;
  const float *xd = a.xd + t * qb;
  const uint8_t *scales = static_cast<const uint8_t *>(w.data) + w.rows * K;
  for (int64_t r = 0; r < nr; ++r, row += K) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 128 <= K; k += 128) {
      acc0 = _mm512_add_ps(acc0, Q8CStep(row, xq, xd, k, ~__mmask64(0)));
      acc1 = _mm512_add_ps(acc1, Q8CStep(row, xq, xd, k + 64, ~__mmask64(0)));
    }
    for (; k < K; k += 64) {
      const int64_t rem = K - k;
      acc0 = _mm512_add_ps(
          acc0, Q8CStep(row, xq, xd, k,
                        rem >= 64 ? ~__mmask64(0) : (__mmask64(1) << rem) - 1));
    }
    out[r * kTokenGroup] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) *
                           LoadF32(scales + 4 * (n0 + r));
  }
}

template <int NT>
GEMMAC_AVX512 void Q8CTileN(const WeightMatrix &w, int64_t n0, int64_t nr,
                            const Acts &a, int64_t t, float *out) {
  if constexpr (NT == 1)
    return Q8CRowsSequential(w, n0, nr, a, t, out);
  const int64_t K = a.K, qb = a.qstride / kActBlock;
  const int8_t *q = static_cast<const int8_t *>(w.data);
  const int8_t *rows[kRowTile];
  for (int r = 0; r < kRowTile; ++r)
    rows[r] = q + (n0 + std::min<int64_t>(r, nr - 1)) * K;
  const int8_t *xq[NT];
  const float *xd[NT];
  const int32_t *xs[NT];
  __m512 acc[NT];
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i) {
    xq[i] = a.xq + (t + i) * a.qstride;
    xd[i] = a.xd + (t + i) * qb;
    xs[i] = a.xs + (t + i) * qb;
    acc[i] = _mm512_setzero_ps();
  }
  const __m512i bias = _mm512_set1_epi8(char(0x80));
  for (int64_t k = 0; k < K; k += 64) {
    // Bytes past K read as 0 (+128 after the bias) and meet zero codes.
    const int64_t rem = K - k;
    const __mmask64 m = rem >= 64 ? ~__mmask64(0) : (__mmask64(1) << rem) - 1;
    const bool two = rem > 32; // block b + 1 exists
    __m512i u[kRowTile], z[8];
    GEMMAC_UNROLL
    for (int r = 0; r < kRowTile; ++r) {
      // The same rows of the next tile (see FloatRowsNT).
      _mm_prefetch(reinterpret_cast<const char *>(rows[r] + k + kRowTile * K),
                   _MM_HINT_T0);
      u[r] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, rows[r] + k), bias);
    }
    TransposeQwords(u, z);
    const int64_t b = k / kActBlock;
    GEMMAC_UNROLL
    for (int i = 0; i < NT; ++i) {
      const __m512i sum = _mm512_sub_epi32(
          PairSums(Dot32<NT>(z, xq[i] + k), Dot32<NT>(z + 4, xq[i] + k + 32)),
          _mm512_slli_epi32(Pair32(xs[i] + b, two), 7));
      acc[i] =
          _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum),
                          _mm512_castsi512_ps(Pair32(xd[i] + b, two)), acc[i]);
    }
  }
  float rs[kRowTile];
  for (int64_t r = 0; r < nr; ++r)
    rs[r] = LoadF32(static_cast<const uint8_t *>(w.data) + w.rows * K +
                    4 * (n0 + r));
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i)
    StoreRows(acc[i], nr, i, rs, out);
}

// ---------------------------------------------------------------------------
// Q4G128: 128-column blocks {f16 d, f16 m, qs[64]}; elements 0-63 are the
// low nibbles (activation blocks 4g, 4g + 1), 64-127 the high (4g + 2,
// 4g + 3). Nibbles are unsigned, so the block sums need no correction; the
// minimum adds m * sum_b d_b qsum_b per group.

template <int NT>
GEMMAC_AVX512 void Q4G128TileN(const WeightMatrix &w, int64_t n0, int64_t nr,
                               const Acts &a, int64_t t, float *out) {
  const int64_t groups = a.K / 128, qb = a.qstride / kActBlock;
  const int64_t row_bytes = groups * 68;
  const uint8_t *base = static_cast<const uint8_t *>(w.data) + n0 * row_bytes;
  const uint8_t *rows[kRowTile];
  for (int r = 0; r < kRowTile; ++r)
    rows[r] = base + std::min<int64_t>(r, nr - 1) * row_bytes;
  const int8_t *xq[NT];
  const float *xd[NT];
  const int32_t *xs[NT];
  __m512 acc[NT];
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i) {
    xq[i] = a.xq + (t + i) * a.qstride;
    xd[i] = a.xd + (t + i) * qb;
    xs[i] = a.xs + (t + i) * qb;
    acc[i] = _mm512_setzero_ps();
  }
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t o = g * 68;
    __m512i v[kRowTile], z[8], lo[8], hi[8];
    GEMMAC_UNROLL
    for (int r = 0; r < kRowTile; ++r) {
      // The same 68 bytes of the next tile's rows (see FloatRowsNT).
      const char *next =
          reinterpret_cast<const char *>(rows[r] + kRowTile * row_bytes + o);
      _mm_prefetch(next, _MM_HINT_T0);
      _mm_prefetch(next + 67, _MM_HINT_T0);
      v[r] = _mm512_loadu_si512(rows[r] + o + 4);
    }
    TransposeQwords(v, z);
    GEMMAC_UNROLL
    for (int c = 0; c < 8; ++c) {
      lo[c] = _mm512_and_si512(z[c], m4);
      hi[c] = _mm512_and_si512(_mm512_srli_epi16(z[c], 4), m4);
    }
    // {d, m} of lane 4a + j's row (a + 4 (j & 1)) as f16 pairs.
    uint64_t dm2[4];
    GEMMAC_UNROLL
    for (int a4 = 0; a4 < 4; ++a4) {
      uint32_t d0, d1;
      std::memcpy(&d0, rows[a4] + o, 4);
      std::memcpy(&d1, rows[a4 + 4] + o, 4);
      dm2[a4] = uint64_t(d0) | uint64_t(d1) << 32;
    }
    const __m512i dm = _mm512_set_epi64(
        int64_t(dm2[3]), int64_t(dm2[3]), int64_t(dm2[2]), int64_t(dm2[2]),
        int64_t(dm2[1]), int64_t(dm2[1]), int64_t(dm2[0]), int64_t(dm2[0]));
    const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dm));
    const __m512 mw =
        _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dm, 16)));
    GEMMAC_UNROLL
    for (int i = 0; i < NT; ++i) {
      const int8_t *q = xq[i] + g * 128;
      const int64_t b = 4 * g;
      const __m512i s01 = PairSums(Dot32<NT>(lo, q), Dot32<NT>(lo + 4, q + 32));
      const __m512i s23 =
          PairSums(Dot32<NT>(hi, q + 64), Dot32<NT>(hi + 4, q + 96));
      const __m512 d01 = _mm512_castsi512_ps(Pair32(xd[i] + b, true));
      const __m512 d23 = _mm512_castsi512_ps(Pair32(xd[i] + b + 2, true));
      const __m512 part =
          _mm512_fmadd_ps(_mm512_cvtepi32_ps(s23), d23,
                          _mm512_mul_ps(_mm512_cvtepi32_ps(s01), d01));
      // sum_b d_b qsum_b over the group's 4 blocks, added once per row (on
      // the first block's lanes).
      __m128 z4 =
          _mm_mul_ps(_mm_loadu_ps(xd[i] + b),
                     _mm_cvtepi32_ps(_mm_loadu_si128(
                         reinterpret_cast<const __m128i *>(xs[i] + b))));
      z4 = _mm_add_ps(z4, _mm_movehl_ps(z4, z4));
      z4 = _mm_add_ss(z4, _mm_movehdup_ps(z4));
      acc[i] = _mm512_fmadd_ps(mw, _mm512_maskz_broadcastss_ps(kFirstBlock, z4),
                               _mm512_fmadd_ps(dw, part, acc[i]));
    }
  }
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i)
    StoreRows(acc[i], nr, i, nullptr, out);
}

// ---------------------------------------------------------------------------
// The nt switch and the table.

template <template <int> class K>
GEMMAC_AVX512 void ByTokens(const WeightMatrix &w, int64_t n0, int64_t nr,
                            const Acts &a, int64_t t, int64_t nt, float *out) {
  switch (nt) {
  case 1:
    return K<1>::Run(w, n0, nr, a, t, out);
  case 2:
    return K<2>::Run(w, n0, nr, a, t, out);
  case 3:
    return K<3>::Run(w, n0, nr, a, t, out);
  default:
    return K<4>::Run(w, n0, nr, a, t, out);
  }
}

template <class L> struct FloatK {
  template <int NT> struct N {
    GEMMAC_AVX512 static void Run(const WeightMatrix &w, int64_t n0, int64_t nr,
                                  const Acts &a, int64_t t, float *out) {
      FloatTile<L, NT>(w, n0, nr, a, t, out);
    }
  };
};
#define GEMMAC_TILE_K(Name, Fn)                                                \
  template <int NT> struct Name {                                              \
    GEMMAC_AVX512 static void Run(const WeightMatrix &w, int64_t n0,           \
                                  int64_t nr, const Acts &a, int64_t t,        \
                                  float *out) {                                \
      Fn<NT>(w, n0, nr, a, t, out);                                            \
    }                                                                          \
  };
GEMMAC_TILE_K(Q8CK, Q8CTileN)
GEMMAC_TILE_K(Q4G32K, Q4G32TileN)
GEMMAC_TILE_K(Q4G128K, Q4G128TileN)
GEMMAC_TILE_K(Q4G32R8K, Q4G32R8TileN)
#undef GEMMAC_TILE_K

TileKernels MakeAvx512() {
  TileKernels k;
  k.f32 = &ByTokens<FloatK<LoadF32x16>::N>;
  k.bf16 = &ByTokens<FloatK<LoadBf16x16>::N>;
  k.f16 = &ByTokens<FloatK<LoadF16x16>::N>;
  k.q8c = &ByTokens<Q8CK>;
  k.q4g32 = &ByTokens<Q4G32K>;
  k.q4g128 = &ByTokens<Q4G128K>;
  k.q4g32r8 = &ByTokens<Q4G32R8K>;
  return k;
}

} // namespace

const TileKernels &Avx512Tiles() {
  static const TileKernels k = MakeAvx512();
  return k;
}

} // namespace gemmac::cpu

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#else // not x86: no avx512 level; CanRun(Isa::kAvx512) is false there.

namespace gemmac::cpu {
const TileKernels &Avx512Tiles() {
  static const TileKernels k;
  return k;
}
} // namespace gemmac::cpu

#endif
