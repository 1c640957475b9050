// The CPU backend's compute kernels, one function per op of docs/ops.md.
//
// plugin.cc validates operands and attributes, then calls these inside the
// backend's task arena; they trust their arguments, parallelize with
// tbb::parallel_for and never allocate. Weights are read in place in their
// stored dtype (see numeric.h). Keeping the loops here, apart from the ABI
// plumbing, makes each hot loop easy to find and to benchmark on its own.
#ifndef GEMMAC_BACKENDS_CPU_KERNELS_H_
#define GEMMAC_BACKENDS_CPU_KERNELS_H_

#include <cstdint>

namespace gemmac::cpu {

// out[t, :] = f32(table[tokens[t], :]) * scale. Token ids are checked by the
// caller.
void Embed(const int32_t *tokens, int64_t T, const void *table,
           int32_t table_dtype, int64_t H, float scale, float *out);

// Each group of D consecutive elements of each row of x[T, N]:
// y = x * rsqrt(mean(x^2) + eps) * (offset + w). May run in place.
void RmsNorm(const float *x, int64_t T, int64_t N, const void *w,
             int32_t w_dtype, int64_t D, float eps, float offset, float *y);

// y[T, N] = x[T, K] @ w[N, K]^T, parallel over N. Also the lm_head kernel
// (the first N rows of the embedding table).
void Linear(const float *x, int64_t T, int64_t K, const void *w,
            int32_t w_dtype, int64_t N, float *y);

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
  float *k_cache; // [capacity, KV, D]
  float *v_cache;
  int64_t capacity;
  // D floats of accumulator per arena slot, allocated at prepare.
  float *scratch;
  int64_t scratch_stride;
  int64_t scratch_slots;
};

// Writes the T new k/v rows into the ring, then computes causal (optionally
// windowed, soft-capped) attention with a single-pass online softmax.
// Returns false only if TBB ran a body on a thread without an arena slot
// (no scratch to use); the output is then incomplete.
bool Attention(const AttentionArgs &a);

void GeluTanh(const float *x, int64_t n, float *y);
void Mul(const float *a, const float *b, int64_t n, float *y);
void Add(const float *a, const float *b, int64_t n, float *y);
void Softcap(const float *x, int64_t n, float cap, float *y);
void Scale(const float *x, int64_t n, float scale, float *y);

} // namespace gemmac::cpu

#endif // GEMMAC_BACKENDS_CPU_KERNELS_H_
