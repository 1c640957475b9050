// The avx2 level of tiles.h: TileFns with AVX2 + FMA + F16C (no AVX-512,
// no VNNI), for every weight dtype.
//
// This file is compiled with the build's baseline flags: every function
// that uses the instructions is in the anonymous namespace and carries
// GEMMAC_AVX2 (a target attribute, which GCC and Clang both honour), so no
// AVX2 code can leak into an inline function or template another file also
// instantiates. Only Avx2Tiles(), baseline code returning a table of
// pointers, is visible outside; callers check CanRun(Isa::kAvx2) first.
//
// Arithmetic (tiles.h): the integer block sums are exact and the same as
// the scalar level's; only the f32 sums are reassociated.
//   - Quantized weights meet the Q8 codes with _mm256_maddubs_epi16
//     (unsigned x signed bytes -> int16 pair sums) and _mm256_madd_epi16
//     with ones (-> int32). Q4 nibbles are 0..15, so a pair sum is at most
//     2 * 15 * 127 and the -8 of Q4G32 is applied afterwards as
//     - 8 * (block sum of codes, Acts::xs). Q8C's signed weights go through
//     maddubs(|w|, sign(q, w)): at most 2 * 128 * 127 = 32512.
//   - Fold4 (unpacks and adds) reduces four such int32 vectors at once, so
//     that one f32 convert and one FMA per token serve four blocks of a row
//     (Q8C, Q4G128), four blocks of two rows (Q4G32) or one block of eight
//     rows (Q4G32R8).
//   - Float weights: f32 products in 8 lanes, a scalar tail for K % 8.
// Register blocking: the decoded weights of a block are reused by the nt
// (1..4) tokens, a template parameter; each row is read once per call.
// The row-major formats walk the tile's rows one after another (Q4G32 two
// at a time), so that the weights are one sequential stream.
#include "tiles.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#define GEMMAC_AVX2 __attribute__((target("avx2,fma,f16c")))
// Loops over tokens, rows and blocks of a register block: fully unrolled
// at -O2 too, so that their arrays of vectors stay in registers.
#define GEMMAC_UNROLL _Pragma("GCC unroll 16")
#define GEMMAC_AVX2_INLINE                                                     \
  __attribute__((target("avx2,fma,f16c"), always_inline)) inline

namespace gemmac::cpu {
namespace {

// Software prefetch distance in bytes of weights ahead of the loads. The
// hardware prefetcher alone falls behind when several tokens slow the
// stream down, on long rows, and on Q4G32's two interleaved row streams
// (measured up to 1.7x slower without, on Zen 5; 4096 was as good as any).
constexpr int64_t kPfDist = 4096;

// ---------------------------------------------------------------- helpers

// Four vectors of eight int32 -> [a0, b0, c0, d0 | a1, b1, c1, d1], where
// x0 is the sum of x's four low lanes and x1 of its four high ones.
// (Unpacks and adds: _mm256_hadd_epi32 is several times slower on Zen.)
GEMMAC_AVX2_INLINE __m256i Fold4(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b),
                                      _mm256_unpackhi_epi32(a, b));
  const __m256i cd = _mm256_add_epi32(_mm256_unpacklo_epi32(c, d),
                                      _mm256_unpackhi_epi32(c, d));
  return _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd),
                          _mm256_unpackhi_epi64(ab, cd));
}

GEMMAC_AVX2_INLINE float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline uint16_t LoadU16(const uint8_t *p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  return h;
}

// The sum of (unsigned) u times (signed) s over each 8-byte lane group,
// as 8 int32: maddubs then madd with ones.
GEMMAC_AVX2_INLINE __m256i DotU8S8(__m256i u, __m256i s, __m256i ones) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), ones);
}

// ------------------------------------------------------------ float rows

