// The portable level of tiles.h: PrepareActs, the scalar TileFns (the
// reference the SIMD levels are tested against) and the dispatch. Loops are
// plain C++ over small blocks; `omp simd` lets the baseline compiler
// vectorize what it can.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "loops.h"
#include "tiles.h"

namespace gemmac::cpu {
namespace {

using Range = tbb::blocked_range<int64_t>;

// Weights decoded to f32 per block of the format (the row views in
// numeric.h) against the f32 rows: the float formats, and the quantized
// ones under GEMMAC_CPU_F32_ACTS. Per block, the products are summed in
// f32, scaled by the block's d (plus m times the block's sum of x for
// Q4G128), and the row's scale applies last.
template <class F, int NT>
void DecodedTileN(const WeightMatrix &w, int64_t n0, int64_t nr, const Acts &a,
                  int64_t t, float *out) {
  const F f(w);
  const int64_t K = a.K;
  alignas(64) float v[F::kBlock];
  for (int64_t r = 0; r < nr; ++r) {
    float acc[NT] = {};
    for (int64_t k0 = 0; k0 < K; k0 += F::kBlock) {
      const int64_t len = std::min<int64_t>(F::kBlock, K - k0);
      const BlockTerms bt = f.Decode(n0 + r, k0, len, v);
      for (int i = 0; i < NT; ++i) {
        const float *x = a.xf + (t + i) * K + k0;
        float s = 0.0f, z = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < len; ++j)
          s += v[j] * x[j];
        if constexpr (F::kHasMin) {
#pragma omp simd reduction(+ : z)
          for (int64_t j = 0; j < len; ++j)
            z += x[j];
          acc[i] += bt.d * s + bt.m * z;
        } else if constexpr (F::kHasBlockScale) {
          acc[i] += bt.d * s;
        } else {
          acc[i] += s;
        }
      }
    }
    const float rs = F::kHasRowScale ? f.RowScale(n0 + r) : 1.0f;
    for (int i = 0; i < NT; ++i)
      out[r * kTokenGroup + i] = acc[i] * rs;
  }
}

// The exact integer sum of 32 weight codes with 32 activation codes.
inline int32_t BlockDot(const int8_t *c, const int8_t *q, int64_t len) {
  int32_t s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < len; ++j)
    s += int32_t(c[j]) * int32_t(q[j]);
  return s;
}

// Codes of a 16-byte nibble block: element j is b[j] & 15, j + 16 is b[j] >> 4,
// minus `zero` (8 for Q4G32, 0 for Q4G128's unsigned codes).
inline void Nibbles(const uint8_t *b, int zero, int8_t *c) {
  for (int j = 0; j < 16; ++j) {
    c[j] = int8_t(int(b[j] & 15) - zero);
    c[j + 16] = int8_t(int(b[j] >> 4) - zero);
  }
}

template <int NT>
void Q8CTileN(const WeightMatrix &w, int64_t n0, int64_t nr, const Acts &a,
              int64_t t, float *out) {
  const Q8CRows f(w);
  const int64_t K = a.K, nb = a.qstride / kActBlock;
  for (int64_t r = 0; r < nr; ++r) {
    const int8_t *row = f.q + (n0 + r) * K;
    float acc[NT] = {};
    for (int64_t b = 0; b < nb && b * kActBlock < K; ++b) {
      const int64_t k0 = b * kActBlock;
      const int64_t len = std::min(kActBlock, K - k0);
      for (int i = 0; i < NT; ++i) {
        const int32_t s =
            BlockDot(row + k0, a.xq + (t + i) * a.qstride + k0, len);
        acc[i] += float(s) * a.xd[(t + i) * nb + b];
      }
    }
    const float rs = f.RowScale(n0 + r);
    for (int i = 0; i < NT; ++i)
      out[r * kTokenGroup + i] = acc[i] * rs;
  }
}

// Q4G32 and Q4G32R8: the block at (row n, block b) is 16 nibble bytes and
// an f16 d, found by Block().
template <class F, int NT>
void Q4G32TileN(const WeightMatrix &w, int64_t n0, int64_t nr, const Acts &a,
                int64_t t, float *out) {
  const F f(w);
  const int64_t nb = a.K / kActBlock, qb = a.qstride / kActBlock;
  alignas(64) int8_t c[kActBlock];
  for (int64_t r = 0; r < nr; ++r) {
    float acc[NT] = {};
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t *d16;
      const uint8_t *qs;
      f.Block(n0 + r, b, &d16, &qs);
      Nibbles(qs, 8, c);
      const float dw = LoadF16(d16);
      for (int i = 0; i < NT; ++i) {
        const int32_t s =
            BlockDot(c, a.xq + (t + i) * a.qstride + b * kActBlock, kActBlock);
        acc[i] += float(s) * (dw * a.xd[(t + i) * qb + b]);
      }
    }
    for (int i = 0; i < NT; ++i)
      out[r * kTokenGroup + i] = acc[i];
  }
}

