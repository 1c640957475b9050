// The CUDA plugin's kernels. They mirror
// plugins/conformance/reference_plugin.cc op by op (same formulas, f32
// accumulation instead of the reference's double), written plainly: correctness
// first, one warp or block per independent piece of work. No CUDA-only names
// beyond gpu_compat.h and the kernel syntax HIP shares: backends/rocm compiles
// this file as HIP. Nothing assumes a warp of 32: kWarp is 32 on CUDA and 64
// on AMD wave64 targets, so lanes stride by kWarp and reductions run over
// log2(kWarp) shuffle steps (the same sums, in a different order).
#include <cmath>
#include <cstdint>

#include "gemmac/plugin.h"
#include "kernels.h"

namespace gemmac_cuda {
namespace {

constexpr int kWarp = GEMMAC_GPU_WARP;

__device__ float Half(uint16_t h) {
  // IEEE half by hand (as the reference does), so no cuda_fp16 dependency.
  int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
  float v = exp == 0    ? ldexpf(float(man), -24)
            : exp == 31 ? (man ? NAN : INFINITY)
                        : ldexpf(float(man | 1024), exp - 25);
  return sign ? -v : v;
}

__device__ uint16_t U16(const uint8_t *p) {
  // Blocks are only 2-byte aligned in general (18- and 68-byte blocks).
  return uint16_t(p[0] | (p[1] << 8));
}

// Element (r, c) of a weight of any dtype; the branch is uniform per launch.
__device__ float WeightAt(const Weight &w, int64_t r, int64_t c) {
  const int64_t cols = w.cols;
  switch (w.dtype) {
  case GEMMAC_DTYPE_F32:
    return static_cast<const float *>(w.data)[r * cols + c];
  case GEMMAC_DTYPE_BF16:
    return __uint_as_float(
        uint32_t(static_cast<const uint16_t *>(w.data)[r * cols + c]) << 16);
  case GEMMAC_DTYPE_F16:
    return Half(static_cast<const uint16_t *>(w.data)[r * cols + c]);
  default:
    break;
  }
  const uint8_t *base = static_cast<const uint8_t *>(w.data);
  if (w.dtype == GEMMAC_DTYPE_Q8C) {
    float scale = __uint_as_float(
        uint32_t(U16(base + w.rows * cols + 4 * r)) |
        (uint32_t(U16(base + w.rows * cols + 4 * r + 2)) << 16));
    return float(int8_t(base[r * cols + c])) * scale;
  }
  if (w.dtype == GEMMAC_DTYPE_Q4G32R8) {
    const uint8_t *run = base + ((r / 8) * (cols / 32) + c / 32) * 144;
    const uint8_t *qs = run + 16 + 16 * (r % 8);
    int j = int(c % 32);
    int nib = j < 16 ? qs[j] & 15 : qs[j - 16] >> 4;
    return float(nib - 8) * Half(U16(run + 2 * (r % 8)));
  }
  const bool g32 = w.dtype == GEMMAC_DTYPE_Q4G32;
  const int G = g32 ? 32 : 128, block_bytes = g32 ? 18 : 68;
  const uint8_t *blk = base + (r * (cols / G) + c / G) * block_bytes;
  const uint8_t *qs = blk + (g32 ? 2 : 4);
  int j = int(c % G);
  int nib = j < G / 2 ? qs[j] & 15 : qs[j - G / 2] >> 4;
  return g32 ? float(nib - 8) * Half(U16(blk))
             : float(nib) * Half(U16(blk)) + Half(U16(blk + 2));
}

__device__ float WarpSum(float v) {
  for (int m = kWarp / 2; m > 0; m /= 2)
    v += gpuShflXor(v, m);
  return v;
}

__device__ float Gelu(float v) {
  return 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
}

__global__ void EmbedKernel(const int32_t *ids, Weight table, float scale,
                            float *y) {
  const int64_t t = blockIdx.x, H = table.cols;
  for (int64_t h = threadIdx.x; h < H; h += blockDim.x)
    y[t * H + h] = WeightAt(table, ids[t], h) * scale;
}

// One block per (row, group): sum of squares, then the scaled write.
__global__ void RmsNormKernel(const float *x, int64_t N, Weight norm, float eps,
                              float offset, float *y) {
  // One slot per warp of the block (blockDim.x <= 1024).
  __shared__ float partial[1024 / kWarp];
  const int64_t D = norm.cols;
  const int64_t base = blockIdx.x * N + blockIdx.y * D;
  float ss = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
    ss += x[base + i] * x[base + i];
  ss = WarpSum(ss);
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  if (lane == 0)
    partial[warp] = ss;
  __syncthreads();
  if (warp == 0) {
    const int warps = (blockDim.x + kWarp - 1) / kWarp;
    ss = WarpSum(lane < warps ? partial[lane] : 0.0f);
    if (lane == 0)
      partial[0] = ss;
  }
  __syncthreads();
  const float r = 1.0f / sqrtf(partial[0] / float(D) + eps);
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
    y[base + i] = x[base + i] * r * (offset + WeightAt(norm, 0, i));
}

// One warp per output row n; each lane decodes the weights of its columns
// once per chunk of kTok tokens and multiplies them into kTok accumulators.
// For T <= kTok (decode) every weight is read once.
constexpr int kTok = 4, kRowsPerBlock = 8;
__global__ void MatmulKernel(const float *x, int64_t T, Weight w, int64_t N,
                             float *y) {
  const int64_t n = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (n >= N)
    return;
  const int64_t K = w.cols;
  for (int64_t t0 = 0; t0 < T; t0 += kTok) {
    const int tt = T - t0 < kTok ? int(T - t0) : kTok;
    float acc[kTok] = {0, 0, 0, 0};
    for (int64_t k = lane; k < K; k += kWarp) {
      const float wv = WeightAt(w, n, k);
#pragma unroll
      for (int i = 0; i < kTok; ++i)
        if (i < tt)
          acc[i] += wv * x[(t0 + i) * K + k];
    }
#pragma unroll
    for (int i = 0; i < kTok; ++i) {
      const float v = WarpSum(acc[i]);
      if (lane == 0 && i < tt)
        y[(t0 + i) * N + n] = v;
    }
  }
}

// One thread per (row, head, pair i); the angle in double as the reference
// computes it, so long positions keep their precision.
__global__ void RopeKernel(const float *x, int64_t T, int64_t W, int64_t D,
                           float theta, float rope_scale, int64_t past,
                           float *y) {
  const int64_t half = D / 2, n = T * (W / D) * half;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e % half, th = e / half; // th = t * heads + h
    const int64_t t = th / (W / D);
    const double ang = double(past + t) / rope_scale *
                       pow(double(theta), -2.0 * double(i) / double(D));
    const int64_t at = th * D;
    const float x0 = x[at + i], x1 = x[at + i + half];
    const double c = cos(ang), s = sin(ang);
    y[at + i] = float(x0 * c - x1 * s);
    y[at + i + half] = float(x1 * c + x0 * s);
  }
}

__global__ void EltwiseKernel(Eltwise op, const float *a, const float *b,
                              float attr, int64_t n, float *y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    float v = a[i];
    switch (op) {
    case Eltwise::kGelu:
      v = Gelu(v);
      break;
    case Eltwise::kMul:
      v *= b[i];
      break;
    case Eltwise::kAdd:
      v += b[i];
      break;
    case Eltwise::kSoftcap:
      v = attr * tanhf(v / attr);
      break;
    case Eltwise::kScale:
      v *= attr;
      break;
    case Eltwise::kMulGeluOf:
      v *= Gelu(b[i]);
      break;
    }
    y[i] = v;
  }
}

