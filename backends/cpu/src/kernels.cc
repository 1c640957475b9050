// Hot loops of the CPU backend. Inner loops run over contiguous memory with
// f32 accumulators and `omp simd` reductions (-fopenmp-simd: no OpenMP
// runtime), so the compiler vectorizes them, weight conversion included.
#include "kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "numeric.h"

namespace gemmac::cpu {
namespace {

using Range = tbb::blocked_range<int64_t>;

// Enough elements per task that scheduling overhead stays small.
constexpr int64_t kElementwiseGrain = 1 << 14;

template <class W>
inline float Dot(const float *x, const typename W::Storage *w, int64_t K) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t k = 0; k < K; ++k)
    acc += x[k] * W::Load(w[k]);
  return acc;
}

// Rows [n0, n1) of y = x @ w^T. Four tokens share each converted weight
// element, so prefill reads and converts each weight row T/4 times, not T.
template <class W>
void LinearRows(const float *x, int64_t T, int64_t K,
                const typename W::Storage *w, int64_t n0, int64_t n1, int64_t N,
                float *y) {
  for (int64_t n = n0; n < n1; ++n) {
    const typename W::Storage *wr = w + n * K;
    int64_t t = 0;
    for (; t + 4 <= T; t += 4) {
      const float *x0 = x + t * K;
      const float *x1 = x0 + K;
      const float *x2 = x1 + K;
      const float *x3 = x2 + K;
      float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
      for (int64_t k = 0; k < K; ++k) {
        const float wk = W::Load(wr[k]);
        a0 += x0[k] * wk;
        a1 += x1[k] * wk;
        a2 += x2[k] * wk;
        a3 += x3[k] * wk;
      }
      y[t * N + n] = a0;
      y[(t + 1) * N + n] = a1;
      y[(t + 2) * N + n] = a2;
      y[(t + 3) * N + n] = a3;
    }
    for (; t < T; ++t)
      y[t * N + n] = Dot<W>(x + t * K, wr, K);
  }
}

template <typename Body> void ParallelElements(int64_t n, Body body) {
  tbb::parallel_for(Range(0, n, kElementwiseGrain),
                    [&](const Range &r) { body(r.begin(), r.end()); });
}

} // namespace

void Embed(const int32_t *tokens, int64_t T, const void *table,
           int32_t table_dtype, int64_t H, float scale, float *out) {
  DispatchWeight(table_dtype, [&](auto wt) {
    using W = decltype(wt);
    const auto *tab = static_cast<const typename W::Storage *>(table);
    tbb::parallel_for(Range(0, T), [&](const Range &r) {
      for (int64_t t = r.begin(); t < r.end(); ++t) {
        const typename W::Storage *row = tab + int64_t(tokens[t]) * H;
        float *o = out + t * H;
#pragma omp simd
        for (int64_t i = 0; i < H; ++i)
          o[i] = W::Load(row[i]) * scale;
      }
    });
  });
}

void RmsNorm(const float *x, int64_t T, int64_t N, const void *w,
             int32_t w_dtype, int64_t D, float eps, float offset, float *y) {
  DispatchWeight(w_dtype, [&](auto wt) {
    using W = decltype(wt);
    const auto *ws = static_cast<const typename W::Storage *>(w);
    const int64_t groups = N / D;
    tbb::parallel_for(Range(0, T * groups), [&](const Range &r) {
      for (int64_t g = r.begin(); g < r.end(); ++g) {
        const float *xg = x + g * D;
        float *yg = y + g * D;
        float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int64_t d = 0; d < D; ++d)
          ss += xg[d] * xg[d];
        const float inv = 1.0f / std::sqrt(ss / float(D) + eps);
#pragma omp simd
        for (int64_t d = 0; d < D; ++d)
          yg[d] = xg[d] * inv * (offset + W::Load(ws[d]));
      }
    });
  });
}

void Linear(const float *x, int64_t T, int64_t K, const void *w,
            int32_t w_dtype, int64_t N, float *y) {
  DispatchWeight(w_dtype, [&](auto wt) {
    using W = decltype(wt);
    const auto *ws = static_cast<const typename W::Storage *>(w);
    // About 16K weight elements per task.
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / (K + 1));
    tbb::parallel_for(Range(0, N, grain), [&](const Range &r) {
      LinearRows<W>(x, T, K, ws, r.begin(), r.end(), N, y);
    });
  });
}

