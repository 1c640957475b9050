// The matrix kernels: linear and the fused ops of docs/ops.md ("Fused
// ops"). Each fused op computes exactly the chain it replaces; what fusion
// saves is the intermediate tensors and passes over memory:
//   - an rms_norm in front of a matrix is applied while the input rows are
//     prepared for the tile kernels (tiles.h), once per token, so the
//     normalized rows never reach the arena;
//   - qkv_proj runs the rows of wq, wk and wv as one parallel loop, then
//     QK-norm and RoPE per token in place on q and k;
//   - gated_mlp computes a row of the gate and of the up projection in the
//     same task and writes gelu(gate) * up;
//   - final_head soft-caps each logit as it is written and, for a one-row
//     output, computes only the last position.
// The prepared rows live in a per-thread buffer that grows to the largest
// request and is then reused; TBB splits the output rows in tiles of
// kRowTile (tiles.h), or in panels of kPanelRows where the amx level's panel
// kernels serve a matrix (prefill).
#include <algorithm>
#include <cmath>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "kernels.h"
#include "loops.h"
#include "tiles.h"

namespace gemmac::cpu {
namespace {

using Range = tbb::blocked_range<int64_t>;

// Rows prepared at once: at most 256 x K floats and codes of scratch, and
// a tile of weight rows meets them all while it is in L1/L2.
constexpr int64_t kTokenTile = 256;

// One weight matrix's kernel for a launch over T rows: the panel kernel
// where the level has one and the rows are many enough (UsePanels), else
// the tile kernel. A unit is the rows one call covers: a panel or a tile.
struct MatrixKernel {
  TileFn tile;
  PanelFn panel = nullptr;
  int input = kPanelNone; // what the panel reads (PrepareActs' panel bits)
  int64_t unit = kRowTile;
  MatrixKernel(const WeightMatrix &w, int64_t T) : tile(TileFor(w.dtype)) {
    if (const PanelFn p = PanelFor(w); UsePanels(p, w.dtype, T)) {
      panel = p;
      input = PanelInputOf(w.dtype);
      unit = kPanelRows;
    }
  }
  int64_t Units(int64_t n) const { return (n + unit - 1) / unit; }
};

// About 16K weight elements per task, in units of `unit` rows.
int64_t Grain(int64_t K, int64_t unit) {
  return std::max<int64_t>(1, (int64_t(1) << 14) / (K + 1) / unit);
}

// Calls body(t0, tt, acts) for tiles [t0, t0 + tt) of the T rows of x [T, K],
// prepared (PrepareActs) with the norm folded in when norm is set, with Q8
// codes when codes is set, and with what the panel kernels read (`panel`,
// PanelInput bits).
// The acts live in this thread's buffer until body returns.
template <class Body>
void ForTokenTiles(const float *x, int64_t T, int64_t K, const float *norm,
                   float offset, float eps, bool codes, int panel,
                   Body &&body) {
  ActsBuffer &buf = ThreadActsBuffer();
  for (int64_t t0 = 0; t0 < T; t0 += kTokenTile) {
    const int64_t tt = std::min(kTokenTile, T - t0);
    const Acts a =
        PrepareActs(x + t0 * K, tt, K, norm, offset, eps, codes, buf, panel);
    body(t0, tt, a);
  }
}

// For units [b, e) of the first N rows of w and every row of a:
// y[t, n] (row stride ldy, y's row 0 is a's row 0) = the products.
void MatrixUnits(const MatrixKernel &k, const WeightMatrix &w, int64_t N,
                 const Acts &a, int64_t b, int64_t e, float *y, int64_t ldy) {
  for (int64_t u = b; u < e; ++u) {
    const int64_t n0 = u * k.unit;
    const int64_t nr = std::min(k.unit, N - n0);
    if (k.panel != nullptr) {
      k.panel(w, n0, nr, a, y + n0, ldy);
      continue;
    }
    for (int64_t i = 0; i < a.T; i += kTokenGroup) {
      const int64_t nt = std::min(kTokenGroup, a.T - i);
      float o[kRowTile * kTokenGroup];
      k.tile(w, n0, nr, a, i, nt, o);
      for (int64_t r = 0; r < nr; ++r)
        for (int64_t j = 0; j < nt; ++j)
          y[(i + j) * ldy + n0 + r] = o[r * kTokenGroup + j];
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

void Linear(const float *x, int64_t T, int64_t K, const WeightMatrix &w,
            int64_t N, float *y) {
  const MatrixKernel k(w, T);
  ForTokenTiles(x, T, K, nullptr, 0.0f, 0.0f, NeedsCodes(w.dtype), k.input,
                [&](int64_t t0, int64_t, const Acts &a) {
                  tbb::parallel_for(Range(0, k.Units(N), Grain(K, k.unit)),
                                    [&](const Range &r) {
                                      MatrixUnits(k, w, N, a, r.begin(),
                                                  r.end(), y + t0 * N, N);
                                    });
                });
}

void QkvProj(const QkvArgs &a) {
  const int64_t K = a.K, D = a.D;
  const int64_t Nq = a.H * D, Nk = a.KV * D, Nv = a.KV * D;
  const MatrixKernel kq(a.wq, a.T), kk(a.wk, a.T), kv(a.wv, a.T);
  const bool codes = NeedsCodes(a.wq.dtype) || NeedsCodes(a.wk.dtype) ||
                     NeedsCodes(a.wv.dtype);
  const int panel = kq.input | kk.input | kv.input;
  // Units of each matrix; a unit never straddles two matrices, so a packed
  // one is always read in whole 8-row groups.
  const int64_t Tq = kq.Units(Nq), Tk = kk.Units(Nk), Tv = kv.Units(Nv);
  const int64_t grain = Grain(K, std::max({kq.unit, kk.unit, kv.unit}));
  const int64_t half = D / 2;
  ForTokenTiles(
      a.x, a.T, K, a.norm, a.offset, a.eps, codes, panel,
      [&](int64_t t0, int64_t tt, const Acts &acts) {
        // The "one linear": units of wq, then wk, then wv.
        tbb::parallel_for(Range(0, Tq + Tk + Tv, grain), [&](const Range &r) {
          const int64_t b = r.begin(), e = r.end();
          if (b < Tq)
            MatrixUnits(kq, a.wq, Nq, acts, b, std::min(e, Tq), a.q + t0 * Nq,
                        Nq);
          if (e > Tq && b < Tq + Tk)
            MatrixUnits(kk, a.wk, Nk, acts, std::max(b, Tq) - Tq,
                        std::min(e, Tq + Tk) - Tq, a.k + t0 * Nk, Nk);
          if (e > Tq + Tk)
            MatrixUnits(kv, a.wv, Nv, acts, std::max(b, Tq + Tk) - Tq - Tk,
                        e - Tq - Tk, a.v + t0 * Nv, Nv);
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
  const GeluMulFn gelu_mul = ActiveLoops().gelu_mul;
  MatrixKernel kg(w_gate, T), ku(w_up, T);
  if (kg.panel == nullptr || ku.panel == nullptr) { // one unit for the pair
    kg = MatrixKernel(w_gate, 0);
    ku = MatrixKernel(w_up, 0);
  }
  const bool codes = NeedsCodes(w_gate.dtype) || NeedsCodes(w_up.dtype);
  ForTokenTiles(
      x, T, K, norm, offset, eps, codes, kg.input | ku.input,
      [&](int64_t t0, int64_t tt, const Acts &a) {
        // Two matrices per unit: half linear's grain.
        const int64_t grain = std::max<int64_t>(1, Grain(K, kg.unit) / 2);
        tbb::parallel_for(Range(0, kg.Units(F), grain), [&](const Range &r) {
          for (int64_t u = r.begin(); u < r.end(); ++u) {
            const int64_t n0 = u * kg.unit;
            const int64_t nr = std::min(kg.unit, F - n0);
            if (kg.panel != nullptr) {
              // The panel's gate and up products for every row, then the
              // GELU over all of them at once.
              alignas(64) float g[kTokenTile * kPanelRows];
              alignas(64) float up[kTokenTile * kPanelRows];
              kg.panel(w_gate, n0, nr, a, g, kPanelRows);
              ku.panel(w_up, n0, nr, a, up, kPanelRows);
              gelu_mul(g, up, tt * kPanelRows, g);
              for (int64_t j = 0; j < tt; ++j)
                std::copy_n(g + j * kPanelRows, nr, y + (t0 + j) * F + n0);
              continue;
            }
            for (int64_t i = 0; i < tt; i += kTokenGroup) {
              const int64_t nt = std::min(kTokenGroup, tt - i);
              float g[kRowTile * kTokenGroup] = {};
              float up[kRowTile * kTokenGroup] = {};
              kg.tile(w_gate, n0, nr, a, i, nt, g);
              ku.tile(w_up, n0, nr, a, i, nt, up);
              // The whole tile at once, so that the GELU vectorizes.
              float o[kRowTile * kTokenGroup];
              gelu_mul(g, up, kRowTile * kTokenGroup, o);
              for (int64_t rr = 0; rr < nr; ++rr)
                for (int64_t j = 0; j < nt; ++j)
                  y[(t0 + i + j) * F + n0 + rr] = o[rr * kTokenGroup + j];
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
  const MatrixKernel k(table, T);
  ForTokenTiles(x, T, H, norm, offset, eps, NeedsCodes(table.dtype), k.input,
                [&](int64_t t0, int64_t tt, const Acts &a) {
                  tbb::parallel_for(
                      Range(0, k.Units(R), Grain(H, k.unit)),
                      [&](const Range &r) {
                        float *yt = y + t0 * R;
                        MatrixUnits(k, table, R, a, r.begin(), r.end(), yt, R);
                        if (softcap > 0.0f) {
                          const int64_t n0 = r.begin() * k.unit;
                          const int64_t n1 = std::min(R, r.end() * k.unit);
                          for (int64_t t = 0; t < tt; ++t)
                            for (int64_t n = n0; n < n1; ++n) {
                              float &v = yt[t * R + n];
                              v = softcap * std::tanh(v / softcap);
                            }
                        }
                      });
                });
}

} // namespace gemmac::cpu
