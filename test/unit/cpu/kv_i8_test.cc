// attention over an int8 KV cache (gemmac_kv_cache.dtype I8, ABI 1.1): the
// stored rows and scales are exactly the tests' own quantization of k and v
// (cpu_test_support.cc, QuantizeKvRow); the output matches a double-
// precision attention over those dequantized rows as tightly as the f32
// cache matches its reference; and it stays within a bound derived from the
// int8 rounding of the f32-cache result. GQA, windows, soft-caps and rings
// that wrap are covered as in attention_test.cc.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu_test_support.h"

namespace gemmac::cpu_test {
namespace {

struct I8Case {
  const char *name;
  int32_t H, KV, D;
  int32_t window;
  float softcap;
  float scale;
  int32_t capacity;
  std::vector<int64_t> chunks; // T of each successive call
};

// Softmax-weighted sum of v rows over the visible positions, in double.
std::vector<double> Attend(const float *q, int64_t D, double scale,
                           double softcap, const std::vector<int64_t> &js,
                           const std::vector<std::vector<double>> &k,
                           const std::vector<std::vector<double>> &v,
                           int64_t off) {
  std::vector<double> s;
  for (int64_t j : js) {
    double dot = 0;
    for (int64_t d = 0; d < D; ++d)
      dot += double(q[d]) * k[j][off + d];
    double sj = dot * scale;
    if (softcap > 0)
      sj = softcap * std::tanh(sj / softcap);
    s.push_back(sj);
  }
  const double m = *std::max_element(s.begin(), s.end());
  double sum = 0;
  for (double &e : s)
    sum += (e = std::exp(e - m));
  std::vector<double> out(D, 0.0);
  for (size_t i = 0; i < js.size(); ++i)
    for (int64_t d = 0; d < D; ++d)
      out[d] += s[i] / sum * v[js[i]][off + d];
  return out;
}

class KvI8Test : public CpuPluginTest {
protected:
  void Check(const I8Case &c);
};

void KvI8Test::Check(const I8Case &c) {
  SCOPED_TRACE(c.name);
  std::mt19937 rng(60);
  const int64_t H = c.H, KV = c.KV, D = c.D, cap = c.capacity;
  gemmac_op_attrs a = Attrs();
  a.num_heads = c.H;
  a.num_kv_heads = c.KV;
  a.head_dim = c.D;
  a.scale = c.scale;
  a.window = c.window;
  a.softcap = c.softcap;
  gemmac_kernel *kernel =
      Prepare(GEMMAC_OP_ATTENTION, a,
              {GEMMAC_DTYPE_F32, GEMMAC_DTYPE_F32, GEMMAC_DTYPE_F32});
  ASSERT_NE(kernel, nullptr);

  const size_t row = size_t(KV * D);
  std::vector<int8_t> kc(cap * row, 0x55), vc(cap * row, 0x55);
  // Unwritten scales are NaN: reading one would poison the output.
  std::vector<float> ks(cap * KV, NAN), vs(cap * KV, NAN);
  gemmac_kv_cache cache{};
  cache.struct_size = sizeof(cache);
  cache.k = kc.data();
  cache.v = vc.data();
  cache.dtype = GEMMAC_DTYPE_I8;
  cache.capacity = c.capacity;
  cache.num_kv_heads = c.KV;
  cache.head_dim = c.D;
  cache.k_scale = ks.data();
  cache.v_scale = vs.data();

  // Per position [KV*D]: the f32 rows, and the test's dequantized rows with
  // their scales.
  std::vector<std::vector<double>> k32, v32, k8, v8, ksc, vsc;
  int64_t past = 0;
  double worst_gap = 0; // largest |int8 result - f32 result| seen
  for (int64_t T : c.chunks) {
    SCOPED_TRACE("past " + std::to_string(past) + " T " + std::to_string(T));
    std::vector<float> q = Uniform(T * H * D, rng, -1, 1);
    std::vector<float> kn = Uniform(T * row, rng, -1, 1);
    std::vector<float> vn = Uniform(T * row, rng, -1, 1);
    // Rows of very different sizes, so per-row scales matter.
    for (int64_t t = 0; t < T; ++t)
      for (size_t i = 0; i < row; ++i) {
        kn[t * row + i] *= float(1 + (t + i / D) % 3);
        vn[t * row + i] *= float(1 + (t + i / D) % 4) * 0.5f;
      }
    std::vector<float> out(T * H * D, NAN);
    std::vector<int8_t> want_k(T * row), want_v(T * row);
    std::vector<float> want_ks(T * KV), want_vs(T * KV);
    for (int64_t t = 0; t < T; ++t) {
      k32.emplace_back(kn.begin() + t * row, kn.begin() + (t + 1) * row);
      v32.emplace_back(vn.begin() + t * row, vn.begin() + (t + 1) * row);
      std::vector<double> kd(row), vd(row), ksr(KV), vsr(KV);
      for (int64_t h = 0; h < KV; ++h) {
        const size_t o = size_t(t * row + h * D);
        want_ks[t * KV + h] = QuantizeKvRow(&kn[o], D, &want_k[o]);
        want_vs[t * KV + h] = QuantizeKvRow(&vn[o], D, &want_v[o]);
        for (int64_t d = 0; d < D; ++d) {
          kd[h * D + d] = double(want_k[o + d]) * want_ks[t * KV + h];
          vd[h * D + d] = double(want_v[o + d]) * want_vs[t * KV + h];
        }
        ksr[h] = want_ks[t * KV + h];
        vsr[h] = want_vs[t * KV + h];
      }
      k8.push_back(kd);
      v8.push_back(vd);
      ksc.push_back(ksr);
      vsc.push_back(vsr);
    }
    const gemmac_exec_context ctx = Context(past, T, &cache, 1);
    std::string msg;
    ASSERT_EQ(Launch(kernel,
                     {Tensor(q.data(), GEMMAC_DTYPE_F32, {T, H * D}),
                      Tensor(kn.data(), GEMMAC_DTYPE_F32, {T, KV * D}),
                      Tensor(vn.data(), GEMMAC_DTYPE_F32, {T, KV * D})},
                     Tensor(out.data(), GEMMAC_DTYPE_F32, {T, H * D}), &ctx,
                     &msg),
              GEMMAC_PLUGIN_OK)
        << msg;

    // The stored rows are exactly the test's quantization, at slot
    // (past + t) % capacity.
    for (int64_t t = 0; t < T; ++t) {
      const int64_t slot = (past + t) % cap;
      for (int64_t h = 0; h < KV; ++h) {
        ASSERT_EQ(ks[slot * KV + h], want_ks[t * KV + h]) << "t " << t;
        ASSERT_EQ(vs[slot * KV + h], want_vs[t * KV + h]) << "t " << t;
      }
      for (size_t i = 0; i < row; ++i) {
        ASSERT_EQ(kc[slot * row + i], want_k[t * row + i]) << "t " << t;
        ASSERT_EQ(vc[slot * row + i], want_v[t * row + i]) << "t " << t;
      }
    }

    for (int64_t t = 0; t < T; ++t) {
      const int64_t p = past + t;
      std::vector<int64_t> js;
      for (int64_t j = 0; j <= p; ++j)
        if (c.window == 0 || p - j < c.window)
          js.push_back(j);
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / (H / KV);
        const float *qh = &q[t * H * D + h * D];
        const std::vector<double> exact =
            Attend(qh, D, c.scale, c.softcap, js, k8, v8, g * D);
        const std::vector<double> full =
            Attend(qh, D, c.scale, c.softcap, js, k32, v32, g * D);
        // The bound against the f32 cache. Each cached k element is off by
        // at most s_k/2, so a score by delta <= scale * sum|q| * s_k/2
        // (the soft-cap is 1-Lipschitz). Scores off by at most delta change
        // each softmax weight by a factor within e^(+-2 delta), so the
        // weighted sum of v moves by at most (e^(2 delta) - 1) max|v|; the
        // v rows themselves are off by at most s_v/2.
        double q1 = 0;
        for (int64_t d = 0; d < D; ++d)
          q1 += std::fabs(qh[d]);
        double delta = 0, vmax = 0, sv = 0;
        for (int64_t j : js) {
          delta = std::max(delta, double(c.scale) * q1 * ksc[j][g] / 2);
          sv = std::max(sv, vsc[j][g] / 2);
          for (int64_t d = 0; d < D; ++d)
            vmax = std::max(vmax, std::fabs(v32[j][g * D + d]));
        }
        const double bound = std::expm1(2 * delta) * vmax + sv + 2e-5;
        for (int64_t d = 0; d < D; ++d) {
          const float got = out[t * H * D + h * D + d];
          // The same 2e-5 as the f32 cache against its reference.
          ASSERT_NEAR(got, exact[d], 2e-5 * std::max(1.0, vmax))
              << "t " << t << " head " << h << " d " << d;
          ASSERT_NEAR(got, full[d], bound)
              << "vs f32 cache, t " << t << " head " << h << " d " << d;
          worst_gap = std::max(worst_gap, std::fabs(got - full[d]));
        }
      }
    }
    past += T;
  }
  // The cache really is int8: the result is not the f32 one.
  EXPECT_GT(worst_gap, 1e-4);
}

const std::vector<int64_t> kPrefillThenDecode = {5, 1, 1, 1, 7, 1, 2};

TEST_P(KvI8Test, GroupedQueryGlobal) {
  Check({"gqa", 4, 2, 16, 0, 0.0f, 0.25f, 64, kPrefillThenDecode});
}

TEST_P(KvI8Test, SlidingWindow) {
  Check({"window", 4, 2, 16, 4, 0.0f, 0.25f, 64, kPrefillThenDecode});
}

TEST_P(KvI8Test, Softcap) {
  Check({"softcap", 4, 2, 16, 0, 5.0f, 1.0f, 64, kPrefillThenDecode});
}

TEST_P(KvI8Test, RingWraps) {
  Check({"ring",
         4,
         2,
         16,
         5,
         0.0f,
         0.25f,
         5 + 3,
         {3, 1, 1, 3, 2, 3, 3, 1, 3, 3, 3, 1, 1, 1, 3, 3, 3, 3}});
}

TEST_P(KvI8Test, GemmaSizedHeads) {
  Check({"gemma", 4, 1, 256, 8, 0.0f, 0.0625f, 8 + 6, {6, 1, 1, 6, 1}});
}

TEST_P(KvI8Test, DecodeSplitsTheKeysAcrossThreads) {
  // One KV head, T = 1 and 200+ keys: the split-key decode path
  // (attention_test.cc) over the int8 rows.
  Check({"split", 4, 1, 64, 0, 0.0f, 0.5f, 260, {200, 1, 1}});
}

TEST_P(KvI8Test, ZeroRowsHaveZeroScale) {
  // An all-zero k/v row stores scale 0 and zeros, and attends as zeros.
  const int64_t H = 2, KV = 1, D = 8;
  gemmac_op_attrs a = Attrs();
  a.num_heads = H;
  a.num_kv_heads = KV;
  a.head_dim = D;
  gemmac_kernel *kernel =
      Prepare(GEMMAC_OP_ATTENTION, a,
              {GEMMAC_DTYPE_F32, GEMMAC_DTYPE_F32, GEMMAC_DTYPE_F32});
  std::vector<int8_t> kc(4 * D, 9), vc(4 * D, 9);
  std::vector<float> ks(4, NAN), vs(4, NAN);
  gemmac_kv_cache cache{};
  cache.struct_size = sizeof(cache);
  cache.k = kc.data();
  cache.v = vc.data();
  cache.dtype = GEMMAC_DTYPE_I8;
  cache.capacity = 4;
  cache.num_kv_heads = KV;
  cache.head_dim = D;
  cache.k_scale = ks.data();
  cache.v_scale = vs.data();
  std::vector<float> q(H * D, 1.0f), zero(D, 0.0f), out(H * D, NAN);
  const gemmac_exec_context ctx = Context(0, 1, &cache, 1);
  std::string msg;
  ASSERT_EQ(Launch(kernel,
                   {Tensor(q.data(), GEMMAC_DTYPE_F32, {1, H * D}),
                    Tensor(zero.data(), GEMMAC_DTYPE_F32, {1, D}),
                    Tensor(zero.data(), GEMMAC_DTYPE_F32, {1, D})},
                   Tensor(out.data(), GEMMAC_DTYPE_F32, {1, H * D}), &ctx,
                   &msg),
            GEMMAC_PLUGIN_OK)
      << msg;
  EXPECT_EQ(ks[0], 0.0f);
  EXPECT_EQ(vs[0], 0.0f);
  for (int64_t d = 0; d < D; ++d) {
    EXPECT_EQ(kc[d], 0);
    EXPECT_EQ(vc[d], 0);
  }
  for (float o : out)
    EXPECT_EQ(o, 0.0f);
}

GEMMAC_CPU_INSTANTIATE(KvI8Test);

} // namespace
} // namespace gemmac::cpu_test
