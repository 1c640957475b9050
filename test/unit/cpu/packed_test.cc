// Q4G32R8, the CPU's packed q4 layout (docs/quantization.md, "Packed
// layouts"), in every op that reads a matrix: linear, lm_head, embed and the
// fused qkv_proj, gated_mlp and final_head.
//
// Each case runs the same quantized values twice: with the Q4G32 bytes and
// with those bytes moved into the packed order by the tests' own packer
// (PackQ4G32R8 in cpu_test_support.cc, which shares no code with the
// backend). The two must agree to within f32 summation order (kSame; the
// packed kernel also multiplies a folded norm weight into x rather than into
// each weight, one rounding apart), and each must match a double-precision
// loop over the exact values (kRel, as quant_test.cc). Rows that do not fill
// the 8-row groups are refused with a message.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <tuple>

#include "cpu_test_support.h"

namespace gemmac::cpu_test {
namespace {

using ::testing::HasSubstr;
using PackedTest = CpuPluginTest;

const int32_t F = GEMMAC_DTYPE_F32;
const int32_t Q4 = GEMMAC_DTYPE_Q4G32;
const int32_t R8 = GEMMAC_DTYPE_Q4G32R8;
constexpr float kEps = 1e-6f;
// Against the double reference: as quant_test.cc and fused_test.cc.
constexpr double kRel = 1e-5;
// Packed against unpacked: the same products summed in another order; the
// typical difference is ~sqrt(K) ulps of the magnitude, and 2e-6 (fused
// against the chain, fused_test.cc) holds with margin.
constexpr double kSame = 2e-6;
// Written past the end of an output to catch a tile that writes rows it
// was not asked for.
constexpr float kGuard = 12345.0f;
constexpr int64_t kGuardLen = 64;

// One matrix in both layouts.
struct Pair {
  Weights plain;  // Q4G32
  Weights packed; // Q4G32R8, the same values
};

Pair MakePair(int64_t rows, int64_t cols, std::mt19937 &rng, float lo,
              float hi) {
  Pair p;
  p.plain = MakeMatrix(Q4, rows, cols, rng, lo, hi);
  p.packed = p.plain;
  p.packed.dtype = R8;
  p.packed.bytes = PackQ4G32R8(rows, cols, p.plain.bytes);
  // The test's decoder reads the packed bytes by the spec's offsets: the
  // same values, so the two runs compute with the same weights.
  p.packed.values =
      DequantizeMatrix(R8, rows, cols, p.packed.bytes, &p.packed.mag);
  EXPECT_EQ(p.packed.values, p.plain.values);
  return p;
}

std::vector<float> Guarded(int64_t n) {
  std::vector<float> v(size_t(n + kGuardLen), kGuard);
  std::fill(v.begin(), v.begin() + n, NAN);
  return v;
}
void ExpectGuardIntact(const std::vector<float> &v, int64_t n) {
  for (int64_t i = n; i < int64_t(v.size()); ++i)
    ASSERT_EQ(v[i], kGuard) << "written past the output, at " << i - n;
}

// rms_norm of row t of x [T, K] in double (w null: x itself).
std::vector<double> RefInput(const std::vector<float> &x, int64_t t, int64_t K,
                             const float *w) {
  std::vector<double> row(x.begin() + t * K, x.begin() + (t + 1) * K);
  if (w == nullptr)
    return row;
  double ss = 0;
  for (double v : row)
    ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / double(K) + kEps);
  for (int64_t i = 0; i < K; ++i)
    row[i] *= inv * (1.0 + w[i]);
  return row;
}

double Gelu(double v) {
  return 0.5 * v *
         (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
}

// The byte layout itself: run (g, b) is block b of rows 8g..8g+7, their d
// then their qs; the size is Q4G32's, and gemmac_weight_bytes says so.
TEST_P(PackedTest, TheLayoutIsQ4G32PermutedBy8Rows) {
  std::mt19937 rng(60);
  const int64_t rows = 16, cols = 64;
  const Pair p = MakePair(rows, cols, rng, -1, 1);
  ASSERT_EQ(int64_t(p.packed.bytes.size()),
            gemmac_weight_bytes(R8, rows, cols));
  EXPECT_EQ(gemmac_weight_bytes(R8, rows, cols),
            gemmac_weight_bytes(Q4, rows, cols));
  EXPECT_EQ(gemmac_weight_bytes(R8, 12, cols), -1); // rows % 8
  EXPECT_EQ(gemmac_weight_bytes(R8, rows, 48), -1); // cols % 32
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < cols / 32; ++b) {
      const uint8_t *blk = &p.plain.bytes[size_t((r * 2 + b) * 18)];
      const uint8_t *run = &p.packed.bytes[size_t(((r / 8) * 2 + b) * 144)];
      EXPECT_EQ(std::memcmp(run + 2 * (r % 8), blk, 2), 0) << r << " " << b;
      EXPECT_EQ(std::memcmp(run + 16 + 16 * (r % 8), blk + 2, 16), 0)
          << r << " " << b;
    }
}

// embed reads single rows out of the 8-row runs: the same f32 values as
// from Q4G32, bit for bit (each is one product of a nibble and d, then the
// scale).
TEST_P(PackedTest, EmbedReadsOneRowOfAGroup) {
  std::mt19937 rng(61);
  const int64_t V = 24, H = 96;
  const Pair p = MakePair(V, H, rng, -1, 1);
  std::vector<int32_t> tokens = {0, 7, 8, 15, 23, 16, 3};
  const int64_t T = int64_t(tokens.size());
  gemmac_op_attrs a = Attrs();
  a.scale = 3.0f;
  std::vector<float> plain(T * H), packed(T * H);
  for (auto [dtype, w, out] :
       {std::tuple{Q4, &p.plain, &plain}, std::tuple{R8, &p.packed, &packed}})
    Run(GEMMAC_OP_EMBED, a, {GEMMAC_DTYPE_I32, dtype},
        {Tensor(tokens.data(), GEMMAC_DTYPE_I32, {T}),
         Tensor(const_cast<Weights *>(w)->data(), dtype, {V, H})},
        Tensor(out->data(), F, {T, H}));
  EXPECT_EQ(packed, plain);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < H; ++i)
      ASSERT_EQ(packed[t * H + i],
                float(p.packed.values[tokens[t] * H + i]) * a.scale);
}