struct F32Load {
  using T = float;
  static GEMMAC_AVX2_INLINE __m256 Load8(const float *p) {
    return _mm256_loadu_ps(p);
  }
  static float Scalar(float v) { return v; }
};
struct Bf16Load {
  using T = uint16_t;
  static GEMMAC_AVX2_INLINE __m256 Load8(const uint16_t *p) {
    const __m256i v = _mm256_cvtepu16_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
  static float Scalar(uint16_t v) { return Bf16ToF32(v); }
};
struct F16Load {
  using T = uint16_t;
  static GEMMAC_AVX2_INLINE __m256 Load8(const uint16_t *p) {
    return _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
  }
  static float Scalar(uint16_t v) { return F16ToF32(v); }
};

// One row against NT tokens: NT x U accumulators of 8 lanes, U chunks of 8
// columns per step, then chunks of 8, then a scalar tail for K % 8. One row
// at a time keeps the tile's rows one sequential stream (two rows sharing
// each x load measured no faster in cache and slower from memory).
template <class L, int NT>
GEMMAC_AVX2 void FloatRowN(const typename L::T *row, int64_t K,
                           const float *const *x, float *out) {
  // 12 accumulators + 3 weights at NT = 4: all 16 registers, no spills.
  constexpr int U = NT <= 2 ? 4 : 3;
  const int64_t ku = K / (8 * U) * (8 * U), k8 = K / 8 * 8;
  __m256 acc[NT][U];
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i)
    GEMMAC_UNROLL
  for (int u = 0; u < U; ++u)
    acc[i][u] = _mm256_setzero_ps();
  for (int64_t k = 0; k < ku; k += 8 * U) {
    // Always prefetched: at one token too, x (twice the bytes of bf16
    // weights) competes with the stream. 8 * U elements: <= 128 bytes.
    const char *pf = reinterpret_cast<const char *>(row + k) + kPfDist;
    _mm_prefetch(pf, _MM_HINT_T0);
    if (8 * U * sizeof(typename L::T) > 64)
      _mm_prefetch(pf + 64, _MM_HINT_T0);
    __m256 wv[U];
    GEMMAC_UNROLL
    for (int u = 0; u < U; ++u)
      wv[u] = L::Load8(row + k + 8 * u);
    GEMMAC_UNROLL
    for (int i = 0; i < NT; ++i)
      GEMMAC_UNROLL
    for (int u = 0; u < U; ++u)
      acc[i][u] =
          _mm256_fmadd_ps(wv[u], _mm256_loadu_ps(x[i] + k + 8 * u), acc[i][u]);
  }
  for (int64_t k = ku; k < k8; k += 8) {
    const __m256 wv = L::Load8(row + k);
    GEMMAC_UNROLL
    for (int i = 0; i < NT; ++i)
      acc[i][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x[i] + k), acc[i][0]);
  }
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i) {
    __m256 v = acc[i][0];
    GEMMAC_UNROLL
    for (int u = 1; u < U; ++u)
      v = _mm256_add_ps(v, acc[i][u]);
    float s = HSum(v);
    for (int64_t k = k8; k < K; ++k)
      s += L::Scalar(row[k]) * x[i][k];
    out[i] = s;
  }
}

template <class L, int NT>
GEMMAC_AVX2 void FloatTileN(const WeightMatrix &w, int64_t n0, int64_t nr,
                            const Acts &a, int64_t t, float *out) {
  const int64_t K = a.K;
  const typename L::T *base = static_cast<const typename L::T *>(w.data);
  const float *x[NT];
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i)
    x[i] = a.xf + (t + i) * K;
  for (int64_t r = 0; r < nr; ++r)
    FloatRowN<L, NT>(base + (n0 + r) * K, K, x, out + r * kTokenGroup);
}

// Q8C and Q4G32 walk a row in chunks of 4 activation blocks (128 columns).
// Q8C folds a token's 4 block sums into [b0 b1 b2 b3 | b0 b1 b2 b3] (two
// partial sums per block), scaled by [d_b0..d_b3 | d_b0..d_b3] and
// accumulated; the lanes are summed once per row. A last, partial chunk
// reads zero-padded copies (weights, codes, scales, sums), so that nothing
// past a row or past the codes is read.
constexpr int64_t kChunk = 4 * kActBlock;