struct Q4G32Blocks {
  const uint8_t *base;
  int64_t row_bytes;
  explicit Q4G32Blocks(const WeightMatrix &m)
      : base(static_cast<const uint8_t *>(m.data)),
        row_bytes(m.cols / 32 * 18) {}
  void Block(int64_t n, int64_t b, const uint8_t **d,
             const uint8_t **qs) const {
    *d = base + n * row_bytes + b * 18;
    *qs = *d + 2;
  }
};

struct Q4G32R8Blocks {
  const uint8_t *base;
  int64_t group_bytes;
  explicit Q4G32R8Blocks(const WeightMatrix &m)
      : base(static_cast<const uint8_t *>(m.data)),
        group_bytes(m.cols / 32 * Q4G32R8Rows::kRunBytes) {}
  void Block(int64_t n, int64_t b, const uint8_t **d,
             const uint8_t **qs) const {
    const uint8_t *run =
        base + (n / 8) * group_bytes + b * Q4G32R8Rows::kRunBytes;
    *d = run + 2 * (n % 8);
    *qs = run + 16 + 16 * (n % 8);
  }
};

// Q4G128: 128-column blocks {f16 d, f16 m, 64 nibble bytes}; element j is
// qs[j] & 15 (j < 64) or qs[j - 64] >> 4, so 32-column activation block s
// of the group reads bytes (s % 2) * 32 .. + 32, low nibbles for s < 2.
template <int NT>
void Q4G128TileN(const WeightMatrix &w, int64_t n0, int64_t nr, const Acts &a,
                 int64_t t, float *out) {
  const Q4G128Rows f(w);
  const int64_t groups = a.K / 128, qb = a.qstride / kActBlock;
  alignas(64) int8_t c[kActBlock];
  for (int64_t r = 0; r < nr; ++r) {
    float acc[NT] = {};
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t *blk = f.base + (n0 + r) * f.row_bytes + g * 68;
      const float dw = LoadF16(blk), mw = LoadF16(blk + 2);
      for (int s = 0; s < 4; ++s) {
        const uint8_t *qs = blk + 4 + (s % 2) * 32;
        for (int j = 0; j < 32; ++j)
          c[j] = int8_t(s < 2 ? qs[j] & 15 : qs[j] >> 4);
        const int64_t b = g * 4 + s;
        for (int i = 0; i < NT; ++i) {
          const int32_t dot = BlockDot(
              c, a.xq + (t + i) * a.qstride + b * kActBlock, kActBlock);
          const float db = a.xd[(t + i) * qb + b];
          acc[i] += dw * (db * float(dot)) +
                    mw * (db * float(a.xs[(t + i) * qb + b]));
        }
      }
    }
    for (int i = 0; i < NT; ++i)
      out[r * kTokenGroup + i] = acc[i];
  }
}

// The nt switch every TileFn shares.
template <template <int> class K>
void ByTokens(const WeightMatrix &w, int64_t n0, int64_t nr, const Acts &a,
              int64_t t, int64_t nt, float *out) {
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

template <class F> struct DecodedK {
  template <int NT> struct N {
    static void Run(const WeightMatrix &w, int64_t n0, int64_t nr,
                    const Acts &a, int64_t t, float *out) {
      DecodedTileN<F, NT>(w, n0, nr, a, t, out);
    }
  };
};
template <int32_t DType> using FloatK = DecodedK<FloatRows<Weight<DType>>>;
template <int NT> struct Q8CK {
  static void Run(const WeightMatrix &w, int64_t n0, int64_t nr, const Acts &a,
                  int64_t t, float *out) {
    Q8CTileN<NT>(w, n0, nr, a, t, out);
  }
};
template <class F> struct Q4K {
  template <int NT> struct N {
    static void Run(const WeightMatrix &w, int64_t n0, int64_t nr,
                    const Acts &a, int64_t t, float *out) {
      Q4G32TileN<F, NT>(w, n0, nr, a, t, out);
    }
  };
};
template <int NT> struct Q4G128K {
  static void Run(const WeightMatrix &w, int64_t n0, int64_t nr, const Acts &a,
                  int64_t t, float *out) {
    Q4G128TileN<NT>(w, n0, nr, a, t, out);
  }
};

TileKernels MakeScalar() {
  TileKernels k;
  k.f32 = &ByTokens<FloatK<GEMMAC_DTYPE_F32>::N>;
  k.bf16 = &ByTokens<FloatK<GEMMAC_DTYPE_BF16>::N>;
  k.f16 = &ByTokens<FloatK<GEMMAC_DTYPE_F16>::N>;
  k.q8c = &ByTokens<Q8CK>;
  k.q4g32 = &ByTokens<Q4K<Q4G32Blocks>::N>;
  k.q4g128 = &ByTokens<Q4G128K>;
  k.q4g32r8 = &ByTokens<Q4K<Q4G32R8Blocks>::N>;
  return k;
}

// GEMMAC_CPU_F32_ACTS=1: quantized weights meet the f32 rows.
TileKernels MakeF32Acts() {
  TileKernels k = MakeScalar();
  k.q8c = &ByTokens<DecodedK<Q8CRows>::N>;
  k.q4g32 = &ByTokens<DecodedK<Q4G32Rows>::N>;
  k.q4g128 = &ByTokens<DecodedK<Q4G128Rows>::N>;
  k.q4g32r8 = &ByTokens<DecodedK<Q4G32R8Rows>::N>;
  return k;
}

bool ReadF32Acts() {
  const char *env = std::getenv("GEMMAC_CPU_F32_ACTS");
  return env != nullptr && std::strcmp(env, "1") == 0;
}

TileFn Entry(const TileKernels &k, int32_t dtype) {
  switch (dtype) {
  case GEMMAC_DTYPE_BF16:
    return k.bf16;
  case GEMMAC_DTYPE_F16:
    return k.f16;
  case GEMMAC_DTYPE_Q8C:
    return k.q8c;
  case GEMMAC_DTYPE_Q4G32:
    return k.q4g32;
  case GEMMAC_DTYPE_Q4G128:
    return k.q4g128;
  case GEMMAC_DTYPE_Q4G32R8:
    return k.q4g32r8;
  default:
    return k.f32;
  }
}

} // namespace