// y = x @ w^T over both layouts: T covers one token, partial and whole
// groups of four and several groups; N one and several 8-row tiles.
TEST_P(PackedTest, LinearEqualsQ4G32AndTheReference) {
  std::mt19937 rng(62);
  struct Shape {
    int64_t N, K;
  };
  for (Shape s : {Shape{8, 32}, Shape{40, 96}, Shape{64, 256}})
    for (int64_t T : {1, 2, 3, 4, 5, 9, 17}) {
      SCOPED_TRACE("N " + std::to_string(s.N) + " K " + std::to_string(s.K) +
                   " T " + std::to_string(T));
      const Pair p = MakePair(s.N, s.K, rng, -1, 0.5f);
      std::vector<float> x = Uniform(T * s.K, rng, -1, 1);
      std::vector<float> plain(T * s.N, NAN), packed = Guarded(T * s.N);
      Run(GEMMAC_OP_LINEAR, Attrs(), {F, Q4},
          {Tensor(x.data(), F, {T, s.K}),
           Tensor(const_cast<Pair &>(p).plain.data(), Q4, {s.N, s.K})},
          Tensor(plain.data(), F, {T, s.N}));
      Run(GEMMAC_OP_LINEAR, Attrs(), {F, R8},
          {Tensor(x.data(), F, {T, s.K}),
           Tensor(const_cast<Pair &>(p).packed.data(), R8, {s.N, s.K})},
          Tensor(packed.data(), F, {T, s.N}));
      ExpectGuardIntact(packed, T * s.N);
      for (int64_t t = 0; t < T; ++t) {
        const std::vector<double> xp = RefInput(x, t, s.K, nullptr);
        for (int64_t n = 0; n < s.N; ++n) {
          const Dot d = RefDot(xp, p.packed, n);
          const float got = packed[t * s.N + n];
          ASSERT_NEAR(got, d.value, kRel * d.mag + d.slack + 1e-12)
              << "t " << t << " n " << n;
          ASSERT_NEAR(got, plain[t * s.N + n], kSame * d.mag + d.slack + 1e-12)
              << "vs q4g32, t " << t << " n " << n;
        }
      }
    }
}