// Per token: its codes, block scales and block code sums, and the same for
// the last partial chunk (zero-padded).
template <int NT> struct TokenCodes {
  const int8_t *q[NT];
  const float *d[NT];
  const int32_t *s[NT];
  alignas(32) int8_t tq[NT][kChunk];
  alignas(16) float td[NT][4];
  alignas(16) int32_t ts[NT][4];

  // Blocks [4 * chunk, nb) of the codes, nb = the blocks a row reads.
  void Init(const Acts &a, int64_t t, int64_t chunks, int64_t nb) {
    const int64_t qb = a.qstride / kActBlock;
    const int64_t b0 = chunks * 4, rest = nb - b0;
    GEMMAC_UNROLL
    for (int i = 0; i < NT; ++i) {
      q[i] = a.xq + (t + i) * a.qstride;
      d[i] = a.xd + (t + i) * qb;
      s[i] = a.xs + (t + i) * qb;
      if (rest > 0) {
        std::memset(tq[i], 0, sizeof(tq[i]));
        std::memcpy(tq[i], q[i] + b0 * kActBlock, size_t(rest * kActBlock));
        GEMMAC_UNROLL
        for (int j = 0; j < 4; ++j) {
          td[i][j] = j < rest ? d[i][b0 + j] : 0.0f;
          ts[i][j] = j < rest ? s[i][b0 + j] : 0;
        }
      }
    }
  }
};

// ------------------------------------------------------------------- Q8C

// One 128-column chunk of one row (wp: 128 weight bytes) against NT tokens'
// codes q[i] and block scales d[i] (4 each).
template <int NT>
GEMMAC_AVX2_INLINE void Q8CChunk(const int8_t *wp, const int8_t *const *q,
                                 const float *const *d, __m256i ones,
                                 __m256 *acc) {
  __m256i wv[4], aw[4];
  GEMMAC_UNROLL
  for (int j = 0; j < 4; ++j) {
    wv[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(wp + 32 * j));
    aw[j] = _mm256_abs_epi8(wv[j]);
  }
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i) {
    __m256i p[4];
    GEMMAC_UNROLL
    for (int j = 0; j < 4; ++j) {
      const __m256i qv =
          _mm256_loadu_si256(reinterpret_cast<const __m256i *>(q[i] + 32 * j));
      p[j] = DotU8S8(aw[j], _mm256_sign_epi8(qv, wv[j]), ones);
    }
    const __m256i h = Fold4(p[0], p[1], p[2], p[3]);
    acc[i] = _mm256_fmadd_ps(
        _mm256_cvtepi32_ps(h),
        _mm256_broadcast_ps(reinterpret_cast<const __m128 *>(d[i])), acc[i]);
  }
}

template <int NT>
GEMMAC_AVX2 void Q8CTileN(const WeightMatrix &w, int64_t n0, int64_t nr,
                          const Acts &a, int64_t t, float *out) {
  const int64_t K = a.K;
  const int8_t *base = static_cast<const int8_t *>(w.data) + n0 * K;
  const uint8_t *scales = static_cast<const uint8_t *>(w.data) + w.rows * K;
  const int64_t chunks = K / kChunk, tail = K - chunks * kChunk;
  const __m256i ones = _mm256_set1_epi16(1);
  TokenCodes<NT> c;
  c.Init(a, t, chunks, (K + kActBlock - 1) / kActBlock);
  for (int64_t r = 0; r < nr; ++r) {
    const int8_t *row = base + r * K;
    __m256 acc[NT];
    GEMMAC_UNROLL
    for (int i = 0; i < NT; ++i)
      acc[i] = _mm256_setzero_ps();
    for (int64_t ch = 0; ch < chunks; ++ch) {
      const int8_t *q[NT];
      const float *d[NT];
      GEMMAC_UNROLL
      for (int i = 0; i < NT; ++i) {
        q[i] = c.q[i] + ch * kChunk;
        d[i] = c.d[i] + ch * 4;
      }
      if (NT > 1) {
        // As in Q4G32R8TileN; the stream runs on into the next rows.
        const char *pf =
            reinterpret_cast<const char *>(row) + ch * kChunk + kPfDist;
        _mm_prefetch(pf, _MM_HINT_T0);
        _mm_prefetch(pf + 64, _MM_HINT_T0);
      }
      Q8CChunk<NT>(row + ch * kChunk, q, d, ones, acc);
    }
    if (tail != 0) {
      alignas(32) int8_t tw[kChunk] = {};
      std::memcpy(tw, row + chunks * kChunk, size_t(tail));
      const int8_t *q[NT];
      const float *d[NT];
      GEMMAC_UNROLL
      for (int i = 0; i < NT; ++i) {
        q[i] = c.tq[i];
        d[i] = c.td[i];
      }
      Q8CChunk<NT>(tw, q, d, ones, acc);
    }
    const float rs = LoadF32(scales + 4 * (n0 + r));
    GEMMAC_UNROLL
    for (int i = 0; i < NT; ++i)
      out[r * kTokenGroup + i] = HSum(acc[i]) * rs;
  }
}

