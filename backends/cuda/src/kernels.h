// The CUDA plugin's kernels, as host functions that enqueue them on a stream.
// Every pointer is device-accessible (device or managed memory); the plugin
// (plugin.cc) resolves host pointers before calling these. Each returns the
// launch's error (gpuGetLastError), never synchronizes.
#ifndef GEMMAC_BACKENDS_CUDA_KERNELS_H_
#define GEMMAC_BACKENDS_CUDA_KERNELS_H_

#include <cstdint>

#include "gpu_compat.h"

namespace gemmac_cuda {

// A weight matrix [rows, cols] (or a vector: rows 1) in any gemmac_dtype
// weight format (docs/quantization.md), decoded element by element.
struct Weight {
  const void *data;
  int32_t dtype;
  int64_t rows, cols;
};

enum class Eltwise { kGelu, kMul, kAdd, kSoftcap, kScale, kMulGeluOf };

// out[t] = f32(table[ids[t]]) * scale; ids already checked to be in range.
gpuError_t Embed(const int32_t *ids, int64_t T, Weight table, float scale,
                 float *y, gpuStream_t s);
// Groups of D = norm.cols consecutive elements of each row of N; in place ok.
gpuError_t RmsNorm(const float *x, int64_t T, int64_t N, Weight norm, float eps,
                   float offset, float *y, gpuStream_t s);
// y[t, n] = x[t] . w[n] for n < N (N <= w.rows), x rows of w.cols.
gpuError_t Matmul(const float *x, int64_t T, Weight w, int64_t N, float *y,
                  gpuStream_t s);
// Split-half RoPE over heads of D in rows of W; in place ok.
gpuError_t Rope(const float *x, int64_t T, int64_t W, int64_t D, float theta,
                float rope_scale, int64_t past, float *y, gpuStream_t s);
// y = op(a[, b]) over n elements; kMulGeluOf is y = a * gelu(b).
gpuError_t Elementwise(Eltwise op, const float *a, const float *b, float attr,
                       int64_t n, float *y, gpuStream_t s);

struct KvArgs {
  void *k, *v;
  float *k_scale, *v_scale; // i8 caches only
  bool i8;
  int64_t capacity, kv_heads, head_dim;
};
// Writes rows t of k_in/v_in at cache rows (past + t) % capacity (the last
// token wins when T > capacity, as the reference's sequential writes do).
gpuError_t KvWrite(const float *k_in, const float *v_in, int64_t T,
                   int64_t past, KvArgs kv, gpuStream_t s);
// One warp per (token, head): online softmax over the visible cache rows.
// head_dim <= kMaxHeadDim. When the visible rows are many and the (token,
// head) pairs few (decode at long context), the rows are split across
// AttentionSplits() warps per pair (flash-decoding) and the partial softmax
// states combined; `workspace` then holds AttentionWorkspaceFloats() floats
// (null when that is 0).
constexpr int kMaxHeadDim = 256;
int64_t AttentionSplits(int64_t T, int64_t past, int64_t heads, int32_t window);
int64_t AttentionWorkspaceFloats(int64_t T, int64_t past, int64_t heads,
                                 int32_t window, int64_t head_dim);
gpuError_t Attention(const float *q, int64_t T, int64_t past, int64_t heads,
                     float scale, int32_t window, float softcap, KvArgs kv,
                     float *workspace, float *y, gpuStream_t s);

} // namespace gemmac_cuda

#endif // GEMMAC_BACKENDS_CUDA_KERNELS_H_