// lm_head scores the first R rows of a table whose rows fill 8-row groups:
// the last tile computes a whole group and writes only its first R % 8.
TEST_P(PackedTest, LmHeadWritesOnlyTheFirstRows) {
  std::mt19937 rng(63);
  const int64_t T = 3, V = 48, R = 41, H = 64;
  const Pair p = MakePair(V, H, rng, -1, 1);
  std::vector<float> x = Uniform(T * H, rng, -1, 1);
  gemmac_op_attrs a = Attrs();
  a.rows = int32_t(R);
  std::vector<float> plain(T * R, NAN), packed = Guarded(T * R);
  Run(GEMMAC_OP_LM_HEAD, a, {F, Q4},
      {Tensor(x.data(), F, {T, H}),
       Tensor(const_cast<Pair &>(p).plain.data(), Q4, {V, H})},
      Tensor(plain.data(), F, {T, R}));
  Run(GEMMAC_OP_LM_HEAD, a, {F, R8},
      {Tensor(x.data(), F, {T, H}),
       Tensor(const_cast<Pair &>(p).packed.data(), R8, {V, H})},
      Tensor(packed.data(), F, {T, R}));
  ExpectGuardIntact(packed, T * R);
  for (int64_t t = 0; t < T; ++t) {
    const std::vector<double> xp = RefInput(x, t, H, nullptr);
    for (int64_t n = 0; n < R; ++n) {
      const Dot d = RefDot(xp, p.packed, n);
      ASSERT_NEAR(packed[t * R + n], d.value, kRel * d.mag + d.slack + 1e-12);
      ASSERT_NEAR(packed[t * R + n], plain[t * R + n],
                  kSame * d.mag + d.slack + 1e-12);
    }
  }
}

// final_head: the folded norm, the soft-cap and the one-row (last position)
// form over a packed table, R not a multiple of 8.
TEST_P(PackedTest, FinalHead) {
  std::mt19937 rng(64);
  const int64_t V = 48, R = 41, H = 128;
  const Pair p = MakePair(V, H, rng, -1, 1);
  for (int64_t T : {1, 5, 19})
    for (bool last_only : {false, true})
      for (float softcap : {0.0f, 3.0f}) {
        if (last_only && T == 1)
          continue;
        SCOPED_TRACE("T " + std::to_string(T) + (last_only ? " last" : "") +
                     " softcap " + std::to_string(softcap));
        std::vector<float> x = Uniform(T * H, rng, -2, 2);
        std::vector<float> norm = Uniform(H, rng, -0.5f, 0.5f);
        gemmac_op_attrs a = Attrs();
        a.rows = int32_t(R);
        a.eps = kEps;
        a.offset = 1.0f;
        a.softcap = softcap;
        const int64_t rows = last_only ? 1 : T;
        std::vector<float> plain(rows * R, NAN), packed = Guarded(rows * R);
        for (auto [dtype, w, out] : {std::tuple{Q4, &p.plain, &plain},
                                     std::tuple{R8, &p.packed, &packed}})
          Run(GEMMAC_OP_FINAL_HEAD, a, {F, F, dtype},
              {Tensor(x.data(), F, {T, H}), Tensor(norm.data(), F, {H}),
               Tensor(const_cast<Weights *>(w)->data(), dtype, {V, H})},
              Tensor(out->data(), F, {rows, R}));
        ExpectGuardIntact(packed, rows * R);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t t = last_only ? T - 1 : r;
          const std::vector<double> xp = RefInput(x, t, H, norm.data());
          for (int64_t n = 0; n < R; ++n) {
            const Dot d = RefDot(xp, p.packed, n);
            const double want =
                softcap > 0 ? softcap * std::tanh(d.value / softcap) : d.value;
            ASSERT_NEAR(packed[r * R + n], want, kRel * d.mag + d.slack + 1e-9)
                << "row " << r << " n " << n;
            ASSERT_NEAR(packed[r * R + n], plain[r * R + n],
                        kSame * d.mag + d.slack + 1e-9)
                << "vs q4g32, row " << r << " n " << n;
          }
        }
      }
}