// ----------------------------------------------------------------- Q4G32

// Two rows at a time, as Q4G32R8 does with its runs: one register holds
// block b's 16 nibble bytes of both rows, [row r | row r + 1]; its low
// nibbles meet the codes [q0..15 | q0..15] and its high ones [q16..31 |
// q16..31], so lanes 0..3 sum row r and 4..7 row r + 1. A chunk of 4
// blocks folds into [r: b0 b1 b2 b3 | r + 1: b0 b1 b2 b3], every lane one
// whole block sum, less 8 * xs, times [dw | dw] * [d_b | d_b].
template <int NT>
GEMMAC_AVX2_INLINE void
Q4G32Chunk(const uint8_t *b0, const uint8_t *b1, const int8_t *const *q,
           const float *const *d, const int32_t *const *s, __m256i ones,
           __m256i m4, __m256 *acc) {
  const uint64_t d0 = uint64_t(LoadU16(b0)) | uint64_t(LoadU16(b0 + 18)) << 16 |
                      uint64_t(LoadU16(b0 + 36)) << 32 |
                      uint64_t(LoadU16(b0 + 54)) << 48;
  const uint64_t d1 = uint64_t(LoadU16(b1)) | uint64_t(LoadU16(b1 + 18)) << 16 |
                      uint64_t(LoadU16(b1 + 36)) << 32 |
                      uint64_t(LoadU16(b1 + 54)) << 48;
  const __m256 dw = _mm256_cvtph_ps(
      _mm_set_epi64x(static_cast<int64_t>(d1), static_cast<int64_t>(d0)));
  __m256i lo[4], hi[4];
  GEMMAC_UNROLL
  for (int j = 0; j < 4; ++j) {
    const __m256i v = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(
            reinterpret_cast<const __m128i *>(b0 + 18 * j + 2))),
        _mm_loadu_si128(reinterpret_cast<const __m128i *>(b1 + 18 * j + 2)), 1);
    lo[j] = _mm256_and_si256(v, m4);
    hi[j] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
  }
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i) {
    __m256i p[4];
    GEMMAC_UNROLL
    for (int j = 0; j < 4; ++j) {
      const __m256i ql = _mm256_broadcastsi128_si256(
          _mm_loadu_si128(reinterpret_cast<const __m128i *>(q[i] + 32 * j)));
      const __m256i qh = _mm256_broadcastsi128_si256(_mm_loadu_si128(
          reinterpret_cast<const __m128i *>(q[i] + 32 * j + 16)));
      p[j] =
          _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo[j], ql),
                                             _mm256_maddubs_epi16(hi[j], qh)),
                            ones);
    }
    const __m256i corr =
        _mm256_slli_epi32(_mm256_broadcastsi128_si256(_mm_loadu_si128(
                              reinterpret_cast<const __m128i *>(s[i]))),
                          3);
    const __m256i h = _mm256_sub_epi32(Fold4(p[0], p[1], p[2], p[3]), corr);
    const __m256 db =
        _mm256_broadcast_ps(reinterpret_cast<const __m128 *>(d[i]));
    acc[i] =
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(h), _mm256_mul_ps(dw, db), acc[i]);
  }
}

