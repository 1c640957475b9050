// Hot loops of the CPU backend. Inner loops run over contiguous memory with
// f32 accumulators and `omp simd` reductions (-fopenmp-simd: no OpenMP
// runtime), so the compiler vectorizes them, weight conversion included.
#include "kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "loops.h"
#include "numeric.h"
#include "tiles.h"

namespace gemmac::cpu {
namespace {

using Range = tbb::blocked_range<int64_t>;

// Enough elements per task that scheduling overhead stays small.
constexpr int64_t kElementwiseGrain = 1 << 14;

template <typename Body> void ParallelElements(int64_t n, Body body) {
  tbb::parallel_for(Range(0, n, kElementwiseGrain),
                    [&](const Range &r) { body(r.begin(), r.end()); });
}

} // namespace

void Embed(const int32_t *tokens, int64_t T, const WeightMatrix &table,
           float scale, float *out) {
  const int64_t H = table.cols;
  if (IsFloatWeightDType(table.dtype)) {
    DispatchWeight(table.dtype, [&](auto wt) {
      using W = decltype(wt);
      const auto *tab = static_cast<const typename W::Storage *>(table.data);
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
    return;
  }
  // A quantized row: each block is dequantized straight into the output row
  // (w as docs/quantization.md computes it, in f32), then scaled.
  DispatchRows(table, [&](auto rows) {
    using F = decltype(rows);
    tbb::parallel_for(Range(0, T), [&](const Range &r) {
      for (int64_t t = r.begin(); t < r.end(); ++t) {
        float *o = out + t * H;
        for (int64_t k0 = 0; k0 < H; k0 += F::kBlock) {
          const int64_t len = std::min<int64_t>(F::kBlock, H - k0);
          DequantizeBlock(rows, int64_t(tokens[t]), k0, len, o + k0);
        }
#pragma omp simd
        for (int64_t i = 0; i < H; ++i)
          o[i] *= scale;
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
        const float inv = RmsInv(xg, D, eps);
#pragma omp simd
        for (int64_t d = 0; d < D; ++d)
          yg[d] = xg[d] * inv * (offset + W::Load(ws[d]));
      }
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

namespace {

// Stores the T new rows of k or v at ring slots (past + t) % capacity: f32
// rows are copied; int8 rows are quantized per (position, KV head):
// s = max|x| / 127, q = round(x / s) (half away from zero), s = 0 and q = 0
// for an all-zero row.
void StoreRows(const AttentionArgs &a, const float *src, void *cache,
               float *scales) {
  const int64_t row = a.KV * a.D;
  if (scales == nullptr) {
    for (int64_t t = 0; t < a.T; ++t) {
      const int64_t slot = (a.past + t) % a.capacity;
      std::memcpy(static_cast<float *>(cache) + slot * row, src + t * row,
                  size_t(row) * 4);
    }
    return;
  }
  const int64_t D = a.D;
  auto *q8 = static_cast<int8_t *>(cache);
  tbb::parallel_for(Range(0, a.T * a.KV, std::max<int64_t>(1, 4096 / D)),
                    [&](const Range &r) {
                      for (int64_t i = r.begin(); i < r.end(); ++i) {
                        const int64_t t = i / a.KV, h = i % a.KV;
                        const int64_t slot = (a.past + t) % a.capacity;
                        const float *x = src + t * row + h * D;
                        float amax = 0.0f;
                        for (int64_t d = 0; d < D; ++d)
                          amax = std::max(amax, std::fabs(x[d]));
                        const float s = amax / 127.0f;
                        int8_t *q = q8 + (slot * a.KV + h) * D;
                        scales[slot * a.KV + h] = s;
                        for (int64_t d = 0; d < D; ++d)
                          q[d] = s > 0.0f
                                     ? int8_t(std::clamp(std::round(x[d] / s),
                                                         -127.0f, 127.0f))
                                     : int8_t(0);
                      }
                    });
}

// The launching thread's buffer of per-chunk partial sums (split decode).
std::vector<float> &ThreadPartials() {
  thread_local std::vector<float> buf;
  return buf;
}

// out = the softmax-weighted sum over all chunks of each unit's heads: with
// M = max_c m_c, out = sum_c acc_c e^(m_c - M) / sum_c l_c e^(m_c - M).
// A chunk with no keys has l = 0 and m = -inf and adds nothing.
void MergeChunks(const AttentionArgs &a, const AttendPlan &plan, int64_t units,
                 const float *partial) {
  const int64_t D = a.D, gs = plan.gs, nc = plan.chunks;
  for (int64_t b = 0; b < units; ++b) {
    const UnitHeads uh = UnitOf(a, plan, b);
    for (int64_t g = 0; g < gs; ++g) {
      auto part = [&](int64_t c) {
        return partial + ((b * nc + c) * gs + g) * (D + 2);
      };
      float M = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < nc; ++c)
        if (part(c)[D + 1] > 0.0f)
          M = std::max(M, part(c)[D]);
      float *oh = a.out + uh.t * a.H * D + (uh.h0 + g) * D;
      std::fill(oh, oh + D, 0.0f);
      float L = 0.0f;
      for (int64_t c = 0; c < nc; ++c) {
        const float *pc = part(c);
        if (!(pc[D + 1] > 0.0f))
          continue;
        const float w = std::exp(pc[D] - M);
        L += pc[D + 1] * w;
        for (int64_t d = 0; d < D; ++d)
          oh[d] += pc[d] * w;
      }
      const float inv = 1.0f / L;
      for (int64_t d = 0; d < D; ++d)
        oh[d] *= inv;
    }
  }
}

} // namespace

bool Attention(const AttentionArgs &a) {
  StoreRows(a, a.k, a.k_cache, a.k_scale);
  StoreRows(a, a.v, a.v_cache, a.v_scale);
  const LevelLoops &loops = ActiveLoops();
  const AttendFn attend = a.k_scale != nullptr ? loops.i8 : loops.f32;
  const int64_t group = a.H / a.KV, slots = a.scratch_slots;
  // All query heads of a KV head in one unit (up to kMaxUnitHeads, a
  // divisor of the group), so that its cached rows are read once for them.
  AttendPlan plan;
  for (int64_t c = std::min(group, kMaxUnitHeads); c >= 1; --c)
    if (group % c == 0) {
      plan.gs = c;
      break;
    }
  const int64_t units = a.T * a.KV * (group / plan.gs);
  // Fewer units than threads (decode): split each one's keys in chunks of
  // at least 64, one per thread, and merge the chunks' softmax sums after.
  const int64_t p = a.past + a.T - 1;
  const int64_t span =
      a.window > 0 ? std::min<int64_t>(p + 1, a.window) : p + 1;
  if (units < slots)
    plan.chunks =
        std::max<int64_t>(1, std::min((slots + units - 1) / units, span / 64));
  float *partial = nullptr;
  std::vector<float> &part = ThreadPartials();
  if (plan.chunks > 1) {
    part.resize(size_t(units * plan.chunks * plan.gs * (a.D + 2)));
    partial = part.data();
  }
  std::atomic<bool> ok{true};
  tbb::parallel_for(Range(0, units * plan.chunks), [&](const Range &r) {
    const int slot = tbb::this_task_arena::current_thread_index();
    if (slot < 0 || slot >= a.scratch_slots) {
      ok.store(false, std::memory_order_relaxed);
      return;
    }
    attend(a, plan, r.begin(), r.end(), a.scratch + slot * a.scratch_stride,
           partial);
  });
  if (partial != nullptr && ok.load(std::memory_order_relaxed))
    MergeChunks(a, plan, units, partial);
  return ok.load(std::memory_order_relaxed);
}

void GeluTanh(const float *x, int64_t n, float *y) {
  ParallelElements(n, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i)
      y[i] = GeluTanhF(x[i]);
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