// One warp per (token, KV head, k or v). i8: symmetric, scale = max|x|/127,
// codes rounded to nearest even and clamped to [-127, 127] (the reference).
__global__ void KvWriteKernel(const float *k_in, const float *v_in, int64_t T,
                              int64_t past, KvArgs kv) {
  const int64_t t = blockIdx.x, g = blockIdx.y;
  const bool is_v = blockIdx.z == 1;
  // A later token of this call lands on the same ring row: it wins.
  if (t + kv.capacity < T)
    return;
  const int64_t D = kv.head_dim, KV = kv.kv_heads;
  const int64_t row = (past + t) % kv.capacity;
  const float *src = (is_v ? v_in : k_in) + (t * KV + g) * D;
  const int64_t at = (row * KV + g) * D;
  const int lane = threadIdx.x;
  if (!kv.i8) {
    float *dst = static_cast<float *>(is_v ? kv.v : kv.k) + at;
    for (int64_t i = lane; i < D; i += kWarp)
      dst[i] = src[i];
    return;
  }
  float mx = 0;
  for (int64_t i = lane; i < D; i += kWarp)
    mx = fmaxf(mx, fabsf(src[i]));
  for (int m = kWarp / 2; m > 0; m /= 2)
    mx = fmaxf(mx, gpuShflXor(mx, m));
  const float scale = mx / 127.0f;
  int8_t *dst = static_cast<int8_t *>(is_v ? kv.v : kv.k) + at;
  for (int64_t i = lane; i < D; i += kWarp) {
    const float q = scale > 0 ? rintf(src[i] / scale) : 0.0f;
    dst[i] = int8_t(fmaxf(-127.0f, fminf(127.0f, q)));
  }
  if (lane == 0)
    (is_v ? kv.v_scale : kv.k_scale)[row * KV + g] = scale;
}