template <int NT>
GEMMAC_AVX2 void Q4G32TileN(const WeightMatrix &w, int64_t n0, int64_t nr,
                            const Acts &a, int64_t t, float *out) {
  const int64_t nb = a.K / kActBlock, row_bytes = nb * 18;
  const uint8_t *base = static_cast<const uint8_t *>(w.data) + n0 * row_bytes;
  const int64_t chunks = nb / 4, rest = nb - chunks * 4;
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i m4 = _mm256_set1_epi8(15);
  TokenCodes<NT> c;
  c.Init(a, t, chunks, nb);
  for (int64_t r = 0; r < nr; r += 2) {
    // An odd last row pairs with itself; the copy is dropped.
    const uint8_t *row0 = base + r * row_bytes;
    const uint8_t *row1 = base + std::min<int64_t>(r + 1, nr - 1) * row_bytes;
    __m256 acc[NT];
    GEMMAC_UNROLL
    for (int i = 0; i < NT; ++i)
      acc[i] = _mm256_setzero_ps();
    for (int64_t ch = 0; ch < chunks; ++ch) {
      const int8_t *q[NT];
      const float *d[NT];
      const int32_t *s[NT];
      GEMMAC_UNROLL
      for (int i = 0; i < NT; ++i) {
        q[i] = c.q[i] + ch * kChunk;
        d[i] = c.d[i] + ch * 4;
        s[i] = c.s[i] + ch * 4;
      }
      // Two interleaved streams defeat the hardware prefetcher: fetch the
      // next pair of rows (one contiguous range) while this one runs.
      const char *pf = reinterpret_cast<const char *>(row0) + 2 * row_bytes +
                       ch * 144 + kPfDist;
      _mm_prefetch(pf, _MM_HINT_T0);
      _mm_prefetch(pf + 64, _MM_HINT_T0);
      _mm_prefetch(pf + 128, _MM_HINT_T0);
      Q4G32Chunk<NT>(row0 + ch * 72, row1 + ch * 72, q, d, s, ones, m4, acc);
    }
    if (rest != 0) {
      // Zero d and zero codes, scales and sums past the row: adds 0.
      alignas(32) uint8_t tw[2][72] = {};
      std::memcpy(tw[0], row0 + chunks * 72, size_t(rest * 18));
      std::memcpy(tw[1], row1 + chunks * 72, size_t(rest * 18));
      const int8_t *q[NT];
      const float *d[NT];
      const int32_t *s[NT];
      GEMMAC_UNROLL
      for (int i = 0; i < NT; ++i) {
        q[i] = c.tq[i];
        d[i] = c.td[i];
        s[i] = c.ts[i];
      }
      Q4G32Chunk<NT>(tw[0], tw[1], q, d, s, ones, m4, acc);
    }
    GEMMAC_UNROLL
    for (int i = 0; i < NT; ++i) {
      alignas(32) float v[8];
      _mm256_store_ps(v, acc[i]);
      out[r * kTokenGroup + i] = (v[0] + v[1]) + (v[2] + v[3]);
      if (r + 1 < nr)
        out[(r + 1) * kTokenGroup + i] = (v[4] + v[5]) + (v[6] + v[7]);
    }
  }
}

// --------------------------------------------------------------- Q4G32R8

// A group of 8 rows streams through its 144-byte runs. Two rows' 16 nibble
// bytes fill one register: [row 2p | row 2p + 1]; its low nibbles meet the
// codes [q0..15 | q0..15] and its high ones [q16..31 | q16..31], so the
// int32 lanes 0..3 sum row 2p and 4..7 row 2p + 1, and Fold4 leaves the 8
// rows in the order 0 2 4 6 1 3 5 7 (the d vector is permuted to match).
template <int NT>
GEMMAC_AVX2 void Q4G32R8TileN(const WeightMatrix &w, int64_t n0, int64_t nr,
                              const Acts &a, int64_t t, float *out) {
  const int64_t nb = a.K / kActBlock, qb = a.qstride / kActBlock;
  const uint8_t *run = static_cast<const uint8_t *>(w.data) +
                       (n0 / kRowTile) * nb * Q4G32R8Rows::kRunBytes;
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i m4 = _mm256_set1_epi8(15);
  // f16 d of rows 0 2 4 6 1 3 5 7, as byte indices into the 16 d bytes.
  const __m128i dperm =
      _mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
  const int8_t *xq[NT];
  const float *xd[NT];
  const int32_t *xs[NT];
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i) {
    xq[i] = a.xq + (t + i) * a.qstride;
    xd[i] = a.xd + (t + i) * qb;
    xs[i] = a.xs + (t + i) * qb;
  }
  __m256 acc[NT];
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i)
    acc[i] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b, run += Q4G32R8Rows::kRunBytes) {
    if (NT > 1) {
      // Several tokens slow the stream enough that the hardware prefetcher
      // falls behind on long rows; one token runs best without (measured).
      const char *pf = reinterpret_cast<const char *>(run) + kPfDist;
      _mm_prefetch(pf, _MM_HINT_T0);
      _mm_prefetch(pf + 64, _MM_HINT_T0);
      _mm_prefetch(pf + 128, _MM_HINT_T0);
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_shuffle_epi8(
        _mm_loadu_si128(reinterpret_cast<const __m128i *>(run)), dperm));
    __m256i lo[4], hi[4];
    GEMMAC_UNROLL
    for (int p = 0; p < 4; ++p) {
      const __m256i v = _mm256_loadu_si256(
          reinterpret_cast<const __m256i *>(run + 16 + 32 * p));
      lo[p] = _mm256_and_si256(v, m4);
      hi[p] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
    GEMMAC_UNROLL
    for (int i = 0; i < NT; ++i) {
      const int8_t *qp = xq[i] + b * kActBlock;
      const __m256i ql = _mm256_broadcastsi128_si256(
          _mm_loadu_si128(reinterpret_cast<const __m128i *>(qp)));
      const __m256i qh = _mm256_broadcastsi128_si256(
          _mm_loadu_si128(reinterpret_cast<const __m128i *>(qp + 16)));
      __m256i s[4];
      GEMMAC_UNROLL
      for (int p = 0; p < 4; ++p)
        s[p] =
            _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo[p], ql),
                                               _mm256_maddubs_epi16(hi[p], qh)),
                              ones);
      const __m256i h = _mm256_sub_epi32(Fold4(s[0], s[1], s[2], s[3]),
                                         _mm256_set1_epi32(xs[i][b] * 8));
      acc[i] =
          _mm256_fmadd_ps(_mm256_cvtepi32_ps(h),
                          _mm256_mul_ps(dw, _mm256_set1_ps(xd[i][b])), acc[i]);
    }
  }
  static constexpr int kLaneRow[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i) {
    alignas(32) float s[8];
    _mm256_store_ps(s, acc[i]);
    GEMMAC_UNROLL
    for (int l = 0; l < 8; ++l)
      if (kLaneRow[l] < nr)
        out[kLaneRow[l] * kTokenGroup + i] = s[l];
  }
}

