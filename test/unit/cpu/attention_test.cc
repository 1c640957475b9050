// attention against a double-precision reference that keeps the whole
// history of k and v: GQA, MQA, sliding windows, soft-capping, prefill
// chunks followed by decode steps, and ring caches that wrap.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

#include "cpu_test_support.h"

namespace gemmac::cpu_test {
namespace {

using AttentionTest = CpuPluginTest;

struct AttnCase {
  const char *name;
  int32_t H, KV, D;
  int32_t window;
  float softcap;
  float scale;
  int32_t capacity;
  std::vector<int64_t> chunks; // T of each successive call
};

class AttentionCases : public AttentionTest {
protected:
  // Runs the calls of one case on one KV cache and compares each output with
  // the reference. The cache is `layer` 1 of two, to check the index is used.
  void Check(const AttnCase &c);
};

void AttentionCases::Check(const AttnCase &c) {
  SCOPED_TRACE(c.name);
  std::mt19937 rng(30);
  const int64_t H = c.H, KV = c.KV, D = c.D, cap = c.capacity;
  gemmac_op_attrs a = Attrs();
  a.layer = 1;
  a.num_heads = c.H;
  a.num_kv_heads = c.KV;
  a.head_dim = c.D;
  a.scale = c.scale;
  a.window = c.window;
  a.softcap = c.softcap;
  gemmac_kernel *k =
      Prepare(GEMMAC_OP_ATTENTION, a,
              {GEMMAC_DTYPE_F32, GEMMAC_DTYPE_F32, GEMMAC_DTYPE_F32});
  ASSERT_NE(k, nullptr);

  const size_t row = size_t(KV * D);
  float *kc = static_cast<float *>(api_.alloc(backend_, cap * row * 4, 64));
  float *vc = static_cast<float *>(api_.alloc(backend_, cap * row * 4, 64));
  ASSERT_TRUE(kc && vc);
  std::fill(kc, kc + cap * row, NAN); // unwritten rows must never be read
  std::fill(vc, vc + cap * row, NAN);
  gemmac_kv_cache caches[2] = {};
  for (gemmac_kv_cache &kv : caches) {
    kv.struct_size = sizeof(kv);
    kv.dtype = GEMMAC_DTYPE_F32;
    kv.num_kv_heads = c.KV;
    kv.head_dim = c.D;
  }
  caches[1].k = kc;
  caches[1].v = vc;
  caches[1].capacity = c.capacity;

  std::vector<std::vector<float>> hist_k, hist_v; // per position, [KV*D]
  int64_t past = 0;
  for (int64_t T : c.chunks) {
    SCOPED_TRACE("past " + std::to_string(past) + " T " + std::to_string(T));
    std::vector<float> q = Uniform(T * H * D, rng, -1, 1);
    std::vector<float> kn = Uniform(T * row, rng, -1, 1);
    std::vector<float> vn = Uniform(T * row, rng, -1, 1);
    std::vector<float> out(T * H * D, NAN);
    for (int64_t t = 0; t < T; ++t) {
      hist_k.emplace_back(kn.begin() + t * row, kn.begin() + (t + 1) * row);
      hist_v.emplace_back(vn.begin() + t * row, vn.begin() + (t + 1) * row);
    }
    const gemmac_exec_context ctx = Context(past, T, caches, 2);
    std::string msg;
    ASSERT_EQ(Launch(k,
                     {Tensor(q.data(), GEMMAC_DTYPE_F32, {T, H * D}),
                      Tensor(kn.data(), GEMMAC_DTYPE_F32, {T, KV * D}),
                      Tensor(vn.data(), GEMMAC_DTYPE_F32, {T, KV * D})},
                     Tensor(out.data(), GEMMAC_DTYPE_F32, {T, H * D}), &ctx,
                     &msg),
              GEMMAC_PLUGIN_OK)
        << msg;

    // The new rows sit in the ring at (past + t) % capacity.
    for (int64_t t = 0; t < T; ++t) {
      const int64_t slot = (past + t) % cap;
      for (size_t i = 0; i < row; ++i) {
        ASSERT_EQ(kc[slot * row + i], kn[t * row + i]);
        ASSERT_EQ(vc[slot * row + i], vn[t * row + i]);
      }
    }

    for (int64_t t = 0; t < T; ++t) {
      const int64_t p = past + t;
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / (H / KV);
        std::vector<double> s;
        std::vector<int64_t> js;
        for (int64_t j = 0; j <= p; ++j) {
          if (c.window > 0 && p - j >= c.window)
            continue;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += double(q[t * H * D + h * D + d]) * hist_k[j][g * D + d];
          double sj = dot * double(c.scale);
          if (c.softcap > 0)
            sj = c.softcap * std::tanh(sj / c.softcap);
          s.push_back(sj);
          js.push_back(j);
        }
        const double m = *std::max_element(s.begin(), s.end());
        double sum = 0;
        for (double &e : s)
          sum += (e = std::exp(e - m));
        for (int64_t d = 0; d < D; ++d) {
          double want = 0;
          for (size_t i = 0; i < js.size(); ++i)
            want += s[i] / sum * hist_v[js[i]][g * D + d];
          // Values in [-1, 1]; f32 dot products of length D and an f32
          // online softmax: 2e-5 absolute.
          ASSERT_NEAR(out[t * H * D + h * D + d], want, 2e-5)
              << "t " << t << " head " << h << " d " << d;
        }
      }
    }
    past += T;
  }
  api_.free(backend_, kc);
  api_.free(backend_, vc);
}

const std::vector<int64_t> kPrefillThenDecode = {5, 1, 1, 1, 7, 1, 2};

TEST_P(AttentionCases, GroupedQueryGlobal) {
  Check({"gqa", 4, 2, 16, 0, 0.0f, 0.25f, 64, kPrefillThenDecode});
}

TEST_P(AttentionCases, MultiQuery) {
  Check({"mqa", 4, 1, 8, 0, 0.0f, 0.35f, 32, kPrefillThenDecode});
}

TEST_P(AttentionCases, MultiHead) {
  Check({"mha", 3, 3, 12, 0, 0.0f, 0.3f, 18, kPrefillThenDecode});
}

TEST_P(AttentionCases, SlidingWindowWithoutWrap) {
  Check({"window", 4, 2, 16, 4, 0.0f, 0.25f, 64, kPrefillThenDecode});
}

TEST_P(AttentionCases, SoftcapChangesLargeScores) {
  // Scores reach ~|D| * scale = 16, well above the cap of 5.
  Check({"softcap", 4, 2, 16, 0, 5.0f, 1.0f, 64, kPrefillThenDecode});
}

TEST_P(AttentionCases, RingWrapsWithCapacityWindowPlusChunk) {
  // capacity = window + chunk: the ring wraps many times over 40 positions.
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

TEST_P(AttentionCases, RingAtTheMinimumCapacity) {
  // capacity = window + T - 1 is exactly enough for chunks of T = 4.
  Check({"ring_min",
         2,
         1,
         8,
         6,
         30.0f,
         0.5f,
         6 + 4 - 1,
         {4, 4, 1, 4, 4, 2, 4, 4}});
}

TEST_P(AttentionCases, GemmaSizedHeads) {
  // Gemma 3 1B's shape (4 heads, 1 KV head, head_dim 256), window 8.
  Check({"gemma", 4, 1, 256, 8, 0.0f, 0.0625f, 8 + 6, {6, 1, 1, 6, 1}});
}

TEST_P(AttentionCases, DecodeSplitsTheKeysAcrossThreads) {
  // One KV head and T = 1: fewer units than threads, so each decode step's
  // keys are cut in chunks of >= 64 whose softmax sums are merged (the
  // plugin has 2+ threads wherever the machine has 2+ cores). Global and
  // windowed, f32 scores far apart (scale 0.5) so a wrong merge shows.
  Check({"split", 4, 1, 64, 0, 0.0f, 0.5f, 400, {300, 1, 1, 1}});
  Check({"split_window", 4, 1, 256, 150, 0.0f, 0.125f, 160, {9, 140, 1, 1}});
}

TEST_P(AttentionCases, GroupsLargerThanOneUnit) {
  // 16 query heads on one KV head: two units of 8 heads each per position.
  Check({"mqa16", 16, 1, 32, 0, 0.0f, 0.35f, 200, {130, 1, 1}});
  // 12 heads on 4 KV heads (groups of 3) at decode.
  Check({"gqa3", 12, 4, 16, 0, 0.0f, 0.3f, 200, {70, 1}});
}

TEST_P(AttentionCases, ConcurrentLaunchesOfOneKernel) {
  // Two sessions on one backend share a prepared kernel (and its per-slot
  // scratch) from two threads; each must get exactly its sequential result.
  const int64_t H = 4, KV = 2, D = 128, T = 64, cap = 64;
  gemmac_op_attrs a = Attrs();
  a.num_heads = H;
  a.num_kv_heads = KV;
  a.head_dim = D;
  a.scale = 0.125f;
  gemmac_kernel *k =
      Prepare(GEMMAC_OP_ATTENTION, a,
              {GEMMAC_DTYPE_F32, GEMMAC_DTYPE_F32, GEMMAC_DTYPE_F32});
  ASSERT_NE(k, nullptr);
  std::mt19937 rng(31);
  struct Session {
    std::vector<float> q, k, v, kc, vc, out, expected;
    gemmac_kv_cache cache{};
  } s[2];
  for (Session &x : s) {
    x.q = Uniform(T * H * D, rng, -1, 1);
    x.k = Uniform(T * KV * D, rng, -1, 1);
    x.v = Uniform(T * KV * D, rng, -1, 1);
    x.kc.resize(cap * KV * D);
    x.vc.resize(cap * KV * D);
    x.out.resize(T * H * D);
    x.cache.struct_size = sizeof(x.cache);
    x.cache.k = x.kc.data();
    x.cache.v = x.vc.data();
    x.cache.dtype = GEMMAC_DTYPE_F32;
    x.cache.capacity = int32_t(cap);
    x.cache.num_kv_heads = int32_t(KV);
    x.cache.head_dim = int32_t(D);
  }
  auto launch = [&](Session &x) {
    const gemmac_exec_context ctx = Context(0, T, &x.cache, 1);
    return Launch(k,
                  {Tensor(x.q.data(), GEMMAC_DTYPE_F32, {T, H * D}),
                   Tensor(x.k.data(), GEMMAC_DTYPE_F32, {T, KV * D}),
                   Tensor(x.v.data(), GEMMAC_DTYPE_F32, {T, KV * D})},
                  Tensor(x.out.data(), GEMMAC_DTYPE_F32, {T, H * D}), &ctx);
  };
  for (Session &x : s) {
    ASSERT_EQ(launch(x), GEMMAC_PLUGIN_OK);
    x.expected = x.out;
  }
  std::atomic<int> mismatches{0};
  auto worker = [&](Session &x) {
    for (int i = 0; i < 100; ++i) {
      std::fill(x.out.begin(), x.out.end(), NAN);
      if (launch(x) != GEMMAC_PLUGIN_OK || x.out != x.expected)
        ++mismatches;
    }
  };
  std::thread t0(worker, std::ref(s[0])), t1(worker, std::ref(s[1]));
  t0.join();
  t1.join();
  EXPECT_EQ(mismatches.load(), 0);
}

GEMMAC_CPU_INSTANTIATE(AttentionCases);

} // namespace
} // namespace gemmac::cpu_test