__device__ float KvAt(const KvArgs &kv, bool is_v, int64_t row, int64_t g,
                      int64_t i) {
  const int64_t at = (row * kv.kv_heads + g) * kv.head_dim + i;
  if (!kv.i8)
    return static_cast<const float *>(is_v ? kv.v : kv.k)[at];
  return float(static_cast<const int8_t *>(is_v ? kv.v : kv.k)[at]) *
         (is_v ? kv.v_scale : kv.k_scale)[row * kv.kv_heads + g];
}

// One warp per (token, head, split); lane l holds dims l, l + kWarp, ... of q
// and the output. Online softmax (running max m, running sum l) over the
// split's share of the visible keys: all of them when splits == 1, and then
// the output is final; otherwise the partial state (m, l, acc) goes to
// `part` for AttentionCombineKernel (flash-decoding).
constexpr int kPer = kMaxHeadDim / kWarp;
__global__ void AttentionKernel(const float *q, int64_t past, int64_t H,
                                float scale, int32_t window, float softcap,
                                KvArgs kv, int64_t splits, float *part,
                                float *y) {
  const int64_t pair = blockIdx.x / splits, split = blockIdx.x % splits;
  const int64_t t = pair / H, h = pair % H;
  const int64_t D = kv.head_dim, g = h / (H / kv.kv_heads);
  const int lane = threadIdx.x;
  const int64_t p = past + t;
  int64_t lo = window > 0 ? p - window + 1 : 0;
  if (lo < 0)
    lo = 0;
  // This split's rows: [first, last] of the visible [lo, p].
  const int64_t per = (p - lo + splits) / splits;
  const int64_t first = lo + split * per;
  const int64_t last = first + per - 1 < p ? first + per - 1 : p;
  float qv[kPer], acc[kPer];
#pragma unroll
  for (int r = 0; r < kPer; ++r) {
    const int64_t i = lane + r * kWarp;
    qv[r] = i < D ? q[(t * H + h) * D + i] : 0.0f;
    acc[r] = 0;
  }
  float m = -INFINITY, l = 0;
  for (int64_t j = first; j <= last; ++j) {
    const int64_t row = j % kv.capacity;
    float d = 0;
#pragma unroll
    for (int r = 0; r < kPer; ++r) {
      const int64_t i = lane + r * kWarp;
      if (i < D)
        d += qv[r] * KvAt(kv, false, row, g, i);
    }
    float s = WarpSum(d) * scale;
    if (softcap > 0)
      s = softcap * tanhf(s / softcap);
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new), e = expf(s - m_new);
    l = l * corr + e;
#pragma unroll
    for (int r = 0; r < kPer; ++r) {
      const int64_t i = lane + r * kWarp;
      if (i < D)
        acc[r] = acc[r] * corr + e * KvAt(kv, true, row, g, i);
    }
    m = m_new;
  }
  if (splits == 1) {
#pragma unroll
    for (int r = 0; r < kPer; ++r) {
      const int64_t i = lane + r * kWarp;
      if (i < D)
        y[(t * H + h) * D + i] = acc[r] / l;
    }
    return;
  }
  // Partial state of (pair, split): m, l, then D accumulators.
  float *out = part + (pair * splits + split) * (2 + D);
  if (lane == 0) {
    out[0] = m;
    out[1] = l;
  }
#pragma unroll
  for (int r = 0; r < kPer; ++r) {
    const int64_t i = lane + r * kWarp;
    if (i < D)
      out[2 + i] = acc[r];
  }
}

// One warp per (token, head): merges the splits' softmax states. A split
// with no rows has m = -inf and l = 0 and weighs nothing.
__global__ void AttentionCombineKernel(const float *part, int64_t splits,
                                       int64_t H, int64_t D, float *y) {
  const int64_t pair = blockIdx.x;
  const int lane = threadIdx.x;
  const float *base = part + pair * splits * (2 + D);
  float M = -INFINITY;
  for (int64_t s = 0; s < splits; ++s)
    M = fmaxf(M, base[s * (2 + D)]);
  float L = 0;
  float acc[kPer];
#pragma unroll
  for (int r = 0; r < kPer; ++r)
    acc[r] = 0;
  for (int64_t s = 0; s < splits; ++s) {
    const float *st = base + s * (2 + D);
    if (st[1] == 0.0f)
      continue;
    const float w = expf(st[0] - M);
    L += st[1] * w;
#pragma unroll
    for (int r = 0; r < kPer; ++r) {
      const int64_t i = lane + r * kWarp;
      if (i < D)
        acc[r] += st[2 + i] * w;
    }
  }
#pragma unroll
  for (int r = 0; r < kPer; ++r) {
    const int64_t i = lane + r * kWarp;
    if (i < D)
      y[pair * D + i] = acc[r] / L;
  }
}

