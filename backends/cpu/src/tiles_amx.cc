// The amx level of tiles.h: panel kernels on Intel AMX tiles (AMX-TILE,
// AMX-INT8, AMX-BF16) for prefill. Compiled with the build's baseline
// flags; each function below enables what it uses with a target attribute
// (GEMMAC_AMX) and has internal linkage, as in tiles_avx512.cc. Only call
// these kernels when CanRun(Isa::kAmx): the CPU has the tiles and Linux let
// this process use them (cpu_features.cc asked with arch_prctl).
//
// A panel is 16 weight rows against every prepared row.
//
// Quantized weights (Q8C, Q4G32, Q4G32R8, Q4G128): per 32-column activation
// block b, one tdpbssd multiplies a 16-token x 32-code tile of the
// activation codes (A: Acts::xqp, one contiguous 512-byte tile per 16 rows
// and block) by the panel's 32 x 16 weight codes (B: 8 rows of 16 dwords,
// each dword 4 consecutive codes of one weight row, the order tdpbssd
// reads) into a 16 x 16 tile of exact int32 block sums (C). Those are
// stored, converted to f32 and scaled into f32 accumulators as the other
// levels do:
//   Q8C            acc[t][n] += float(sum) * d_b[t];   y = acc * s_n
//   Q4G32(R8)      acc[t][n] += float(sum) * (dw[n,b] * d_b[t])
//   Q4G128         ... + m[n,B] * (d_b[t] * codesum_b[t])
// Each block needs its own C tile and scaling (d_b differs per block), so a
// tdpbssd covers 32 columns, not the 64 it could, and every product is
// followed by a tile store and 16 vector multiply-adds: that, not the tile
// unit, bounds these kernels (docs/benchmarks.md).
//
// BF16 weights (Bf16PanelKernel): tdpbf16ps on the rows' bf16 hi and lo
// parts (Acts::xbp; tiles.h), accumulated over the whole row in C tiles.
//
// The weights are repacked into B order once per panel (PackPanel: a 16 x 8
// dword transpose per block; 4-bit codes are unpacked to int8 first) into a
// per-thread buffer, and then serve every 16-token tile. The quantized
// kernels run the blocks in chunks of at most kChunkBlocks, so that a chunk
// of packed weights (16 KB) stays in L1 while the token tiles stream their
// codes past it; each token tile keeps its 16 x 16 accumulators in
// registers within a chunk and in the per-thread buffer between chunks.
#include "tiles.h"

#include "amx_config.h"