// gated_mlp with and without its norm; T = 300 crosses the 256-token tile
// of the norm factors.
TEST_P(PackedTest, GatedMlp) {
  std::mt19937 rng(65);
  const int64_t K = 128, Fd = 40;
  const Pair g = MakePair(Fd, K, rng, -0.3f, 0.3f);
  const Pair u = MakePair(Fd, K, rng, -0.3f, 0.3f);
  for (int64_t T : {1, 5, 300})
    for (bool with_norm : {false, true}) {
      SCOPED_TRACE("T " + std::to_string(T) + (with_norm ? " norm" : ""));
      std::vector<float> x = Uniform(T * K, rng, -2, 2);
      std::vector<float> norm = Uniform(K, rng, -0.5f, 0.5f);
      gemmac_op_attrs a = Attrs();
      a.eps = kEps;
      a.offset = 1.0f;
      std::vector<float> plain(T * Fd, NAN), packed = Guarded(T * Fd);
      for (auto [dtype, wg, wu, out] :
           {std::tuple{Q4, &g.plain, &u.plain, &plain},
            std::tuple{R8, &g.packed, &u.packed, &packed}})
        Run(GEMMAC_OP_GATED_MLP, a,
            {F, with_norm ? F : GEMMAC_DTYPE_NONE, dtype, dtype},
            {Tensor(x.data(), F, {T, K}),
             with_norm ? Tensor(norm.data(), F, {K}) : Absent(),
             Tensor(const_cast<Weights *>(wg)->data(), dtype, {Fd, K}),
             Tensor(const_cast<Weights *>(wu)->data(), dtype, {Fd, K})},
            Tensor(out->data(), F, {T, Fd}));
      ExpectGuardIntact(packed, T * Fd);
      for (int64_t t = 0; t < T; ++t) {
        const std::vector<double> xp =
            RefInput(x, t, K, with_norm ? norm.data() : nullptr);
        for (int64_t n = 0; n < Fd; ++n) {
          const Dot gd = RefDot(xp, g.packed, n), ud = RefDot(xp, u.packed, n);
          // As fused_test.cc: |gelu'| <= 1.13.
          const double scale = 1.13 * gd.mag * std::fabs(ud.value) +
                               std::fabs(Gelu(gd.value)) * ud.mag;
          const double slack = 1.13 * gd.slack * std::fabs(ud.value) +
                               std::fabs(Gelu(gd.value)) * ud.slack;
          const float got = packed[t * Fd + n];
          ASSERT_NEAR(got, Gelu(gd.value) * ud.value,
                      kRel * scale + slack + 1e-9)
              << "t " << t << " n " << n;
          ASSERT_NEAR(got, plain[t * Fd + n], kSame * scale + slack + 1e-9)
              << "vs q4g32, t " << t << " n " << n;
        }
      }
    }
}