const TileKernels &ScalarTiles() {
  static const TileKernels k = MakeScalar();
  return k;
}

bool F32ActsMode() {
  static const bool on = ReadF32Acts();
  return on;
}

bool NeedsCodes(int32_t dtype) { return IsQuantDType(dtype) && !F32ActsMode(); }

TileFn TileFor(int32_t dtype, Isa isa) {
  if (IsQuantDType(dtype) && F32ActsMode()) {
    static const TileKernels k = MakeF32Acts();
    return Entry(k, dtype);
  }
  if (isa >= Isa::kAvx512)
    if (TileFn f = Entry(Avx512Tiles(), dtype))
      return f;
  if (isa >= Isa::kAvx2)
    if (TileFn f = Entry(Avx2Tiles(), dtype))
      return f;
  return Entry(ScalarTiles(), dtype);
}

TileFn TileFor(int32_t dtype) { return TileFor(dtype, ActiveIsa()); }

PanelFn PanelFor(const WeightMatrix &w, Isa isa) {
  if (isa < Isa::kAmx || F32ActsMode() || w.cols % kActBlock != 0)
    return nullptr;
  const PanelKernels &k = AmxPanels();
  switch (w.dtype) {
  case GEMMAC_DTYPE_Q8C:
    return k.q8c;
  case GEMMAC_DTYPE_Q4G32:
    return k.q4g32;
  case GEMMAC_DTYPE_Q4G32R8:
    return k.q4g32r8;
  case GEMMAC_DTYPE_Q4G128:
    return k.q4g128;
  case GEMMAC_DTYPE_BF16:
    return k.bf16;
  default:
    return nullptr;
  }
}

PanelFn PanelFor(const WeightMatrix &w) { return PanelFor(w, ActiveIsa()); }

int PanelInputOf(int32_t dtype) {
  if (dtype == GEMMAC_DTYPE_BF16)
    return kPanelBf16;
  return IsQuantDType(dtype) ? kPanelCodes : kPanelNone;
}

ActsBuffer &ThreadActsBuffer() {
  thread_local ActsBuffer buf;
  return buf;
}