#if defined(__x86_64__)

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace gemmac::cpu {
namespace {

#define GEMMAC_AMX                                                             \
  __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,"         \
                        "avx512dq,avx2,fma,f16c")))
#define GEMMAC_AMX_INLINE GEMMAC_AMX inline __attribute__((always_inline))
#define GEMMAC_UNROLL _Pragma("GCC unroll 16")

// Tile registers: C0..C3 take the int32 sums of four blocks in flight
// (16 tokens x 16 rows each), A0/A1 16 tokens x 32 activation codes, B0/B1
// 8 x 16 dwords of weight codes; block j of a group of four uses C[j],
// A[j % 2] and B[j % 2].
//
// The tile instructions are written as inline asm here rather than through
// GCC 12's intrinsics: those give tilestored a "memory" clobber, which
// makes GCC keep the accumulators in memory around every store, and give
// ldtilecfg no memory input, so GCC may drop the stores that fill the
// config. Each asm below names exactly the memory it reads or writes;
// tileloadd reads memory it cannot name (rows `stride` apart), so the
// panel kernel puts a compiler barrier between writing the packed weights
// and its first tile load.
struct alignas(64) TileBlock {
  int32_t v[kPanelRows * kPanelRows];
};
#define GEMMAC_TILE_LOAD(t, p, stride)                                         \
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #t                             \
                   :                                                           \
                   : "r"(p), "r"(int64_t(stride)))
#define GEMMAC_TILE_STORE(t, p)                                                \
  __asm__ volatile("tilestored %%tmm" #t ", (%1,%2,1)"                         \
                   : "=m"(*reinterpret_cast<TileBlock *>(p))                   \
                   : "r"(p), "r"(int64_t(kPanelRows * 4)))
#define GEMMAC_TILE_ZERO(t) __asm__ volatile("tilezero %%tmm" #t ::)
#define GEMMAC_TILE_DPBF16PS(c, a, b)                                          \
  __asm__ volatile("tdpbf16ps %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::)
#define GEMMAC_TILE_DPBSSD(c, a, b)                                            \
  __asm__ volatile("tdpbssd %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::)
#define GEMMAC_COMPILER_BARRIER() __asm__ volatile("" ::: "memory")

constexpr int64_t kBlockBytes = kPanelRows * kActBlock; // one packed block
// Packed blocks kept in L1 while the token tiles pass (16 KB).
constexpr int64_t kChunkBlocks = 32;

// The quantized kernels' tiles: C0..C3 16 x 16 int32, A0/A1 16 tokens x 32
// codes, B0/B1 8 x 16 dwords.
constexpr TileConfig MakeConfig() {
  TileConfig c;
  SetTiles(c, 0, 4, kPanelRows, kPanelRows * 4);    // C0..C3
  SetTiles(c, 4, 6, kPanelRows, kActBlock);         // A0, A1
  SetTiles(c, 6, 8, kActBlock / 4, kPanelRows * 4); // B0, B1
  return c;
}
constexpr TileConfig kTileConfig = MakeConfig();

// The bf16 kernel's tiles: C0..C3 16 x 16 f32, A0/A1 16 tokens x 32 bf16,
// B0/B1 16 x 16 bf16 pairs (32 columns of 16 weight rows); all 16 x 64 B.
constexpr TileConfig kBf16TileConfig = FullTiles();

// One thread's scratch: the packed panel, its block scales and the
// accumulators of every token tile. Grows to the largest request.
class PanelScratch {
public:
  int8_t *pack = nullptr;  // [blocks][8][16 dwords]
  float *scale = nullptr;  // [blocks][16]: dw of each row (Q4 formats)
  float *mins = nullptr;   // [blocks][16]: m of each row (Q4G128)
  float *acc = nullptr;    // [token tiles][16 tokens][16 rows]
  int8_t *codes = nullptr; // [16][32]: one unpacked 4-bit block
  void Reserve(int64_t blocks, int64_t rows) {
    const size_t need = size_t(blocks) * (kBlockBytes + 2 * kPanelRows * 4) +
                        size_t(rows) * kPanelRows * 4 + kBlockBytes;
    if (need > size_) {
      void *p = std::aligned_alloc(64, (need + 63) / 64 * 64);
      if (p == nullptr)
        throw std::bad_alloc();
      mem_.reset(static_cast<char *>(p));
      size_ = need;
    }
    char *m = mem_.get();
    pack = reinterpret_cast<int8_t *>(m);
    m += blocks * kBlockBytes;
    scale = reinterpret_cast<float *>(m);
    m += blocks * kPanelRows * 4;
    mins = reinterpret_cast<float *>(m);
    m += blocks * kPanelRows * 4;
    acc = reinterpret_cast<float *>(m);
    m += rows * kPanelRows * 4;
    codes = reinterpret_cast<int8_t *>(m);
  }

private:
  struct Free {
    void operator()(char *p) const { std::free(p); }
  };
  std::unique_ptr<char, Free> mem_;
  size_t size_ = 0;
};

PanelScratch &ThreadScratch() {
  thread_local PanelScratch s;
  return s;
}

// 32 zero codes, or 32 zero bf16 (rows past nr).
alignas(64) const int8_t kZeroBlock[2 * kActBlock] = {};

// permutex2var indices of Transpose's three steps (see there).
struct TransposeIndex {
  alignas(64) int32_t s1[2][16] = {};
  alignas(64) int32_t s2[2][16] = {};
  alignas(64) int32_t s3[2][16] = {};
  constexpr TransposeIndex() {
    for (int h = 0; h < 2; ++h)
      for (int p = 0; p < 16; ++p) {
        const int kk = p / 4 + 4 * h, r = p % 4; // rows r of a Z pair
        s1[h][p] = r < 2 ? r * 8 + kk : 16 + (r - 2) * 8 + kk;
      }
    for (int e = 0; e < 2; ++e)
      for (int p = 0; p < 16; ++p) {
        const int kk = 2 * e + p / 8, r = p % 8; // kk of an S, rows of two
        s2[e][p] = r < 4 ? kk * 4 + r : 16 + kk * 4 + (r - 4);
      }
    for (int kl = 0; kl < 2; ++kl)
      for (int p = 0; p < 16; ++p)
        s3[kl][p] = p < 8 ? kl * 8 + p : 16 + kl * 8 + (p - 8);
  }
};
constexpr TransposeIndex kIndex;

// dst[kk][r] (dwords) = dword kk of rows[r] (32 bytes each), kk < 8, r < 16:
// block b of the panel in tdpbssd's B order. Three permute steps narrow
// each vector from (rows x 8 dwords) to (16 rows x 1 dword):
//   Z[i]      = rows 2i, 2i + 1, all 8 dwords each
//   S[j][h]   = dwords 4h..4h+3 of rows 4j..4j+3, dword-major
//   T[g][h][e]= dwords 4h+2e, +1 of rows 8g..8g+7, dword-major
//   dst[kk]   = dword kk of rows 0..15
GEMMAC_AMX_INLINE void Transpose(const int8_t *const rows[kPanelRows],
                                 int8_t *dst) {
  __m512i z[8];
  GEMMAC_UNROLL
  for (int i = 0; i < 8; ++i)
    z[i] = _mm512_inserti64x4(
        _mm512_castsi256_si512(
            _mm256_loadu_si256(reinterpret_cast<const __m256i *>(rows[2 * i]))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i *>(rows[2 * i + 1])),
        1);
  const __m512i i10 = _mm512_load_si512(kIndex.s1[0]);
  const __m512i i11 = _mm512_load_si512(kIndex.s1[1]);
  __m512i s[4][2];
  GEMMAC_UNROLL
  for (int j = 0; j < 4; ++j) {
    s[j][0] = _mm512_permutex2var_epi32(z[2 * j], i10, z[2 * j + 1]);
    s[j][1] = _mm512_permutex2var_epi32(z[2 * j], i11, z[2 * j + 1]);
  }
  const __m512i i20 = _mm512_load_si512(kIndex.s2[0]);
  const __m512i i21 = _mm512_load_si512(kIndex.s2[1]);
  const __m512i i30 = _mm512_load_si512(kIndex.s3[0]);
  const __m512i i31 = _mm512_load_si512(kIndex.s3[1]);
  GEMMAC_UNROLL
  for (int h = 0; h < 2; ++h)
    GEMMAC_UNROLL
  for (int e = 0; e < 2; ++e) {
    const __m512i ie = e == 0 ? i20 : i21;
    const __m512i t0 = _mm512_permutex2var_epi32(s[0][h], ie, s[1][h]);
    const __m512i t1 = _mm512_permutex2var_epi32(s[2][h], ie, s[3][h]);
    const int kk = 4 * h + 2 * e;
    _mm512_store_si512(dst + kk * 64, _mm512_permutex2var_epi32(t0, i30, t1));
    _mm512_store_si512(dst + (kk + 1) * 64,
                       _mm512_permutex2var_epi32(t0, i31, t1));
  }
}

// 4-bit codes of 4 rows (16 bytes each, one row per 128-bit lane; element j
// is the low nibble of byte j, j + 16 the high one) as int8 code - 8, rows
// written 32 bytes apart from dst.
GEMMAC_AMX_INLINE void UnpackQ4Rows4(const uint8_t *qs, int8_t *dst) {
  const __m512i q = _mm512_loadu_si512(qs);
  const __m512i low4 = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
  const __m512i lo = _mm512_sub_epi8(_mm512_and_si512(q, low4), eight);
  const __m512i hi =
      _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(q, 4), low4), eight);
  // Row r = lane r of lo, then lane r of hi.
  const __m512i r01 = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
  const __m512i r23 = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
  _mm512_storeu_si512(dst, _mm512_permutex2var_epi64(lo, r01, hi));
  _mm512_storeu_si512(dst + 64, _mm512_permutex2var_epi64(lo, r23, hi));
}

// The weight formats, one 32-column block of the panel's rows at a time:
// Block(b, rows, codes, scale, mins) points rows[r] at the 32 int8 codes of
// row n0 + r and, for kBlockScale, writes the rows' block scales to scale[r]
// (and for kHasMin their offsets m to mins[r]), for r < nr at least;
// PackPanel has made the rows past nr zero.
struct Q8CPanel {
  static constexpr bool kBlockScale = false;
  static constexpr bool kHasMin = false;
  const int8_t *q;
  const uint8_t *scales;
  int64_t cols, n0, nr;
  Q8CPanel(const WeightMatrix &w, int64_t n0_, int64_t nr_)
      : q(static_cast<const int8_t *>(w.data)),
        scales(static_cast<const uint8_t *>(w.data) + w.rows * w.cols),
        cols(w.cols), n0(n0_), nr(nr_) {}
  GEMMAC_AMX_INLINE void Block(int64_t b, const int8_t **rows, int8_t *,
                               float *, float *) const {
    for (int64_t r = 0; r < nr; ++r)
      rows[r] = q + (n0 + r) * cols + b * kActBlock;
  }
};

struct Q4G32Panel {
  static constexpr bool kBlockScale = true;
  static constexpr bool kHasMin = false;
  const uint8_t *base;
  int64_t row_bytes, n0, nr;
  Q4G32Panel(const WeightMatrix &w, int64_t n0_, int64_t nr_)
      : base(static_cast<const uint8_t *>(w.data)),
        row_bytes(w.cols / kActBlock * 18), n0(n0_), nr(nr_) {}
  GEMMAC_AMX_INLINE void Block(int64_t b, const int8_t **rows, int8_t *codes,
                               float *scale, float *) const {
    const __m128i low4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    for (int64_t r = 0; r < nr; ++r) {
      const uint8_t *blk = base + (n0 + r) * row_bytes + b * 18;
      const __m128i q =
          _mm_loadu_si128(reinterpret_cast<const __m128i *>(blk + 2));
      int8_t *c = codes + r * kActBlock;
      _mm_storeu_si128(reinterpret_cast<__m128i *>(c),
                       _mm_sub_epi8(_mm_and_si128(q, low4), eight));
      _mm_storeu_si128(
          reinterpret_cast<__m128i *>(c + 16),
          _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), low4), eight));
      rows[r] = c;
      scale[r] = LoadF16(blk);
    }
  }
};