// qkv_proj over packed wq, wk, wv with every combination of its optional
// inputs, and with the three in different formats (each matrix gets its
// own kernel). v (no QK-norm, no RoPE) is checked against the reference;
// q and k against the Q4G32 run, relative to each head's largest value
// (QK-norm mixes a head), as fused_test.cc compares with the chain.
TEST_P(PackedTest, QkvProj) {
  std::mt19937 rng(66);
  const int64_t H = 4, KV = 2, D = 16, K = 128;
  const int64_t Nq = H * D, Nk = KV * D;
  const Pair wq = MakePair(Nq, K, rng, -0.5f, 0.5f);
  const Pair wk = MakePair(Nk, K, rng, -0.5f, 0.5f);
  const Pair wv = MakePair(Nk, K, rng, -0.5f, 0.5f);
  const Weights wk8 = MakeMatrix(GEMMAC_DTYPE_Q8C, Nk, K, rng, -0.5f, 0.5f);
  gemmac_op_attrs a = Attrs();
  a.head_dim = int32_t(D);
  a.num_heads = int32_t(H);
  a.num_kv_heads = int32_t(KV);
  a.theta = 10000.0f;
  a.rope_scale = 1.0f;
  a.eps = kEps;
  a.offset = 1.0f;
  for (int64_t T : {1, 6, 18})
    for (int mask = 0; mask < 16; ++mask) {
      const bool with_norm = mask & 1, with_qn = mask & 2, with_kn = mask & 4;
      const bool mixed = mask & 8; // wk as Q8C in both runs
      SCOPED_TRACE("T " + std::to_string(T) + " mask " + std::to_string(mask));
      std::vector<float> x = Uniform(T * K, rng, -2, 2);
      std::vector<float> norm = Uniform(K, rng, -0.5f, 0.5f);
      std::vector<float> qn = Uniform(D, rng, -0.5f, 0.5f);
      std::vector<float> kn = Uniform(D, rng, -0.5f, 0.5f);
      auto opt = [](bool on, std::vector<float> &v, int64_t n) {
        return on ? Tensor(v.data(), F, {n}) : Absent();
      };
      const gemmac_exec_context ctx = Context(T == 1 ? 9 : 3, T);
      std::vector<float> out[2][3];
      for (int packed = 0; packed < 2; ++packed) {
        const int32_t d = packed ? R8 : Q4;
        const int32_t dk = mixed ? GEMMAC_DTYPE_Q8C : d;
        auto pick = [&](const Pair &p) {
          return const_cast<Weights &>(packed ? p.packed : p.plain).data();
        };
        void *kdata = mixed ? const_cast<Weights &>(wk8).data() : pick(wk);
        std::vector<float> *o = out[packed];
        o[0] = Guarded(T * Nq);
        o[1] = Guarded(T * Nk);
        o[2] = Guarded(T * Nk);
        RunN(GEMMAC_OP_QKV_PROJ, a,
             {F, with_norm ? F : GEMMAC_DTYPE_NONE, d, dk, d,
              with_qn ? F : GEMMAC_DTYPE_NONE, with_kn ? F : GEMMAC_DTYPE_NONE},
             {Tensor(x.data(), F, {T, K}), opt(with_norm, norm, K),
              Tensor(pick(wq), d, {Nq, K}), Tensor(kdata, dk, {Nk, K}),
              Tensor(pick(wv), d, {Nk, K}), opt(with_qn, qn, D),
              opt(with_kn, kn, D)},
             {Tensor(o[0].data(), F, {T, Nq}), Tensor(o[1].data(), F, {T, Nk}),
              Tensor(o[2].data(), F, {T, Nk})},
             &ctx);
        if (HasFatalFailure())
          return;
        ExpectGuardIntact(o[0], T * Nq);
        ExpectGuardIntact(o[1], T * Nk);
        ExpectGuardIntact(o[2], T * Nk);
      }
      for (int j = 0; j < 3; ++j)
        for (int64_t h0 = 0; h0 < int64_t(out[0][j].size()) - kGuardLen;
             h0 += D) {
          double peak = 0;
          for (int64_t i = 0; i < D; ++i)
            peak = std::max(peak, double(std::fabs(out[0][j][h0 + i])));
          for (int64_t i = 0; i < D; ++i)
            ASSERT_NEAR(out[1][j][h0 + i], out[0][j][h0 + i],
                        2e-5 * peak + 1e-9)
                << "output " << j << " element " << h0 + i;
        }
      for (int64_t t = 0; t < T; ++t) {
        const std::vector<double> xp =
            RefInput(x, t, K, with_norm ? norm.data() : nullptr);
        for (int64_t n = 0; n < Nk; ++n) {
          const Dot d = RefDot(xp, wv.packed, n);
          ASSERT_NEAR(out[1][2][t * Nk + n], d.value,
                      kRel * d.mag + d.slack + 1e-9)
              << "v, t " << t << " n " << n;
        }
      }
    }
}