Acts PrepareActs(const float *x, int64_t T, int64_t K, const float *norm,
                 float offset, float eps, bool codes, ActsBuffer &buf,
                 int panel) {
  Acts a;
  a.T = T;
  a.K = K;
  a.xf = x;
  if (norm != nullptr) {
    if (int64_t(buf.xf.size()) < T * K)
      buf.xf.resize(T * K);
    a.xf = buf.xf.data();
  }
  if (codes) {
    a.qstride = (K + 63) / 64 * 64;
    a.rows = (panel & kPanelCodes)
                 ? (T + kPanelRows - 1) / kPanelRows * kPanelRows
                 : T;
    const int64_t nb = a.qstride / kActBlock, R = a.rows;
    if (int64_t(buf.xq.size()) < R * a.qstride)
      buf.xq.resize(R * a.qstride);
    if (int64_t(buf.xd.size()) < R * nb) {
      buf.xd.resize(R * nb);
      buf.xs.resize(R * nb);
    }
    a.xq = buf.xq.data();
    a.xd = buf.xd.data();
    a.xs = buf.xs.data();
    // The panel kernels' padding rows: codes that add nothing.
    std::memset(buf.xq.data() + T * a.qstride, 0, (R - T) * a.qstride);
    std::fill(buf.xd.data() + T * nb, buf.xd.data() + R * nb, 0.0f);
    std::fill(buf.xs.data() + T * nb, buf.xs.data() + R * nb, 0);
  }
  if (codes && (panel & kPanelCodes)) {
    if (int64_t(buf.xqp.size()) < a.rows * a.qstride) {
      buf.xqp.resize(a.rows * a.qstride);
      buf.xdp.resize(a.rows * a.qstride / kActBlock);
      buf.xep.resize(a.rows * a.qstride / kActBlock);
    }
    a.xqp = buf.xqp.data();
    a.xdp = buf.xdp.data();
    a.xep = buf.xep.data();
  }
  if (panel & kPanelBf16) {
    a.rows = (T + kPanelRows - 1) / kPanelRows * kPanelRows;
    if (int64_t(buf.xbp.size()) < 2 * a.rows * K)
      buf.xbp.resize(2 * a.rows * K);
    a.xbp = buf.xbp.data();
  }
  if (norm == nullptr && !codes && a.xbp == nullptr)
    return a; // the rows themselves: nothing to prepare
  float *xf = buf.xf.data();
  int8_t *xq = buf.xq.data();
  float *xd = buf.xd.data();
  int32_t *xs = buf.xs.data();
  const int64_t grain = std::max<int64_t>(1, 4096 / (K + 1));
  const QuantizeRowFn quantize = ActiveLoops().quantize_row;
  tbb::parallel_for(Range(0, T, grain), [&](const Range &r) {
    for (int64_t t = r.begin(); t < r.end(); ++t) {
      const float *src = x + t * K;
      if (norm != nullptr) {
        float *dst = xf + t * K;
        const float inv = RmsInv(src, K, eps);
#pragma omp simd
        for (int64_t k = 0; k < K; ++k)
          dst[k] = src[k] * inv * (offset + norm[k]);
        src = dst;
      }
      if (codes) {
        const int64_t nb = a.qstride / kActBlock;
        quantize(src, K, a.qstride, xq + t * a.qstride, xd + t * nb,
                 xs + t * nb);
      }
    }
  });
  if (a.xqp != nullptr) {
    // Each 16-row tile of codes as contiguous 16 x 32 blocks.
    const int64_t nb = a.qstride / kActBlock, tiles = a.rows / kPanelRows;
    int8_t *xqp = buf.xqp.data();
    float *xdp = buf.xdp.data(), *xep = buf.xep.data();
    tbb::parallel_for(Range(0, tiles), [&](const Range &r) {
      for (int64_t tile = r.begin(); tile < r.end(); ++tile)
        for (int64_t b = 0; b < nb; ++b)
          for (int64_t i = 0; i < kPanelRows; ++i) {
            const int64_t t = tile * kPanelRows + i;
            const int64_t at = (tile * nb + b) * kPanelRows + i;
            std::memcpy(xqp + at * kActBlock,
                        xq + t * a.qstride + b * kActBlock, kActBlock);
            xdp[at] = xd[t * nb + b];
            xep[at] = xd[t * nb + b] * float(xs[t * nb + b]);
          }
    });
  }
  if (a.xbp != nullptr) {
    // Each 16-row tile's bf16 hi and lo rows as contiguous 16 x 32 blocks;
    // the padding rows are zero.
    const int64_t nb = K / kActBlock, tiles = a.rows / kPanelRows;
    uint16_t *xbp = buf.xbp.data();
    const float *rows = a.xf;
    const SplitBf16Fn split = ActiveLoops().split_bf16;
    tbb::parallel_for(Range(0, tiles), [&](const Range &r) {
      for (int64_t tile = r.begin(); tile < r.end(); ++tile)
        for (int64_t i = 0; i < kPanelRows; ++i) {
          const int64_t t = tile * kPanelRows + i;
          for (int64_t b = 0; b < nb; ++b) {
            uint16_t *hi =
                xbp + ((b * tiles + tile) * 2 * kPanelRows + i) * kActBlock;
            uint16_t *lo = hi + kPanelRows * kActBlock;
            const float *src = rows + t * K + b * kActBlock;
            if (t >= T) {
              std::fill(hi, hi + kActBlock, uint16_t(0));
              std::fill(lo, lo + kActBlock, uint16_t(0));
              continue;
            }
            split(src, kActBlock, hi, lo);
          }
        }
    });
  }
  return a;
}

} // namespace gemmac::cpu