struct Q4G32R8Panel {
  static constexpr bool kBlockScale = true;
  static constexpr bool kHasMin = false;
  const uint8_t *base;
  int64_t group_bytes, n0, nr;
  Q4G32R8Panel(const WeightMatrix &w, int64_t n0_, int64_t nr_)
      : base(static_cast<const uint8_t *>(w.data)),
        group_bytes(w.cols / kActBlock * Q4G32R8Rows::kRunBytes), n0(n0_),
        nr(nr_) {}
  GEMMAC_AMX_INLINE void Block(int64_t b, const int8_t **rows, int8_t *codes,
                               float *scale, float *) const {
    // The panel's groups of 8 rows; the second exists when nr > 8 (a packed
    // matrix has whole groups, so rows past nr in it are real).
    for (int64_t g = 0; g * 8 < nr; ++g) {
      const uint8_t *run =
          base + (n0 / 8 + g) * group_bytes + b * Q4G32R8Rows::kRunBytes;
      _mm256_storeu_ps(scale + 8 * g,
                       _mm256_cvtph_ps(_mm_loadu_si128(
                           reinterpret_cast<const __m128i *>(run))));
      int8_t *c = codes + 8 * g * kActBlock;
      UnpackQ4Rows4(run + 16, c);
      UnpackQ4Rows4(run + 16 + 64, c + 4 * kActBlock);
      for (int64_t r = 0; r < 8; ++r)
        rows[8 * g + r] = c + r * kActBlock;
    }
  }
};