// Rows that do not fill the 8-row groups are refused at launch, whichever
// op reads the matrix; so are cols that do not fill the 32-column blocks.
TEST_P(PackedTest, RowsNotAMultipleOf8AreRefused) {
  std::vector<uint8_t> w(size_t(16 * 64 / 32 * 18));
  std::vector<float> x(2 * 64), y(2 * 16);
  std::string msg;
  gemmac_kernel *lin = Prepare(GEMMAC_OP_LINEAR, Attrs(), {F, R8});
  EXPECT_EQ(
      Launch(lin,
             {Tensor(x.data(), F, {2, 64}), Tensor(w.data(), R8, {12, 64})},
             Tensor(y.data(), F, {2, 12}), nullptr, &msg),
      GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("linear: input w is q4g32r8 [12,64], expected "
                             "rows to be a multiple of 8 (the rows the "
                             "format packs together)"));
  std::vector<float> x2(2 * 48);
  EXPECT_EQ(
      Launch(lin,
             {Tensor(x2.data(), F, {2, 48}), Tensor(w.data(), R8, {16, 48})},
             Tensor(y.data(), F, {2, 16}), nullptr, &msg),
      GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("linear: input w is q4g32r8 [16,48], expected "
                             "cols to be a multiple of the format's group "
                             "size 32"));

  // qkv_proj: a 4-row wk (one KV head of 4) cannot be packed.
  gemmac_op_attrs a = Attrs();
  a.head_dim = 4;
  a.num_heads = 2;
  a.num_kv_heads = 1;
  a.theta = 10000.0f;
  a.rope_scale = 1.0f;
  a.eps = kEps;
  gemmac_kernel *qkv = PrepareN(
      GEMMAC_OP_QKV_PROJ, a,
      {F, GEMMAC_DTYPE_NONE, R8, R8, R8, GEMMAC_DTYPE_NONE, GEMMAC_DTYPE_NONE},
      3);
  std::vector<float> q(2 * 8), k(2 * 4), v(2 * 4);
  EXPECT_EQ(
      LaunchN(qkv,
              {Tensor(x.data(), F, {2, 64}), Absent(),
               Tensor(w.data(), R8, {8, 64}), Tensor(w.data(), R8, {4, 64}),
               Tensor(w.data(), R8, {4, 64}), Absent(), Absent()},
              {Tensor(q.data(), F, {2, 8}), Tensor(k.data(), F, {2, 4}),
               Tensor(v.data(), F, {2, 4})},
              nullptr, &msg),
      GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("qkv_proj: input wk is q4g32r8 [4,64], expected "
                             "rows to be a multiple of 8"));

  // embed: the table's rows too, though embed reads them one at a time.
  gemmac_kernel *emb =
      Prepare(GEMMAC_OP_EMBED, Attrs(), {GEMMAC_DTYPE_I32, R8});
  std::vector<int32_t> tokens = {0, 1};
  std::vector<float> e(2 * 64);
  EXPECT_EQ(Launch(emb,
                   {Tensor(tokens.data(), GEMMAC_DTYPE_I32, {2}),
                    Tensor(w.data(), R8, {12, 64})},
                   Tensor(e.data(), F, {2, 64}), nullptr, &msg),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("embed: input table is q4g32r8 [12,64], "
                             "expected rows to be a multiple of 8"));
}

GEMMAC_CPU_INSTANTIATE(PackedTest);

} // namespace
} // namespace gemmac::cpu_test
