// Kernels of the fused ops of docs/ops.md ("Fused ops"). Each computes
// exactly the chain it replaces; what fusion saves is the intermediate
// tensors and passes over memory:
//   - an rms_norm in front of a matrix is folded into the row products
//     (rows.h): the per-token 1/rms is computed once per tile of tokens into
//     a small array on the launching thread's stack, and each output is
//     scaled by it, so the normalized [T, K] activations never exist;
//   - qkv_proj runs the rows of wq, wk and wv as one parallel loop, then
//     QK-norm and RoPE per token in place on q and k;
//   - gated_mlp computes a row of the gate and of the up projection in the
//     same task and writes gelu(gate) * up;
//   - final_head soft-caps each logit as it is written and, for a one-row
//     output, computes only the last position.
// Nothing here allocates; TBB splits the output rows in tiles of kRowTile
// (rows.h) as linear does.
#include <algorithm>
#include <cmath>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "kernels.h"
#include "rows.h"

namespace gemmac::cpu {
namespace {

using Range = tbb::blocked_range<int64_t>;

// Tokens whose 1/rms factors are kept at once (1 KiB of stack).
constexpr int64_t kTokenTile = 256;

// About 16K weight elements per task, as linear, in row tiles.
int64_t TileGrain(int64_t K) {
  return std::max<int64_t>(1, (int64_t(1) << 14) / (K + 1) / kRowTile);
}

// Calls body(t0, tt, inv) for tiles [t0, t0 + tt) of the T rows of x [T, K];
// inv[i] is the rms_norm factor of row t0 + i when norm is set, else null.
// inv lives in this frame, which outlasts the parallel loops body runs.
template <class Body>
void ForTokenTiles(const float *x, int64_t T, int64_t K, bool norm, float eps,
                   Body &&body) {
  float inv[kTokenTile];
  for (int64_t t0 = 0; t0 < T; t0 += kTokenTile) {
    const int64_t tt = std::min(kTokenTile, T - t0);
    if (norm)
      tbb::parallel_for(Range(0, tt, 16), [&](const Range &r) {
        for (int64_t i = r.begin(); i < r.end(); ++i)
          inv[i] = RmsInv(x + (t0 + i) * K, K, eps);
      });
    body(t0, tt, norm ? inv : nullptr);
  }
}

// For row tiles [b, e) of the first N rows of w and tokens [t0, t0 + tt)
// of x: y[t, n] (row stride ldy) = the tile products of rows.h, times
// inv[t - t0] when inv is set.
void MatrixTiles(TileDotFn dot, const WeightMatrix &w, int64_t N,
                 const float *x, int64_t t0, int64_t tt, const float *g,
                 float offset, const float *inv, int64_t b, int64_t e, float *y,
                 int64_t ldy) {
  const int64_t K = w.cols;
  for (int64_t tile = b; tile < e; ++tile) {
    const int64_t n0 = tile * kRowTile;
    const int64_t nr = std::min(kRowTile, N - n0);
    for (int64_t i = 0; i < tt; i += kTokenGroup) {
      const int64_t nt = std::min(kTokenGroup, tt - i);
      float o[kRowTile * kTokenGroup];
      dot(w, n0, nr, x + (t0 + i) * K, nt, g, offset, o);
      for (int64_t r = 0; r < nr; ++r)
        for (int64_t j = 0; j < nt; ++j) {
          const float v = o[r * kTokenGroup + j];
          y[(t0 + i + j) * ldy + n0 + r] = inv ? v * inv[i + j] : v;
        }
    }
  }
}

// rms_norm of each head_dim group of row y[0, heads * D) in place, as the
// rms_norm op computes it.
void NormHeads(float *y, int64_t heads, int64_t D, const float *w, float eps,
               float offset) {
  for (int64_t h = 0; h < heads; ++h) {
    float *yh = y + h * D;
    const float inv = RmsInv(yh, D, eps);
#pragma omp simd
    for (int64_t d = 0; d < D; ++d)
      yh[d] = yh[d] * inv * (offset + w[d]);
  }
}

float Gelu(float v) {
  const float k = 0.7978845608028654f; // sqrt(2/pi), as the gelu_tanh op
  return 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
}

} // namespace

void AddRmsNorm(const float *x, const float *y, int64_t T, int64_t N,
                const float *w, float eps, float offset, float *s, float *h) {
  const int64_t grain = std::max<int64_t>(1, 4096 / (N + 1));
  tbb::parallel_for(Range(0, T, grain), [&](const Range &r) {
    for (int64_t t = r.begin(); t < r.end(); ++t) {
      const float *xt = x + t * N, *yt = y + t * N;
      float *st = s + t * N, *ht = h + t * N;
#pragma omp simd
      for (int64_t i = 0; i < N; ++i)
        st[i] = xt[i] + yt[i];
      const float inv = RmsInv(st, N, eps);
#pragma omp simd
      for (int64_t i = 0; i < N; ++i)
        ht[i] = st[i] * inv * (offset + w[i]);
    }
  });
}

void QkvProj(const QkvArgs &a) {
  const int64_t K = a.K, D = a.D;
  const int64_t Nq = a.H * D, Nk = a.KV * D, Nv = a.KV * D;
  const bool norm = a.norm != nullptr;
  const TileDotFn dq = TileDotFor(a.wq.dtype, norm);
  const TileDotFn dk = TileDotFor(a.wk.dtype, norm);
  const TileDotFn dv = TileDotFor(a.wv.dtype, norm);
  // Row tiles of each matrix; a tile never straddles two matrices, so a
  // packed one is always read in whole 8-row groups.
  const int64_t Tq = RowTiles(Nq), Tk = RowTiles(Nk), Tv = RowTiles(Nv);
  const int64_t half = D / 2;
  ForTokenTiles(
      a.x, a.T, K, norm, a.eps, [&](int64_t t0, int64_t tt, const float *inv) {
        // The "one linear": tiles of wq, then wk, then wv.
        tbb::parallel_for(
            Range(0, Tq + Tk + Tv, TileGrain(K)), [&](const Range &r) {
              const int64_t b = r.begin(), e = r.end();
              if (b < Tq)
                MatrixTiles(dq, a.wq, Nq, a.x, t0, tt, a.norm, a.offset, inv, b,
                            std::min(e, Tq), a.q, Nq);
              if (e > Tq && b < Tq + Tk)
                MatrixTiles(dk, a.wk, Nk, a.x, t0, tt, a.norm, a.offset, inv,
                            std::max(b, Tq) - Tq, std::min(e, Tq + Tk) - Tq,
                            a.k, Nk);
              if (e > Tq + Tk)
                MatrixTiles(dv, a.wv, Nv, a.x, t0, tt, a.norm, a.offset, inv,
                            std::max(b, Tq + Tk) - Tq - Tk, e - Tq - Tk, a.v,
                            Nv);
            });
        // Epilogue per token: QK-norm, then RoPE with the rope op's
        // angles.
        tbb::parallel_for(Range(t0, t0 + tt), [&](const Range &r) {
          for (int64_t t = r.begin(); t < r.end(); ++t) {
            float *qt = a.q + t * Nq, *kt = a.k + t * Nk;
            if (a.q_norm)
              NormHeads(qt, a.H, D, a.q_norm, a.eps, a.offset);
            if (a.k_norm)
              NormHeads(kt, a.KV, D, a.k_norm, a.eps, a.offset);
            const double pos = double(a.past + t) / a.rope_scale;
            for (int64_t i = 0; i < half; ++i) {
              const double angle = pos * a.inv_freq[i];
              const float c = float(std::cos(angle));
              const float s = float(std::sin(angle));
              auto rotate = [&](float *y, int64_t heads) {
                for (int64_t h = 0; h < heads; ++h) {
                  const float x0 = y[h * D + i];
                  const float x1 = y[h * D + i + half];
                  y[h * D + i] = x0 * c - x1 * s;
                  y[h * D + i + half] = x1 * c + x0 * s;
                }
              };
              rotate(qt, a.H);
              rotate(kt, a.KV);
            }
          }
        });
      });
}

void GatedMlp(const float *x, int64_t T, int64_t K, const float *norm,
              const WeightMatrix &w_gate, const WeightMatrix &w_up, float eps,
              float offset, float *y) {
  const int64_t F = w_gate.rows;
  const bool folded = norm != nullptr;
  const TileDotFn dg = TileDotFor(w_gate.dtype, folded);
  const TileDotFn du = TileDotFor(w_up.dtype, folded);
  ForTokenTiles(
      x, T, K, folded, eps, [&](int64_t t0, int64_t tt, const float *inv) {
        // Two matrices per tile: half linear's grain.
        const int64_t grain = std::max<int64_t>(1, TileGrain(K) / 2);
        tbb::parallel_for(Range(0, RowTiles(F), grain), [&](const Range &r) {
          for (int64_t tile = r.begin(); tile < r.end(); ++tile) {
            const int64_t n0 = tile * kRowTile;
            const int64_t nr = std::min(kRowTile, F - n0);
            for (int64_t i = 0; i < tt; i += kTokenGroup) {
              const int64_t nt = std::min(kTokenGroup, tt - i);
              const float *xt = x + (t0 + i) * K;
              float g[kRowTile * kTokenGroup], u[kRowTile * kTokenGroup];
              dg(w_gate, n0, nr, xt, nt, norm, offset, g);
              du(w_up, n0, nr, xt, nt, norm, offset, u);
              for (int64_t rr = 0; rr < nr; ++rr)
                for (int64_t j = 0; j < nt; ++j) {
                  const float gv = g[rr * kTokenGroup + j];
                  const float uv = u[rr * kTokenGroup + j];
                  const float gj = inv ? gv * inv[i + j] : gv;
                  const float uj = inv ? uv * inv[i + j] : uv;
                  y[(t0 + i + j) * F + n0 + rr] = Gelu(gj) * uj;
                }
            }
          }
        });
      });
}

void FinalHead(const float *x, int64_t T, int64_t H, const float *norm,
               const WeightMatrix &table, int64_t R, float eps, float offset,
               float softcap, bool last_only, float *y) {
  // A one-row output scores only the last position: x becomes that row.
  if (last_only) {
    x += (T - 1) * H;
    T = 1;
  }
  const TileDotFn dot = TileDotFor(table.dtype, true);
  ForTokenTiles(x, T, H, true, eps,
                [&](int64_t t0, int64_t tt, const float *inv) {
                  tbb::parallel_for(
                      Range(0, RowTiles(R), TileGrain(H)), [&](const Range &r) {
                        MatrixTiles(dot, table, R, x, t0, tt, norm, offset, inv,
                                    r.begin(), r.end(), y, R);
                        if (softcap > 0.0f) {
                          const int64_t n0 = r.begin() * kRowTile;
                          const int64_t n1 = std::min(R, r.end() * kRowTile);
                          for (int64_t t = t0; t < t0 + tt; ++t)
                            for (int64_t n = n0; n < n1; ++n) {
                              float &v = y[t * R + n];
                              v = softcap * std::tanh(v / softcap);
                            }
                        }
                      });
                });
}

} // namespace gemmac::cpu