// ---------------------------------------------------------------- Q4G128

// 128-column blocks {f16 d, f16 m, 64 bytes}: activation block j (0..3) of
// a group reads bytes (j % 2) * 32 .. + 32, low nibbles for j < 2. Per row
// and group: sum_j d_j * (d * dot_j + m * xs_j), the m term from the low
// half only.
template <int NT>
GEMMAC_AVX2 void Q4G128TileN(const WeightMatrix &w, int64_t n0, int64_t nr,
                             const Acts &a, int64_t t, float *out) {
  const int64_t groups = a.K / 128, row_bytes = groups * 68;
  const uint8_t *base = static_cast<const uint8_t *>(w.data) + n0 * row_bytes;
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i m4 = _mm256_set1_epi8(15);
  const int64_t qb = a.qstride / kActBlock;
  const int8_t *xq[NT];
  const float *xd[NT];
  const int32_t *xs[NT];
  GEMMAC_UNROLL
  for (int i = 0; i < NT; ++i) {
    xq[i] = a.xq + (t + i) * a.qstride;
    xd[i] = a.xd + (t + i) * qb;
    xs[i] = a.xs + (t + i) * qb;
  }
  for (int64_t r = 0; r < nr; ++r) {
    const uint8_t *blk = base + r * row_bytes;
    __m256 acc[NT];
    GEMMAC_UNROLL
    for (int i = 0; i < NT; ++i)
      acc[i] = _mm256_setzero_ps();
    for (int64_t g = 0; g < groups; ++g, blk += 68) {
      if (NT > 1) {
        // As in Q4G32R8TileN; the stream runs on into the next rows.
        const char *pf = reinterpret_cast<const char *>(blk) + kPfDist;
        _mm_prefetch(pf, _MM_HINT_T0);
        _mm_prefetch(pf + 64, _MM_HINT_T0);
      }
      const __m256 dw = _mm256_set1_ps(_cvtsh_ss(LoadU16(blk)));
      const __m256 mw = _mm256_set1_ps(_cvtsh_ss(LoadU16(blk + 2)));
      const __m256i v0 =
          _mm256_loadu_si256(reinterpret_cast<const __m256i *>(blk + 4));
      const __m256i v1 =
          _mm256_loadu_si256(reinterpret_cast<const __m256i *>(blk + 36));
      const __m256i nib[4] = {_mm256_and_si256(v0, m4),
                              _mm256_and_si256(v1, m4),
                              _mm256_and_si256(_mm256_srli_epi16(v0, 4), m4),
                              _mm256_and_si256(_mm256_srli_epi16(v1, 4), m4)};
      GEMMAC_UNROLL
      for (int i = 0; i < NT; ++i) {
        const int8_t *q = xq[i] + g * 128;
        __m256i p[4];
        GEMMAC_UNROLL
        for (int j = 0; j < 4; ++j)
          p[j] = DotU8S8(
              nib[j],
              _mm256_loadu_si256(reinterpret_cast<const __m256i *>(q + 32 * j)),
              ones);
        const __m256 sums = _mm256_cvtepi32_ps(_mm256_zextsi128_si256(
            _mm_loadu_si128(reinterpret_cast<const __m128i *>(xs[i] + g * 4))));
        const __m256 v =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(Fold4(p[0], p[1], p[2], p[3])),
                            dw, _mm256_mul_ps(sums, mw));
        acc[i] = _mm256_fmadd_ps(
            v,
            _mm256_broadcast_ps(
                reinterpret_cast<const __m128 *>(xd[i] + g * 4)),
            acc[i]);
      }
    }
    GEMMAC_UNROLL
    for (int i = 0; i < NT; ++i)
      out[r * kTokenGroup + i] = HSum(acc[i]);
  }
}