// Q4G128: 128-column groups {f16 d, f16 m, 64 nibble bytes}; 32-column
// block s of a group is bytes (s % 2) * 32 .. + 32, low nibbles for s < 2,
// high for s >= 2, unsigned codes 0..15 (w = code * d + m).
struct Q4G128Panel {
  static constexpr bool kBlockScale = true;
  static constexpr bool kHasMin = true;
  const uint8_t *base;
  int64_t row_bytes, n0, nr;
  Q4G128Panel(const WeightMatrix &w, int64_t n0_, int64_t nr_)
      : base(static_cast<const uint8_t *>(w.data)),
        row_bytes(w.cols / 128 * 68), n0(n0_), nr(nr_) {}
  GEMMAC_AMX_INLINE void Block(int64_t b, const int8_t **rows, int8_t *codes,
                               float *scale, float *mins) const {
    const int64_t g = b / 4, sb = b % 4;
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    for (int64_t r = 0; r < nr; ++r) {
      const uint8_t *blk = base + (n0 + r) * row_bytes + g * 68;
      __m256i q = _mm256_loadu_si256(
          reinterpret_cast<const __m256i *>(blk + 4 + (sb % 2) * 32));
      if (sb >= 2)
        q = _mm256_srli_epi16(q, 4);
      int8_t *c = codes + r * kActBlock;
      _mm256_storeu_si256(reinterpret_cast<__m256i *>(c),
                          _mm256_and_si256(q, low4));
      rows[r] = c;
      scale[r] = LoadF16(blk);
      mins[r] = LoadF16(blk + 2);
    }
  }
};

