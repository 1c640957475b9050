// Loops other than the tile kernels that are worth vectorizing wider than
// the baseline, at every instruction-set level: the same C++ source
// (loops.inc) compiled for the baseline, AVX2 and AVX-512, where its
// `omp simd` loops become 4-, 8- or 16-lane code. Now: the attention loop
// over cached rows (kernels.cc's Attention after the new rows are stored),
// gated_mlp's GELU epilogue, the Q8 codes of PrepareActs and the bf16
// split of the panel kernels' rows.
#ifndef GEMMAC_BACKENDS_CPU_LOOPS_H_
#define GEMMAC_BACKENDS_CPU_LOOPS_H_

#include <cstdint>

#include "cpu_features.h"
#include "kernels.h"

namespace gemmac::cpu {

// How one attention launch is cut into units (kernels.cc's Attention). A
// unit is one position t, gs consecutive query heads of one KV head (gs
// divides H / KV, gs <= kMaxUnitHeads) and one of `chunks` consecutive
// ranges of its keys. With nsub = (H / KV) / gs, unit u is chunk u % chunks
// of b = u / chunks: t = b / (KV * nsub), KV head b / nsub % KV, heads from
// kv * (H / KV) + b % nsub * gs.
constexpr int64_t kMaxUnitHeads = 8;
struct AttendPlan {
  int64_t gs = 1;
  int64_t chunks = 1;
};

// Where the heads of unit group b = u / chunks sit: position t, KV head
// kv_head, first query head h0 (the layout above, in one place for the
// attention loop and kernels.cc's merge).
struct UnitHeads {
  int64_t t, kv_head, h0;
};
inline UnitHeads UnitOf(const AttentionArgs &a, const AttendPlan &plan,
                        int64_t b) {
  const int64_t group = a.H / a.KV, nsub = group / plan.gs;
  const int64_t kv_head = b / nsub % a.KV;
  return {b / (a.KV * nsub), kv_head, kv_head * group + b % nsub * plan.gs};
}

// Attention of units [begin, end) over the cache: causal, windowed when
// a.window > 0, soft-capped when a.softcap > 0. acc holds gs * a.D floats of
// scratch. Keys are taken in blocks of 16: their scores first, then one
// online-softmax rescale per block and head (running max m, running sum l
// of exp(s - m), acc of exp(s - m) * v). With partial null (chunks == 1)
// the normalized rows go to a.out; otherwise each unit's heads write
// {acc[D], m, l} to partial[(u * gs + g) * (D + 2)], for MergeChunks.
using AttendFn = void (*)(const AttentionArgs &a, const AttendPlan &plan,
                          int64_t begin, int64_t end, float *acc,
                          float *partial);

// o[j] = gelu_tanh(g[j]) * u[j] for j < n (GeluTanhF, numeric.h).
using GeluMulFn = void (*)(const float *g, const float *u, int64_t n, float *o);

// The Q8 codes of one prepared row (tiles.h's rule): blocks of 32 of
// x[0, K), codes zero past K up to qstride; d and s get qstride / 32 block
// scales and code sums. Every level computes the same codes.
using QuantizeRowFn = void (*)(const float *x, int64_t K, int64_t qstride,
                               int8_t *q, float *d, int32_t *s);

// x[0, n) split into bf16 parts hi = bf16(x), lo = bf16(x - hi), both
// rounded to nearest even (F32ToBf16): the bf16 panel kernel's rows
// (tiles.h).
using SplitBf16Fn = void (*)(const float *x, int64_t n, uint16_t *hi,
                             uint16_t *lo);

struct LevelLoops {
  AttendFn f32 = nullptr; // f32 cache
  AttendFn i8 = nullptr;  // int8 cache with per-row scales
  GeluMulFn gelu_mul = nullptr;
  QuantizeRowFn quantize_row = nullptr;
  SplitBf16Fn split_bf16 = nullptr;
};

const LevelLoops &ScalarLoops();
const LevelLoops &Avx2Loops();
const LevelLoops &Avx512Loops();

// The loops of ActiveIsa().
const LevelLoops &ActiveLoops();

} // namespace gemmac::cpu

#endif // GEMMAC_BACKENDS_CPU_LOOPS_H_