int GridFor(int64_t n, int block) {
  int64_t blocks = (n + block - 1) / block;
  return int(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

} // namespace

gpuError_t Embed(const int32_t *ids, int64_t T, Weight table, float scale,
                 float *y, gpuStream_t s) {
  if (T > 0)
    EmbedKernel<<<dim3(unsigned(T)), 256, 0, s>>>(ids, table, scale, y);
  return gpuGetLastError();
}

gpuError_t RmsNorm(const float *x, int64_t T, int64_t N, Weight norm, float eps,
                   float offset, float *y, gpuStream_t s) {
  if (T > 0 && N > 0)
    RmsNormKernel<<<dim3(unsigned(T), unsigned(N / norm.cols)), 256, 0, s>>>(
        x, N, norm, eps, offset, y);
  return gpuGetLastError();
}

gpuError_t Matmul(const float *x, int64_t T, Weight w, int64_t N, float *y,
                  gpuStream_t s) {
  if (T > 0 && N > 0)
    MatmulKernel<<<unsigned((N + kRowsPerBlock - 1) / kRowsPerBlock),
                   kRowsPerBlock * kWarp, 0, s>>>(x, T, w, N, y);
  return gpuGetLastError();
}

gpuError_t Rope(const float *x, int64_t T, int64_t W, int64_t D, float theta,
                float rope_scale, int64_t past, float *y, gpuStream_t s) {
  const int64_t n = T * (W / D) * (D / 2);
  if (n > 0)
    RopeKernel<<<GridFor(n, 256), 256, 0, s>>>(x, T, W, D, theta, rope_scale,
                                               past, y);
  return gpuGetLastError();
}

gpuError_t Elementwise(Eltwise op, const float *a, const float *b, float attr,
                       int64_t n, float *y, gpuStream_t s) {
  if (n > 0)
    EltwiseKernel<<<GridFor(n, 256), 256, 0, s>>>(op, a, b, attr, n, y);
  return gpuGetLastError();
}

gpuError_t KvWrite(const float *k_in, const float *v_in, int64_t T,
                   int64_t past, KvArgs kv, gpuStream_t s) {
  if (T > 0)
    KvWriteKernel<<<dim3(unsigned(T), unsigned(kv.kv_heads), 2), kWarp, 0, s>>>(
        k_in, v_in, T, past, kv);
  return gpuGetLastError();
}

// Flash-decoding pays off when the visible rows are many and the warps few:
// about 256 rows a split, at most 64 splits, and only while the (token,
// head) pairs alone leave the GPU mostly idle.
int64_t AttentionSplits(int64_t T, int64_t past, int64_t heads,
                        int32_t window) {
  int64_t rows = past + T; // the most any token of the call sees
  if (window > 0 && rows > window)
    rows = window;
  if (T * heads >= 512 || rows < 512)
    return 1;
  const int64_t splits = (rows + 255) / 256;
  return splits < 64 ? splits : 64;
}

int64_t AttentionWorkspaceFloats(int64_t T, int64_t past, int64_t heads,
                                 int32_t window, int64_t head_dim) {
  const int64_t splits = AttentionSplits(T, past, heads, window);
  return splits == 1 ? 0 : T * heads * splits * (2 + head_dim);
}

gpuError_t Attention(const float *q, int64_t T, int64_t past, int64_t heads,
                     float scale, int32_t window, float softcap, KvArgs kv,
                     float *workspace, float *y, gpuStream_t s) {
  if (T <= 0)
    return gpuGetLastError();
  const int64_t splits =
      workspace ? AttentionSplits(T, past, heads, window) : 1;
  AttentionKernel<<<unsigned(T * heads * splits), kWarp, 0, s>>>(
      q, past, heads, scale, window, softcap, kv, splits, workspace, y);
  if (splits > 1)
    AttentionCombineKernel<<<unsigned(T * heads), kWarp, 0, s>>>(
        workspace, splits, heads, kv.head_dim, y);
  return gpuGetLastError();
}

} // namespace gemmac_cuda