void Rope(const float *x, int64_t T, int64_t H, int64_t D, int64_t past,
          double rope_scale, const double *inv_freq, float *y) {
  const int64_t half = D / 2;
  tbb::parallel_for(Range(0, T), [&](const Range &r) {
    for (int64_t t = r.begin(); t < r.end(); ++t) {
      // Positions reach 1e5 and more; an f32 angle would be off by ~1e-2
      // rad there, so the angle and its cos/sin are computed in double.
      const double pos = double(past + t) / rope_scale;
      const float *xt = x + t * H * D;
      float *yt = y + t * H * D;
      for (int64_t i = 0; i < half; ++i) {
        const double angle = pos * inv_freq[i];
        const float c = float(std::cos(angle));
        const float s = float(std::sin(angle));
        for (int64_t h = 0; h < H; ++h) {
          const float x0 = xt[h * D + i];
          const float x1 = xt[h * D + i + half];
          yt[h * D + i] = x0 * c - x1 * s;
          yt[h * D + i + half] = x1 * c + x0 * s;
        }
      }
    }
  });
}

bool Attention(const AttentionArgs &a) {
  const int64_t row = a.KV * a.D;
  for (int64_t t = 0; t < a.T; ++t) {
    const int64_t slot = (a.past + t) % a.capacity;
    std::memcpy(a.k_cache + slot * row, a.k + t * row, size_t(row) * 4);
    std::memcpy(a.v_cache + slot * row, a.v + t * row, size_t(row) * 4);
  }

  const int64_t H = a.H, D = a.D, group = a.H / a.KV;
  std::atomic<bool> ok{true};
  tbb::parallel_for(Range(0, a.T * H), [&](const Range &r) {
    const int slot = tbb::this_task_arena::current_thread_index();
    if (slot < 0 || slot >= a.scratch_slots) {
      ok.store(false, std::memory_order_relaxed);
      return;
    }
    float *acc = a.scratch + slot * a.scratch_stride;
    for (int64_t idx = r.begin(); idx < r.end(); ++idx) {
      const int64_t t = idx / H, h = idx % H;
      const int64_t kv_head = h / group;
      const int64_t p = a.past + t;
      const int64_t first =
          a.window > 0 ? std::max<int64_t>(0, p - a.window + 1) : 0;
      const float *qh = a.q + t * H * D + h * D;

      // Online softmax: m is the running max, l the running sum of
      // exp(s - m), acc the running sum of exp(s - m) * v.
      float m = -std::numeric_limits<float>::infinity();
      float l = 0.0f;
      std::fill(acc, acc + D, 0.0f);
      int64_t ring = first % a.capacity;
      for (int64_t j = first; j <= p; ++j) {
        const float *kj = a.k_cache + (ring * a.KV + kv_head) * D;
        const float *vj = a.v_cache + (ring * a.KV + kv_head) * D;
        if (++ring == a.capacity)
          ring = 0;
        float s = Dot<Weight<GEMMAC_DTYPE_F32>>(qh, kj, D) * a.scale;
        if (a.softcap > 0.0f)
          s = a.softcap * std::tanh(s / a.softcap);
        if (s > m) {
          const float c = std::exp(m - s);
          l *= c;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d)
            acc[d] *= c;
          m = s;
        }
        const float e = std::exp(s - m);
        l += e;
#pragma omp simd
        for (int64_t d = 0; d < D; ++d)
          acc[d] += e * vj[d];
      }
      // Writing last lets out alias q: this (t, h) has finished reading qh.
      float *oh = a.out + t * H * D + h * D;
      const float inv = 1.0f / l;
#pragma omp simd
      for (int64_t d = 0; d < D; ++d)
        oh[d] = acc[d] * inv;
    }
  });
  return ok.load(std::memory_order_relaxed);
}

void GeluTanh(const float *x, int64_t n, float *y) {
  ParallelElements(n, [&](int64_t b, int64_t e) {
    const float k = 0.7978845608028654f; // sqrt(2/pi)
    for (int64_t i = b; i < e; ++i) {
      const float v = x[i];
      y[i] = 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
    }
  });
}

void Mul(const float *a, const float *b, int64_t n, float *y) {
  ParallelElements(n, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i)
      y[i] = a[i] * b[i];
  });
}

void Add(const float *a, const float *b, int64_t n, float *y) {
  ParallelElements(n, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i)
      y[i] = a[i] + b[i];
  });
}

void Softcap(const float *x, int64_t n, float cap, float *y) {
  ParallelElements(n, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      y[i] = cap * std::tanh(x[i] / cap);
  });
}

void Scale(const float *x, int64_t n, float scale, float *y) {
  ParallelElements(n, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i)
      y[i] = x[i] * scale;
  });
}

} // namespace gemmac::cpu