// Packs blocks [0, blocks) of the panel's nr rows into s.pack (and s.scale,
// s.mins); rows past nr are zero codes with zero scales.
template <class Src>
GEMMAC_AMX_INLINE void PackPanel(const Src &src, int64_t nr, int64_t blocks,
                                 PanelScratch &s) {
  const int8_t *rows[kPanelRows];
  for (int64_t r = nr; r < kPanelRows; ++r)
    rows[r] = kZeroBlock;
  for (int64_t b = 0; b < blocks; ++b) {
    float *scale = s.scale + b * kPanelRows, *mins = s.mins + b * kPanelRows;
    for (int64_t r = nr; r < kPanelRows; ++r)
      scale[r] = mins[r] = 0.0f;
    src.Block(b, rows, s.codes, scale, mins);
    Transpose(rows, s.pack + b * kBlockBytes);
  }
}

// acc[t] += float(c[t]) * (d[t] (x ws)) (+ wm * e[t]): one block's sums
// of a token tile, scaled (d: the tokens' scales of the block, Acts::xdp;
// ws, wm: the rows' block scales and offsets; e: the tokens' d * code sum,
// Acts::xep).
template <class Src>
GEMMAC_AMX_INLINE void ScaleInto(const TileBlock &c, const float *d,
                                 const float *e, const float *ws,
                                 const float *wm, __m512 *acc) {
  __m512 w, m;
  if constexpr (Src::kBlockScale)
    w = _mm512_load_ps(ws);
  if constexpr (Src::kHasMin)
    m = _mm512_load_ps(wm);
  GEMMAC_UNROLL
  for (int t = 0; t < kPanelRows; ++t) {
    const __m512 sum =
        _mm512_cvtepi32_ps(_mm512_load_si512(c.v + t * kPanelRows));
    __m512 sc = _mm512_set1_ps(d[t]);
    if constexpr (Src::kBlockScale)
      sc = _mm512_mul_ps(w, sc);
    acc[t] = _mm512_fmadd_ps(sum, sc, acc[t]);
    if constexpr (Src::kHasMin)
      acc[t] = _mm512_fmadd_ps(m, _mm512_set1_ps(e[t]), acc[t]);
  }
}

