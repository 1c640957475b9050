// The CPU backend's compute kernels, one function per op of docs/ops.md.
//
// plugin.cc validates operands and attributes, then calls these inside the
// backend's task arena; they trust their arguments and parallelize with
// tbb::parallel_for. The only memory they take is the launching thread's
// buffer of prepared rows (tiles.h), which grows to the largest request and
// is then reused (a failure is launch's "out of memory"). Weights are read in
// place in their stored dtype (see numeric.h). The matrix products run on the
// tile kernels of tiles.h at the CPU's instruction-set level.
#ifndef GEMMAC_BACKENDS_CPU_KERNELS_H_
#define GEMMAC_BACKENDS_CPU_KERNELS_H_

#include <cstdint>

#include "numeric.h"

namespace gemmac::cpu {

// out[t, :] = f32(table[tokens[t], :]) * scale for a table [V, H] of any
// weight dtype (a quantized row is dequantized as it is read). Token ids are
// checked by the caller.
void Embed(const int32_t *tokens, int64_t T, const WeightMatrix &table,
           float scale, float *out);

// Each group of D consecutive elements of each row of x[T, N]:
// y = x * rsqrt(mean(x^2) + eps) * (offset + w). May run in place.
void RmsNorm(const float *x, int64_t T, int64_t N, const void *w,
             int32_t w_dtype, int64_t D, float eps, float offset, float *y);

// y[T, N] = x[T, K] @ w[:N, :]^T for w [rows >= N, K] of any weight dtype,
// parallel over N. Also the lm_head kernel (the first N rows of the
// embedding table).
void Linear(const float *x, int64_t T, int64_t K, const WeightMatrix &w,
            int64_t N, float *y);

// Split-half rotary embedding of x[T, H*D] at positions past + t.
// inv_freq[i] = theta^(-2i/D), i < D/2, computed once at prepare. May run in
// place.
void Rope(const float *x, int64_t T, int64_t H, int64_t D, int64_t past,
          double rope_scale, const double *inv_freq, float *y);

struct AttentionArgs {
  const float *q; // [T, H*D]
  const float *k; // [T, KV*D]
  const float *v; // [T, KV*D]
  float *out;     // [T, H*D]; may alias q
  int64_t T, H, KV, D;
  int64_t past;
  float scale;
  int32_t window; // 0 = global
  float softcap;  // 0 = none
  // [capacity, KV, D], f32 or (with k_scale/v_scale) int8 with one f32 scale
  // per [capacity, KV] row.
  void *k_cache;
  void *v_cache;
  float *k_scale; // null for an f32 cache
  float *v_scale;
  int64_t capacity;
  // min(H / KV, kMaxUnitHeads) x D floats of accumulator per arena slot
  // (loops.h), allocated at prepare.
  float *scratch;
  int64_t scratch_stride;
  int64_t scratch_slots;
};

// Writes the T new k/v rows into the ring (an int8 cache stores each
// (position, KV head) row as round(x / s), s = max|x| / 127), then computes
// causal (optionally windowed, soft-capped) attention with a single-pass
// online softmax over the cached (dequantized) rows.
// The heads of a KV head are computed together (their cached rows are read
// once); when there are fewer such units than threads (decode), the keys
// are split in chunks whose softmax sums are merged after (split-K).
// Returns false only if TBB ran a body on a thread without an arena slot
// (no scratch to use); the output is then incomplete.
bool Attention(const AttentionArgs &a);

void GeluTanh(const float *x, int64_t n, float *y);
void Mul(const float *a, const float *b, int64_t n, float *y);
void Add(const float *a, const float *b, int64_t n, float *y);
void Softcap(const float *x, int64_t n, float cap, float *y);
void Scale(const float *x, int64_t n, float scale, float *y);

// Fused ops (fused.cc), each exactly the chain of docs/ops.md "Fused ops".
// Norm weights are f32; absent optional inputs are null. Outputs must not
// alias x (rows of x are read while outputs are written), except as noted.

// s = x + y; h = rms_norm(s, w) over rows of N. s may alias x or y, and h
// may alias x or y (each row is read completely before it is written).
void AddRmsNorm(const float *x, const float *y, int64_t T, int64_t N,
                const float *w, float eps, float offset, float *s, float *h);

struct QkvArgs {
  const float *x; // [T, K]
  int64_t T, K;
  const float *norm; // [K] or null
  WeightMatrix wq, wk, wv;
  const float *q_norm; // [D] or null
  const float *k_norm; // [D] or null
  int64_t H, KV, D;
  int64_t past;
  double rope_scale;
  const double *inv_freq; // theta^(-2i/D), i < D/2
  float eps, offset;
  float *q, *k, *v; // [T, H*D], [T, KV*D], [T, KV*D]
};
// The rows of wq, wk and wv in one parallel loop over the normalized x, then
// QK-norm and RoPE (positions past + t) per token in the epilogue.
void QkvProj(const QkvArgs &a);

// y[T, F] = gelu_tanh(x' @ w_gate^T) * (x' @ w_up^T), x' = norm ? rms_norm(x)
// : x. Each task computes the gate and up rows of its outputs together and
// writes the product: no [T, 2F] temporary.
void GatedMlp(const float *x, int64_t T, int64_t K, const float *norm,
              const WeightMatrix &w_gate, const WeightMatrix &w_up, float eps,
              float offset, float *y);

// y = rms_norm(x, norm) @ table[:R]^T, soft-capped when softcap > 0, for the
// T rows of x, or (last_only) only row T - 1 into y[1, R].
void FinalHead(const float *x, int64_t T, int64_t H, const float *norm,
               const WeightMatrix &table, int64_t R, float eps, float offset,
               float softcap, bool last_only, float *y);

} // namespace gemmac::cpu

#endif // GEMMAC_BACKENDS_CPU_KERNELS_H_