// ------------------------------------------------------------- the table

// The nt switch every TileFn shares (dispatch only: baseline code).
#define GEMMAC_BY_TOKENS(name, fn)                                             \
  void name(const WeightMatrix &w, int64_t n0, int64_t nr, const Acts &a,      \
            int64_t t, int64_t nt, float *out) {                               \
    switch (nt) {                                                              \
    case 1:                                                                    \
      return fn<1>(w, n0, nr, a, t, out);                                      \
    case 2:                                                                    \
      return fn<2>(w, n0, nr, a, t, out);                                      \
    case 3:                                                                    \
      return fn<3>(w, n0, nr, a, t, out);                                      \
    default:                                                                   \
      return fn<4>(w, n0, nr, a, t, out);                                      \
    }                                                                          \
  }

template <int NT>
GEMMAC_AVX2 void F32Tile(const WeightMatrix &w, int64_t n0, int64_t nr,
                         const Acts &a, int64_t t, float *out) {
  FloatTileN<F32Load, NT>(w, n0, nr, a, t, out);
}
template <int NT>
GEMMAC_AVX2 void Bf16Tile(const WeightMatrix &w, int64_t n0, int64_t nr,
                          const Acts &a, int64_t t, float *out) {
  FloatTileN<Bf16Load, NT>(w, n0, nr, a, t, out);
}
template <int NT>
GEMMAC_AVX2 void F16Tile(const WeightMatrix &w, int64_t n0, int64_t nr,
                         const Acts &a, int64_t t, float *out) {
  FloatTileN<F16Load, NT>(w, n0, nr, a, t, out);
}

GEMMAC_BY_TOKENS(F32Fn, F32Tile)
GEMMAC_BY_TOKENS(Bf16Fn, Bf16Tile)
GEMMAC_BY_TOKENS(F16Fn, F16Tile)
GEMMAC_BY_TOKENS(Q8CFn, Q8CTileN)
GEMMAC_BY_TOKENS(Q4G32Fn, Q4G32TileN)
GEMMAC_BY_TOKENS(Q4G128Fn, Q4G128TileN)
GEMMAC_BY_TOKENS(Q4G32R8Fn, Q4G32R8TileN)

#undef GEMMAC_BY_TOKENS

TileKernels MakeAvx2() {
  TileKernels k;
  k.f32 = &F32Fn;
  k.bf16 = &Bf16Fn;
  k.f16 = &F16Fn;
  k.q8c = &Q8CFn;
  k.q4g32 = &Q4G32Fn;
  k.q4g128 = &Q4G128Fn;
  k.q4g32r8 = &Q4G32R8Fn;
  return k;
}

} // namespace

const TileKernels &Avx2Tiles() {
  static const TileKernels k = MakeAvx2();
  return k;
}

} // namespace gemmac::cpu

#undef GEMMAC_UNROLL
#undef GEMMAC_AVX2_INLINE
#undef GEMMAC_AVX2

#else // not x86: no avx2 level; CanRun(Isa::kAvx2) is false there.

namespace gemmac::cpu {
const TileKernels &Avx2Tiles() {
  static const TileKernels k;
  return k;
}
} // namespace gemmac::cpu

#endif