// Blocks [b0, b1) of one token tile into acc: four blocks in flight on
// C0..C3, each group's sums stored and then scaled while the next group's
// tdpbssd run (scaling a C tile right after storing it would wait for the
// store); the last blocks of a chunk one at a time.
template <class Src>
GEMMAC_AMX_INLINE void TokenTileBlocks(const int8_t *xq, const float *xd,
                                       const float *xe, const PanelScratch &s,
                                       int64_t b0, int64_t b1, __m512 *acc) {
  TileBlock ring[4];
  const int8_t *pack = s.pack;
  const float *ws = s.scale, *wm = s.mins;
  // (A macro, not a lambda: a lambda would not inherit the target.)
#define GEMMAC_SCALE(j, blk)                                                   \
  ScaleInto<Src>(ring[j], xd + (blk)*kPanelRows, xe + (blk)*kPanelRows,        \
                 ws + (blk)*kPanelRows, wm + (blk)*kPanelRows, acc)
  // Block blk's sums into C tile c, through A tile ta and B tile tb.
#define GEMMAC_SUMS(c, ta, tb, blk)                                            \
  GEMMAC_TILE_LOAD(ta, xq + (blk)*kBlockBytes, kActBlock);                     \
  GEMMAC_TILE_LOAD(tb, pack + (blk)*kBlockBytes, 64);                          \
  GEMMAC_TILE_ZERO(c);                                                         \
  GEMMAC_TILE_DPBSSD(c, ta, tb)
  int64_t b = b0;
  for (; b + 4 <= b1; b += 4) {
    GEMMAC_SUMS(0, 4, 6, b);
    GEMMAC_SUMS(1, 5, 7, b + 1);
    if (b > b0) {
      GEMMAC_SCALE(0, b - 4);
      GEMMAC_SCALE(1, b - 3);
    }
    GEMMAC_SUMS(2, 4, 6, b + 2);
    GEMMAC_SUMS(3, 5, 7, b + 3);
    if (b > b0) {
      GEMMAC_SCALE(2, b - 2);
      GEMMAC_SCALE(3, b - 1);
    }
    GEMMAC_TILE_STORE(0, ring[0].v);
    GEMMAC_TILE_STORE(1, ring[1].v);
    GEMMAC_TILE_STORE(2, ring[2].v);
    GEMMAC_TILE_STORE(3, ring[3].v);
  }
  if (b > b0)
    for (int j = 0; j < 4; ++j)
      GEMMAC_SCALE(j, b - 4 + j);
  for (; b < b1; ++b) {
    GEMMAC_SUMS(0, 4, 6, b);
    GEMMAC_TILE_STORE(0, ring[0].v);
    GEMMAC_SCALE(0, b);
  }
#undef GEMMAC_SUMS
#undef GEMMAC_SCALE
}

template <class Src>
GEMMAC_AMX void PanelKernel(const WeightMatrix &w, int64_t n0, int64_t nr,
                            const Acts &a, float *y, int64_t ldy) {
  const Src src(w, n0, nr);
  const int64_t blocks = a.K / kActBlock, qb = a.qstride / kActBlock;
  const int64_t tiles = a.rows / kPanelRows;
  PanelScratch &s = ThreadScratch();
  s.Reserve(blocks, a.rows);
  PackPanel(src, nr, blocks, s);
  // Row scales (Q8C) for the last step; lanes past nr are never stored.
  const __mmask16 mask = __mmask16((1u << nr) - 1);
  __m512 row_scale = _mm512_set1_ps(1.0f);
  if constexpr (std::is_same_v<Src, Q8CPanel>)
    row_scale = _mm512_maskz_loadu_ps(
        mask, reinterpret_cast<const float *>(src.scales + 4 * n0));

  GEMMAC_COMPILER_BARRIER(); // the packed panel is in memory
  __asm__ volatile("ldtilecfg %0" ::"m"(kTileConfig));
  // Chunks of whole groups of four blocks, about equal.
  const int64_t chunks = (blocks + kChunkBlocks - 1) / kChunkBlocks;
  const int64_t per_chunk = ((blocks + chunks - 1) / chunks + 3) / 4 * 4;
  for (int64_t b0 = 0; b0 < blocks; b0 += per_chunk) {
    const int64_t b1 = std::min(blocks, b0 + per_chunk);
    for (int64_t tt = 0; tt < tiles; ++tt) {
      float *saved = s.acc + tt * kPanelRows * kPanelRows;
      __m512 acc[kPanelRows];
      GEMMAC_UNROLL
      for (int t = 0; t < kPanelRows; ++t)
        acc[t] = b0 == 0 ? _mm512_setzero_ps()
                         : _mm512_load_ps(saved + t * kPanelRows);
      TokenTileBlocks<Src>(a.xqp + tt * kPanelRows * a.qstride,
                           a.xdp + tt * kPanelRows * qb,
                           a.xep + tt * kPanelRows * qb, s, b0, b1, acc);
      if (b1 < blocks) {
        GEMMAC_UNROLL
        for (int t = 0; t < kPanelRows; ++t)
          _mm512_store_ps(saved + t * kPanelRows, acc[t]);
        continue;
      }
      const int64_t nt = std::min(kPanelRows, a.T - tt * kPanelRows);
      float *yt = y + tt * kPanelRows * ldy;
      GEMMAC_UNROLL
      for (int t = 0; t < kPanelRows; ++t)
        if (t < nt)
          _mm512_mask_storeu_ps(yt + t * ldy, mask,
                                _mm512_mul_ps(acc[t], row_scale));
    }
  }
  __asm__ volatile("tilerelease" ::);
}

