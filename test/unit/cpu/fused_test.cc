// The fused ops of docs/ops.md ("Fused ops"): add_rms_norm, qkv_proj,
// gated_mlp and final_head, for float and quantized weights, with every
// combination of their optional inputs. Each is checked twice:
//   - against a double-precision loop over the exact weight values, with a
//     tolerance derived from the f32 sums involved;
//   - against the chain of unfused ops it replaces, run through the same
//     plugin, with a tolerance several times tighter (the two differ only
//     in f32 summation order: the fused kernels fold the input norm into
//     the row products).
#include <algorithm>
#include <cmath>

#include "cpu_test_support.h"

namespace gemmac::cpu_test {
namespace {

class FusedTest : public CpuPluginTest {
protected:
  // gated_mlp with uniform random inputs against the reference.
  void CheckGatedMlp(int32_t dtype, int64_t T, int64_t K, int64_t Fdim,
                     bool with_norm, std::mt19937 &rng);
};

const int32_t F = GEMMAC_DTYPE_F32;
const int32_t kDTypes[] = {GEMMAC_DTYPE_F32, GEMMAC_DTYPE_BF16,
                           GEMMAC_DTYPE_Q8C, GEMMAC_DTYPE_Q4G32,
                           GEMMAC_DTYPE_Q4G128};
constexpr float kEps = 1e-6f;

// rms_norm of one row in double: x * rsqrt(mean(x^2) + eps) * (offset + w).
std::vector<double> RefNorm(const double *x, int64_t n, const float *w,
                            double offset) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i)
    ss += x[i] * x[i];
  const double inv = 1.0 / std::sqrt(ss / double(n) + kEps);
  std::vector<double> y(size_t(n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    y[i] = x[i] * inv * (w ? offset + w[i] : 1.0);
  return y;
}

// x' = norm ? rms_norm(x, norm) : x for row t of x [T, K].
std::vector<double> RefInput(const std::vector<float> &x, int64_t t, int64_t K,
                             const float *norm, double offset) {
  std::vector<double> row(x.begin() + t * K, x.begin() + (t + 1) * K);
  return norm ? RefNorm(row.data(), K, norm, offset) : row;
}

// One output of x' @ w^T and the magnitude its f32 sums round against.

double Gelu(double v) {
  return 0.5 * v *
         (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
}

// The tolerance of one output of a product against the reference:
// 1e-5 of its magnitude, as linear's tests (quant_test.cc) use.
constexpr double kRel = 1e-5;
// Fused against the chain: both are within kRel of the reference in the
// worst case, but the typical difference of two f32 sum orders over these
// K is ~sqrt(K) ulps of the magnitude; 2e-6 holds with margin and is 5x
// tighter than the reference tolerance.
constexpr double kChainRel = 2e-6;

TEST_P(FusedTest, AddRmsNorm) {
  std::mt19937 rng(50);
  const int64_t N = 96;
  for (int64_t T : {1, 5}) {
    SCOPED_TRACE("T " + std::to_string(T));
    std::vector<float> x = Uniform(T * N, rng, -2, 2);
    std::vector<float> y = Uniform(T * N, rng, -2, 2);
    std::vector<float> w = Uniform(N, rng, -0.5f, 0.5f);
    std::vector<float> s(T * N, NAN), h(T * N, NAN);
    gemmac_op_attrs a = Attrs();
    a.eps = kEps;
    a.offset = 1.0f;
    RunN(GEMMAC_OP_ADD_RMS_NORM, a, {F, F, F},
         {Tensor(x.data(), F, {T, N}), Tensor(y.data(), F, {T, N}),
          Tensor(w.data(), F, {N})},
         {Tensor(s.data(), F, {T, N}), Tensor(h.data(), F, {T, N})});
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> sum(N);
      for (int64_t i = 0; i < N; ++i) {
        // f32 x + y is the one rounding of the exact sum.
        ASSERT_EQ(s[t * N + i], x[t * N + i] + y[t * N + i]);
        sum[i] = s[t * N + i];
      }
      const std::vector<double> want = RefNorm(sum.data(), N, w.data(), 1.0);
      for (int64_t i = 0; i < N; ++i)
        // As the rms_norm tests: 1e-5 of the normalized magnitude.
        ASSERT_NEAR(h[t * N + i], want[i],
                    1e-5 * std::fabs(want[i] / (1.0 + w[i])) + 1e-7)
            << "t " << t << " i " << i;
    }

    // The chain: add, then rms_norm.
    std::vector<float> cs(T * N), ch(T * N);
    Run(GEMMAC_OP_ADD, Attrs(), {F, F},
        {Tensor(x.data(), F, {T, N}), Tensor(y.data(), F, {T, N})},
        Tensor(cs.data(), F, {T, N}));
    Run(GEMMAC_OP_RMS_NORM, a, {F, F},
        {Tensor(cs.data(), F, {T, N}), Tensor(w.data(), F, {N})},
        Tensor(ch.data(), F, {T, N}));
    EXPECT_EQ(cs, s);
    for (int64_t i = 0; i < T * N; ++i)
      ASSERT_NEAR(h[i], ch[i], 1e-6 * std::fabs(ch[i]) + 1e-7) << i;

    // In place, as a memory plan may ask: s over x, h over y.
    std::vector<float> xi = x, yi = y;
    RunN(GEMMAC_OP_ADD_RMS_NORM, a, {F, F, F},
         {Tensor(xi.data(), F, {T, N}), Tensor(yi.data(), F, {T, N}),
          Tensor(w.data(), F, {N})},
         {Tensor(xi.data(), F, {T, N}), Tensor(yi.data(), F, {T, N})});
    EXPECT_EQ(xi, s);
    EXPECT_EQ(yi, h);
  }
}

// qkv_proj shapes: 3 query heads, 1 KV head of 16, K = 256 (a multiple of
// every group size).
struct QkvShape {
  int64_t H = 3, KV = 1, D = 16, K = 256;
};

class QkvTest : public FusedTest {
protected:
  // One launch of qkv_proj with the optional inputs that are set, checked
  // against the reference and against the unfused chain.
  void Check(int32_t dq, int32_t dk, int32_t dv, int64_t T, int64_t past,
             bool with_norm, bool with_qn, bool with_kn);
};

void QkvTest::Check(int32_t dq, int32_t dk, int32_t dv, int64_t T, int64_t past,
                    bool with_norm, bool with_qn, bool with_kn) {
  const QkvShape sh;
  const int64_t H = sh.H, KV = sh.KV, D = sh.D, K = sh.K;
  const int64_t Nq = H * D, Nk = KV * D;
  std::mt19937 rng(51 + T);
  std::vector<float> x = Uniform(T * K, rng, -2, 2);
  std::vector<float> norm = Uniform(K, rng, -0.5f, 0.5f);
  std::vector<float> qn = Uniform(D, rng, -0.5f, 0.5f);
  std::vector<float> kn = Uniform(D, rng, -0.5f, 0.5f);
  Weights wq = MakeMatrix(dq, Nq, K, rng, -0.5f, 0.5f);
  Weights wk = MakeMatrix(dk, Nk, K, rng, -0.5f, 0.5f);
  Weights wv = MakeMatrix(dv, Nk, K, rng, -0.5f, 0.5f);
  gemmac_op_attrs a = Attrs();
  a.head_dim = int32_t(D);
  a.num_heads = int32_t(H);
  a.num_kv_heads = int32_t(KV);
  a.theta = 10000.0f;
  a.rope_scale = 2.0f;
  a.eps = kEps;
  a.offset = 1.0f;

  auto opt = [](bool on, std::vector<float> &v, int64_t n) {
    return on ? Tensor(v.data(), F, {n}) : Absent();
  };
  std::vector<float> q(T * Nq, NAN), k(T * Nk, NAN), v(T * Nk, NAN);
  const gemmac_exec_context ctx = Context(past, T);
  RunN(GEMMAC_OP_QKV_PROJ, a,
       {F, with_norm ? F : GEMMAC_DTYPE_NONE, dq, dk, dv,
        with_qn ? F : GEMMAC_DTYPE_NONE, with_kn ? F : GEMMAC_DTYPE_NONE},
       {Tensor(x.data(), F, {T, K}), opt(with_norm, norm, K),
        Tensor(wq.data(), dq, {Nq, K}), Tensor(wk.data(), dk, {Nk, K}),
        Tensor(wv.data(), dv, {Nk, K}), opt(with_qn, qn, D),
        opt(with_kn, kn, D)},
       {Tensor(q.data(), F, {T, Nq}), Tensor(k.data(), F, {T, Nk}),
        Tensor(v.data(), F, {T, Nk})},
       &ctx);
  if (HasFatalFailure())
    return;

  // Reference: heads of x' w^T, QK-norm, then RoPE at position past + t.
  for (int64_t t = 0; t < T; ++t) {
    const std::vector<double> xp =
        RefInput(x, t, K, with_norm ? norm.data() : nullptr, 1.0);
    auto heads = [&](const Weights &w, int64_t heads, const float *hn,
                     const std::vector<float> &got, bool rope,
                     const char *what) {
      for (int64_t h = 0; h < heads; ++h) {
        std::vector<double> z(D), ties(D);
        double mag = 0;
        for (int64_t d = 0; d < D; ++d) {
          const Dot dot = RefDot(xp, w, h * D + d);
          z[d] = dot.value;
          mag = std::max(mag, dot.mag);
          ties[d] = dot.slack;
        }
        // An activation code at a rounding tie may round either way (the
        // kernel's f32 row and this double row differ in the last bits,
        // by how much depends on the compiler's order of the norm's sums),
        // moving product d by up to ties[d]. QK-norm scales that by the
        // head's 1 / rms and norm weight, and moves every output a little
        // through the rms.
        if (hn != nullptr) {
          double ss = 0, shift = 0;
          for (int64_t d = 0; d < D; ++d) {
            ss += z[d] * z[d];
            shift += std::fabs(z[d]) * ties[d];
          }
          const double inv = 1.0 / std::sqrt(ss / double(D) + kEps);
          z = RefNorm(z.data(), D, hn, 1.0);
          for (int64_t d = 0; d < D; ++d)
            ties[d] = ties[d] * inv * std::fabs(1.0 + hn[d]) +
                      std::fabs(z[d]) * inv * inv * shift / double(D);
        }
        std::vector<double> want = z, want_ties = ties;
        if (rope) {
          const double pos = double(past + t) / a.rope_scale;
          for (int64_t i = 0; i < D / 2; ++i) {
            const double ang = pos * std::pow(10000.0, -2.0 * i / D);
            want[i] = z[i] * std::cos(ang) - z[i + D / 2] * std::sin(ang);
            want[i + D / 2] =
                z[i + D / 2] * std::cos(ang) + z[i] * std::sin(ang);
            want_ties[i] = want_ties[i + D / 2] = ties[i] + ties[i + D / 2];
          }
        }
        // Without QK-norm each output is a rotation of two products:
        // kRel of the larger magnitude, twice. After QK-norm the errors are
        // divided by the head's rms and mixed across it: 1e-4 of the head's
        // largest output (errors observed ~1e-6). Plus the ties'.
        double peak = 0;
        for (double w : want)
          peak = std::max(peak, std::fabs(w));
        for (int64_t d = 0; d < D; ++d)
          ASSERT_NEAR(got[t * heads * D + h * D + d], want[d],
                      (hn ? 1e-4 * peak : 2 * kRel * mag) + want_ties[d] + 1e-9)
              << what << " t " << t << " head " << h << " d " << d;
      }
    };
    heads(wq, H, with_qn ? qn.data() : nullptr, q, true, "q");
    heads(wk, KV, with_kn ? kn.data() : nullptr, k, true, "k");
    heads(wv, KV, nullptr, v, false, "v");
  }

  // The chain it replaces: rms_norm, three linears, QK-norms, ropes.
  std::vector<float> xp = x;
  if (with_norm)
    Run(GEMMAC_OP_RMS_NORM, a, {F, F},
        {Tensor(x.data(), F, {T, K}), Tensor(norm.data(), F, {K})},
        Tensor(xp.data(), F, {T, K}));
  std::vector<float> cq(T * Nq), ck(T * Nk), cv(T * Nk);
  Run(GEMMAC_OP_LINEAR, Attrs(), {F, dq},
      {Tensor(xp.data(), F, {T, K}), Tensor(wq.data(), dq, {Nq, K})},
      Tensor(cq.data(), F, {T, Nq}));
  Run(GEMMAC_OP_LINEAR, Attrs(), {F, dk},
      {Tensor(xp.data(), F, {T, K}), Tensor(wk.data(), dk, {Nk, K})},
      Tensor(ck.data(), F, {T, Nk}));
  Run(GEMMAC_OP_LINEAR, Attrs(), {F, dv},
      {Tensor(xp.data(), F, {T, K}), Tensor(wv.data(), dv, {Nk, K})},
      Tensor(cv.data(), F, {T, Nk}));
  if (with_qn)
    Run(GEMMAC_OP_RMS_NORM, a, {F, F},
        {Tensor(cq.data(), F, {T, Nq}), Tensor(qn.data(), F, {D})},
        Tensor(cq.data(), F, {T, Nq}));
  if (with_kn)
    Run(GEMMAC_OP_RMS_NORM, a, {F, F},
        {Tensor(ck.data(), F, {T, Nk}), Tensor(kn.data(), F, {D})},
        Tensor(ck.data(), F, {T, Nk}));
  Run(GEMMAC_OP_ROPE, a, {F}, {Tensor(cq.data(), F, {T, Nq})},
      Tensor(cq.data(), F, {T, Nq}), &ctx);
  Run(GEMMAC_OP_ROPE, a, {F}, {Tensor(ck.data(), F, {T, Nk})},
      Tensor(ck.data(), F, {T, Nk}), &ctx);
  // Relative to each head's largest value (QK-norm mixes a head).
  auto same = [&](const std::vector<float> &got, const std::vector<float> &ch,
                  const char *what) {
    for (size_t h0 = 0; h0 < got.size(); h0 += size_t(D)) {
      double peak = 0;
      for (int64_t d = 0; d < D; ++d)
        peak = std::max(peak, double(std::fabs(ch[h0 + d])));
      for (int64_t d = 0; d < D; ++d)
        ASSERT_NEAR(got[h0 + d], ch[h0 + d], 2e-5 * peak + 1e-9)
            << what << " element " << h0 + d;
    }
  };
  same(q, cq, "q vs chain");
  same(k, ck, "k vs chain");
  same(v, cv, "v vs chain");
}

TEST_P(QkvTest, EveryOptionalInputCombination) {
  for (int32_t dtype : kDTypes)
    for (int64_t T : {1, 6})
      for (int mask = 0; mask < 8; ++mask) {
        SCOPED_TRACE(std::string(DTypeName(dtype)) + " T " + std::to_string(T) +
                     " norm " + std::to_string(mask & 1) + " q_norm " +
                     std::to_string((mask >> 1) & 1) + " k_norm " +
                     std::to_string((mask >> 2) & 1));
        Check(dtype, dtype, dtype, T, /*past=*/T == 1 ? 9 : 3, mask & 1,
              mask & 2, mask & 4);
        if (HasFatalFailure())
          return;
      }
}

TEST_P(QkvTest, MixedWeightDTypes) {
  // T = 21 also mixes the amx level's panels (q, k) with tiles (v).
  for (int64_t T : {5, 21})
    Check(GEMMAC_DTYPE_Q4G32, GEMMAC_DTYPE_Q8C, GEMMAC_DTYPE_F16, T, 0, true,
          true, true);
}

TEST_P(QkvTest, MoreTokensThanOneTile) {
  // The norm factors are kept per tile of 256 tokens; positions must
  // continue across tiles.
  Check(GEMMAC_DTYPE_Q4G128, GEMMAC_DTYPE_Q4G128, GEMMAC_DTYPE_Q4G128, 261, 7,
        true, true, false);
}

// gated_mlp against gelu(x' w_gate^T) * (x' w_up^T).
void FusedTest::CheckGatedMlp(int32_t dtype, int64_t T, int64_t K, int64_t Fdim,
                              bool with_norm, std::mt19937 &rng) {
  std::vector<float> x = Uniform(T * K, rng, -2, 2);
  std::vector<float> norm = Uniform(K, rng, -0.5f, 0.5f);
  Weights wg = MakeMatrix(dtype, Fdim, K, rng, -0.3f, 0.3f);
  Weights wu = MakeMatrix(dtype, Fdim, K, rng, -0.3f, 0.3f);
  gemmac_op_attrs a = Attrs();
  a.eps = kEps;
  a.offset = 1.0f;
  std::vector<float> y(T * Fdim, NAN);
  Run(GEMMAC_OP_GATED_MLP, a,
      {F, with_norm ? F : GEMMAC_DTYPE_NONE, dtype, dtype},
      {Tensor(x.data(), F, {T, K}),
       with_norm ? Tensor(norm.data(), F, {K}) : Absent(),
       Tensor(wg.data(), dtype, {Fdim, K}),
       Tensor(wu.data(), dtype, {Fdim, K})},
      Tensor(y.data(), F, {T, Fdim}));
  for (int64_t t = 0; t < T; ++t) {
    const std::vector<double> xp =
        RefInput(x, t, K, with_norm ? norm.data() : nullptr, 1.0);
    for (int64_t n = 0; n < Fdim; ++n) {
      const Dot g = RefDot(xp, wg, n), u = RefDot(xp, wu, n);
      const double want = Gelu(g.value) * u.value;
      // |gelu'| <= 1.13, so an error e_g in the gate moves the output by
      // 1.13 e_g |u|; an error e_u in up by |gelu(g)| e_u.
      const double tol = kRel * (1.13 * g.mag * std::fabs(u.value) +
                                 std::fabs(Gelu(g.value)) * u.mag) +
                         1.13 * g.slack * std::fabs(u.value) +
                         std::fabs(Gelu(g.value)) * u.slack + 1e-9;
      ASSERT_NEAR(y[t * Fdim + n], want, tol) << "t " << t << " n " << n;
    }
  }
}

TEST_P(FusedTest, GatedMlp) {
  std::mt19937 rng(52);
  for (int32_t dtype : kDTypes)
    for (int64_t T : {1, 5})
      for (bool with_norm : {false, true}) {
        SCOPED_TRACE(std::string(DTypeName(dtype)) + " T " + std::to_string(T) +
                     (with_norm ? " norm" : " no norm"));
        CheckGatedMlp(dtype, T, 256, 37, with_norm, rng);
        if (HasFatalFailure())
          return;
      }
}

TEST_P(FusedTest, GatedMlpMoreTokensThanOneTile) {
  std::mt19937 rng(53);
  CheckGatedMlp(GEMMAC_DTYPE_Q4G32, 300, 64, 9, true, rng);
}

TEST_P(FusedTest, GatedMlpEqualsTheChain) {
  std::mt19937 rng(54);
  const int64_t K = 256, Fd = 37;
  for (int32_t dtype : kDTypes)
    for (int64_t T : {1, 5})
      for (bool with_norm : {false, true}) {
        SCOPED_TRACE(std::string(DTypeName(dtype)) + " T " + std::to_string(T) +
                     (with_norm ? " norm" : " no norm"));
        std::vector<float> x = Uniform(T * K, rng, -2, 2);
        std::vector<float> norm = Uniform(K, rng, -0.5f, 0.5f);
        Weights wg = MakeMatrix(dtype, Fd, K, rng, -0.3f, 0.3f);
        Weights wu = MakeMatrix(dtype, Fd, K, rng, -0.3f, 0.3f);
        gemmac_op_attrs a = Attrs();
        a.eps = kEps;
        a.offset = 1.0f;
        std::vector<float> y(T * Fd, NAN);
        Run(GEMMAC_OP_GATED_MLP, a,
            {F, with_norm ? F : GEMMAC_DTYPE_NONE, dtype, dtype},
            {Tensor(x.data(), F, {T, K}),
             with_norm ? Tensor(norm.data(), F, {K}) : Absent(),
             Tensor(wg.data(), dtype, {Fd, K}),
             Tensor(wu.data(), dtype, {Fd, K})},
            Tensor(y.data(), F, {T, Fd}));
        // rms_norm, linear x2, gelu_tanh, mul.
        std::vector<float> xp = x, g(T * Fd), u(T * Fd), c(T * Fd);
        if (with_norm)
          Run(GEMMAC_OP_RMS_NORM, a, {F, F},
              {Tensor(x.data(), F, {T, K}), Tensor(norm.data(), F, {K})},
              Tensor(xp.data(), F, {T, K}));
        Run(GEMMAC_OP_LINEAR, Attrs(), {F, dtype},
            {Tensor(xp.data(), F, {T, K}), Tensor(wg.data(), dtype, {Fd, K})},
            Tensor(g.data(), F, {T, Fd}));
        Run(GEMMAC_OP_LINEAR, Attrs(), {F, dtype},
            {Tensor(xp.data(), F, {T, K}), Tensor(wu.data(), dtype, {Fd, K})},
            Tensor(u.data(), F, {T, Fd}));
        Run(GEMMAC_OP_GELU_TANH, Attrs(), {F}, {Tensor(g.data(), F, {T, Fd})},
            Tensor(c.data(), F, {T, Fd}));
        Run(GEMMAC_OP_MUL, Attrs(), {F, F},
            {Tensor(c.data(), F, {T, Fd}), Tensor(u.data(), F, {T, Fd})},
            Tensor(c.data(), F, {T, Fd}));
        for (int64_t t = 0; t < T; ++t) {
          const std::vector<double> xr =
              RefInput(x, t, K, with_norm ? norm.data() : nullptr, 1.0);
          for (int64_t n = 0; n < Fd; ++n) {
            const Dot gd = RefDot(xr, wg, n), ud = RefDot(xr, wu, n);
            const double tol =
                kChainRel * (1.13 * gd.mag * std::fabs(ud.value) +
                             std::fabs(Gelu(gd.value)) * ud.mag) +
                1.13 * gd.slack * std::fabs(ud.value) +
                std::fabs(Gelu(gd.value)) * ud.slack + 1e-9;
            ASSERT_NEAR(y[t * Fd + n], c[t * Fd + n], tol)
                << "t " << t << " n " << n;
          }
        }
      }
}

TEST_P(FusedTest, FinalHead) {
  std::mt19937 rng(55);
  const int64_t V = 50, R = 41;
  for (int32_t dtype : kDTypes)
    for (int64_t T : {1, 5, 9, 19})
      for (bool last_only : {false, true})
        for (float softcap : {0.0f, 3.0f}) {
          if (last_only && T == 1)
            continue;
          SCOPED_TRACE(std::string(DTypeName(dtype)) + " T " +
                       std::to_string(T) + (last_only ? " last" : " all") +
                       " softcap " + std::to_string(softcap));
          const int64_t H = 128;
          std::vector<float> x = Uniform(T * H, rng, -2, 2);
          std::vector<float> norm = Uniform(H, rng, -0.5f, 0.5f);
          Weights table = MakeMatrix(dtype, V, H, rng, -1, 1);
          gemmac_op_attrs a = Attrs();
          a.rows = int32_t(R);
          a.eps = kEps;
          a.offset = 1.0f;
          a.softcap = softcap;
          const int64_t rows = last_only ? 1 : T;
          std::vector<float> y(rows * R, NAN);
          Run(GEMMAC_OP_FINAL_HEAD, a, {F, F, dtype},
              {Tensor(x.data(), F, {T, H}), Tensor(norm.data(), F, {H}),
               Tensor(table.data(), dtype, {V, H})},
              Tensor(y.data(), F, {rows, R}));

          // The chain: rms_norm, lm_head, softcap.
          std::vector<float> xn(T * H), logits(T * R);
          Run(GEMMAC_OP_RMS_NORM, a, {F, F},
              {Tensor(x.data(), F, {T, H}), Tensor(norm.data(), F, {H})},
              Tensor(xn.data(), F, {T, H}));
          Run(GEMMAC_OP_LM_HEAD, a, {F, dtype},
              {Tensor(xn.data(), F, {T, H}),
               Tensor(table.data(), dtype, {V, H})},
              Tensor(logits.data(), F, {T, R}));
          if (softcap > 0)
            Run(GEMMAC_OP_SOFTCAP, a, {F}, {Tensor(logits.data(), F, {T, R})},
                Tensor(logits.data(), F, {T, R}));

          for (int64_t r = 0; r < rows; ++r) {
            const int64_t t = last_only ? T - 1 : r;
            const std::vector<double> xp = RefInput(x, t, H, norm.data(), 1.0);
            for (int64_t n = 0; n < R; ++n) {
              const Dot d = RefDot(xp, table, n);
              const double want = softcap > 0
                                      ? softcap * std::tanh(d.value / softcap)
                                      : d.value;
              // The soft-cap is 1-Lipschitz: the product's tolerance holds.
              ASSERT_NEAR(y[r * R + n], want, kRel * d.mag + d.slack + 1e-9)
                  << "row " << r << " n " << n;
              ASSERT_NEAR(y[r * R + n], logits[t * R + n],
                          kChainRel * d.mag + d.slack + 1e-9)
                  << "vs chain, row " << r << " n " << n;
            }
          }
        }
}

GEMMAC_CPU_INSTANTIATE(FusedTest);
GEMMAC_CPU_INSTANTIATE(QkvTest);

} // namespace
} // namespace gemmac::cpu_test