// BF16 weights against the bf16 hi and lo rows (Acts::xbp). Per panel,
// each 32-column block of the 16 weight rows is packed in tdpbf16ps's B
// order (B row i = the bf16 pairs of columns 2i, 2i + 1 of every weight
// row: two of the 16 x 8 dword transposes). Then four 16-token tiles at a
// time accumulate their whole rows, hi and lo, in C0..C3 (f32, no
// per-block scaling), sharing each loaded B tile; the rest one at a time.
GEMMAC_AMX void Bf16PanelKernel(const WeightMatrix &w, int64_t n0, int64_t nr,
                                const Acts &a, float *y, int64_t ldy) {
  const uint16_t *wb = static_cast<const uint16_t *>(w.data);
  const int64_t K = a.K, blocks = K / kActBlock;
  const int64_t tiles = a.rows / kPanelRows;
  constexpr int64_t kPackBytes = 2 * kBlockBytes; // 16 x 64 B per block
  constexpr int64_t kPart = 2 * kBlockBytes;      // a 16 x 32 bf16 tile
  PanelScratch &s = ThreadScratch();
  s.Reserve(2 * blocks, a.rows);
  for (int64_t b = 0; b < blocks; ++b) {
    const int8_t *rows[kPanelRows];
    for (int64_t r = 0; r < kPanelRows; ++r)
      rows[r] = r < nr ? reinterpret_cast<const int8_t *>(wb + (n0 + r) * K +
                                                          b * kActBlock)
                       : kZeroBlock;
    int8_t *dst = s.pack + b * kPackBytes;
    Transpose(rows, dst);
    for (int64_t r = 0; r < kPanelRows; ++r)
      rows[r] += 32; // the block's second 16 columns: B rows 8..15
    Transpose(rows, dst + kBlockBytes);
  }
  const __mmask16 mask = __mmask16((1u << nr) - 1);
  const int8_t *xb = reinterpret_cast<const int8_t *>(a.xbp);
  const int64_t tile_stride = 2 * kPart;            // next 16-token tile
  const int64_t block_stride = tiles * tile_stride; // next block
  TileBlock out[4];

  GEMMAC_COMPILER_BARRIER(); // the packed panel is in memory
  __asm__ volatile("ldtilecfg %0" ::"m"(kBf16TileConfig));
  const int8_t *pack = s.pack;
  int64_t tt = 0;
  int n = 0; // tiles in out[]
  for (; tt < tiles; tt += n) {
    const int8_t *x0 = xb + tt * tile_stride;
    if (tt + 4 <= tiles) {
      n = 4;
      GEMMAC_TILE_ZERO(0);
      GEMMAC_TILE_ZERO(1);
      GEMMAC_TILE_ZERO(2);
      GEMMAC_TILE_ZERO(3);
      for (int64_t b = 0; b < blocks; ++b) {
        const int8_t *xk = x0 + b * block_stride;
// The four hi parts, then the four lo parts: consecutive products into
// one C tile would wait for each other.
#define GEMMAC_BF16_GROUP(B)                                                   \
  GEMMAC_TILE_LOAD(B, pack + b * kPackBytes, 64);                              \
  GEMMAC_TILE_LOAD(4, xk, 64);                                                 \
  GEMMAC_TILE_DPBF16PS(0, 4, B);                                               \
  GEMMAC_TILE_LOAD(5, xk + tile_stride, 64);                                   \
  GEMMAC_TILE_DPBF16PS(1, 5, B);                                               \
  GEMMAC_TILE_LOAD(4, xk + 2 * tile_stride, 64);                               \
  GEMMAC_TILE_DPBF16PS(2, 4, B);                                               \
  GEMMAC_TILE_LOAD(5, xk + 3 * tile_stride, 64);                               \
  GEMMAC_TILE_DPBF16PS(3, 5, B);                                               \
  GEMMAC_TILE_LOAD(4, xk + kPart, 64);                                         \
  GEMMAC_TILE_DPBF16PS(0, 4, B);                                               \
  GEMMAC_TILE_LOAD(5, xk + tile_stride + kPart, 64);                           \
  GEMMAC_TILE_DPBF16PS(1, 5, B);                                               \
  GEMMAC_TILE_LOAD(4, xk + 2 * tile_stride + kPart, 64);                       \
  GEMMAC_TILE_DPBF16PS(2, 4, B);                                               \
  GEMMAC_TILE_LOAD(5, xk + 3 * tile_stride + kPart, 64);                       \
  GEMMAC_TILE_DPBF16PS(3, 5, B)
        // Alternate the B tile, so that loading the next block's does not
        // wait for this block's last product.
        if (b % 2 == 0) {
          GEMMAC_BF16_GROUP(6);
        } else {
          GEMMAC_BF16_GROUP(7);
        }
#undef GEMMAC_BF16_GROUP
      }
      GEMMAC_TILE_STORE(0, out[0].v);
      GEMMAC_TILE_STORE(1, out[1].v);
      GEMMAC_TILE_STORE(2, out[2].v);
      GEMMAC_TILE_STORE(3, out[3].v);
    } else {
      n = 1;
      GEMMAC_TILE_ZERO(0);
      for (int64_t b = 0; b < blocks; ++b) {
        const int8_t *xk = x0 + b * block_stride;
        GEMMAC_TILE_LOAD(6, pack + b * kPackBytes, 64);
        GEMMAC_TILE_LOAD(4, xk, 64);
        GEMMAC_TILE_DPBF16PS(0, 4, 6);
        GEMMAC_TILE_LOAD(5, xk + kPart, 64);
        GEMMAC_TILE_DPBF16PS(0, 5, 6);
      }
      GEMMAC_TILE_STORE(0, out[0].v);
    }
    for (int j = 0; j < n; ++j) {
      const int64_t t0 = (tt + j) * kPanelRows;
      const int64_t nt = std::min(kPanelRows, a.T - t0);
      for (int64_t t = 0; t < nt; ++t)
        _mm512_mask_storeu_ps(
            y + (t0 + t) * ldy, mask,
            _mm512_castsi512_ps(_mm512_load_si512(out[j].v + t * kPanelRows)));
    }
  }
  __asm__ volatile("tilerelease" ::);
}

} // namespace

const PanelKernels &AmxPanels() {
  static const PanelKernels k{&PanelKernel<Q8CPanel>, &PanelKernel<Q4G32Panel>,
                              &PanelKernel<Q4G32R8Panel>,
                              &PanelKernel<Q4G128Panel>, &Bf16PanelKernel};
  return k;
}

} // namespace gemmac::cpu

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#else // not x86-64: no amx level; CanRun(Isa::kAmx) is false there.

namespace gemmac::cpu {
const PanelKernels &AmxPanels() {
  static const PanelKernels k;
  return k;
}
} // namespace gemmac::cpu

#endif
