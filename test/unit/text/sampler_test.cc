// Sampler: greedy and top-k=1 against a plain argmax, seed determinism, and
// the drawn distribution against a softmax computed here in double precision
// (chi-square bounds at the 0.999 quantile; every seed is fixed, so the test
// is deterministic and a correct sampler passes with that margin).
#include "text/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace gemmac {
namespace text {
namespace {

std::vector<double> Softmax(const std::vector<float> &logits, double t) {
  double max = -INFINITY;
  for (float l : logits)
    max = std::max(max, l / t);
  std::vector<double> p(logits.size());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i)
    sum += p[i] = std::exp(logits[i] / t - max);
  for (double &v : p)
    v /= sum;
  return p;
}

double ChiSquare(const std::vector<int> &counts, const std::vector<double> &p,
                 int draws) {
  double chi2 = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0)
      continue;
    const double expected = p[i] * draws;
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

std::vector<int> Draw(Sampler *s, const std::vector<float> &logits, int draws) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) {
    const int32_t id = s->Sample(logits.data(), logits.size());
    EXPECT_GE(id, 0);
    EXPECT_LT(id, static_cast<int32_t>(logits.size()));
    if (id >= 0 && id < static_cast<int32_t>(logits.size()))
      ++counts[id];
  }
  return counts;
}

int32_t ReferenceArgmax(const std::vector<float> &v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) -
                              v.begin()); // first maximum
}

TEST(SamplerTest, GreedyIsArgmaxWithTiesToLowestId) {
  for (float t : {0.0f, -1.0f}) {
    SamplingParams p;
    p.temperature = t;
    Sampler s(p, 16);
    const std::vector<float> tie = {1, 3, 3, 2};
    EXPECT_EQ(s.Sample(tie.data(), 4), 1);
    std::mt19937 rng(5);
    std::normal_distribution<float> normal;
    for (int trial = 0; trial < 100; ++trial) {
      std::vector<float> logits(16);
      for (float &l : logits)
        l = normal(rng);
      EXPECT_EQ(s.Sample(logits.data(), 16), ReferenceArgmax(logits));
    }
  }
}

TEST(SamplerTest, TopKOneIsArgmaxForAnyTemperature) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (float t : {0.01f, 0.5f, 1.0f, 10.0f, 1000.0f}) {
    SamplingParams p;
    p.temperature = t;
    p.top_k = 1;
    p.seed = 3;
    Sampler s(p, 1000);
    for (int trial = 0; trial < 50; ++trial) {
      std::vector<float> logits(1000);
      for (float &l : logits)
        l = normal(rng);
      EXPECT_EQ(s.Sample(logits.data(), 1000), ReferenceArgmax(logits));
    }
  }
}

TEST(SamplerTest, SameSeedSameTokens) {
  SamplingParams p;
  p.temperature = 1.5f;
  p.top_k = 50;
  p.top_p = 0.9f;
  p.seed = 1234;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> logits(300);
  for (float &l : logits)
    l = normal(rng);

  Sampler a(p, 300), b(p, 300);
  std::vector<int32_t> first;
  for (int i = 0; i < 1000; ++i) {
    const int32_t x = a.Sample(logits.data(), 300);
    EXPECT_EQ(x, b.Sample(logits.data(), 300));
    first.push_back(x);
  }
  // Reset replays the stream; another seed gives another one.
  a.Reset(1234);
  std::vector<int32_t> replay, other;
  for (int i = 0; i < 1000; ++i)
    replay.push_back(a.Sample(logits.data(), 300));
  EXPECT_EQ(replay, first);
  a.Reset(1235);
  for (int i = 0; i < 1000; ++i)
    other.push_back(a.Sample(logits.data(), 300));
  EXPECT_NE(other, first);
}

TEST(SamplerTest, TemperatureSamplingMatchesSoftmax) {
  const std::vector<float> logits = {1.0f, 0.5f,  0.0f, -0.5f,
                                     2.0f, -1.0f, 0.3f, 1.2f};
  for (float t : {0.7f, 1.0f, 2.5f}) {
    SamplingParams p;
    p.temperature = t;
    p.seed = 2024;
    Sampler s(p, 8);
    const int draws = 100000;
    const std::vector<int> counts = Draw(&s, logits, draws);
    const double chi2 = ChiSquare(counts, Softmax(logits, t), draws);
    // 7 degrees of freedom: the 0.999 quantile is 24.32.
    EXPECT_LT(chi2, 24.32) << "temperature " << t;
  }
  // The bound has teeth: counts drawn at t=0.7 are far from the t=1 softmax.
  SamplingParams p;
  p.temperature = 0.7f;
  p.seed = 2024;
  Sampler s(p, 8);
  const std::vector<int> counts = Draw(&s, logits, 100000);
  EXPECT_GT(ChiSquare(counts, Softmax(logits, 1.0), 100000), 24.32);
}

TEST(SamplerTest, TopKKeepsOnlyTheKLargestAndRenormalizes) {
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.5f,
                                     0.2f, 1.9f, -3.0f, 0.0f};
  SamplingParams p;
  p.temperature = 0.9f;
  p.top_k = 3; // ids 1, 5, 3
  p.seed = 77;
  Sampler s(p, 8);
  const int draws = 60000;
  const std::vector<int> counts = Draw(&s, logits, draws);
  std::vector<float> kept(8, -INFINITY);
  for (int id : {1, 5, 3})
    kept[id] = logits[id];
  const std::vector<double> expected = Softmax(kept, 0.9);
  for (int id : {0, 2, 4, 6, 7})
    EXPECT_EQ(counts[id], 0) << id;
  // 2 degrees of freedom: the 0.999 quantile is 13.82.
  EXPECT_LT(ChiSquare(counts, expected, draws), 13.82);
}

TEST(SamplerTest, TopKWithTiesKeepsTheLowestIds) {
  // Logits on a coarse grid tie a lot; the kept set is the k best by value,
  // then by lowest id. k = 100 takes the sampler's heap path, k = 4500 its
  // nth_element path.
  const int n = 6000;
  std::mt19937 rng(17);
  std::uniform_int_distribution<int> level(0, 20);
  std::vector<float> logits(n);
  for (float &l : logits)
    l = level(rng) * 0.25f;
  for (int32_t k : {100, 4500}) {
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return logits[a] > logits[b]; });
    const std::set<int> kept(order.begin(), order.begin() + k);
    SamplingParams p;
    p.temperature = 0.3f; // sharpen, so the boundary value is drawn often
    p.top_k = k;
    p.seed = 21;
    Sampler s(p, n);
    for (int i = 0; i < 3000; ++i) {
      const int32_t id = s.Sample(logits.data(), n);
      ASSERT_TRUE(kept.count(id)) << "k=" << k << " drew " << id;
    }
  }
}

TEST(SamplerTest, TopPExcludesLowProbabilityTokens) {
  // Probabilities 0.05, 0.5, 0.15, 0.3 (shuffled so sorting matters).
  const std::vector<float> logits = {std::log(0.05f), std::log(0.5f),
                                     std::log(0.15f), std::log(0.3f)};
  const int draws = 20000;
  {
    SamplingParams p;
    p.top_p = 0.75f; // 0.5 + 0.3 = 0.8 >= 0.75: keep ids 1 and 3
    p.seed = 9;
    Sampler s(p, 4);
    const std::vector<int> counts = Draw(&s, logits, draws);
    EXPECT_EQ(counts[0], 0);
    EXPECT_EQ(counts[2], 0);
    // Renormalized 0.5 / 0.8 = 0.625; the standard error is 0.0034, the
    // bound 0.015 is over four of them.
    EXPECT_NEAR(counts[1] / double(draws), 0.625, 0.015);
  }
  {
    SamplingParams p;
    p.top_p = 0.9f; // 0.5 + 0.3 + 0.15 = 0.95: id 0 is out
    p.seed = 10;
    Sampler s(p, 4);
    const std::vector<int> counts = Draw(&s, logits, draws);
    EXPECT_EQ(counts[0], 0);
    EXPECT_NEAR(counts[2] / double(draws), 0.15 / 0.95, 0.015);
  }
  {
    SamplingParams p;
    p.top_p = 0.0f; // keeps just the most likely token
    Sampler s(p, 4);
    const std::vector<int> counts = Draw(&s, logits, 1000);
    EXPECT_EQ(counts[1], 1000);
  }
}

TEST(SamplerTest, TopPOnALargeVocabularyKeepsExactlyTheNucleus) {
  // A nucleus of a few thousand tokens crosses the sampler's partial-sort
  // chunks; the kept set must be the one a full sort gives.
  const int n = 5000;
  std::mt19937 rng(31);
  std::uniform_real_distribution<float> uni(0.0f, 3.0f);
  std::vector<float> logits(n);
  for (float &l : logits)
    l = uni(rng);
  const std::vector<double> prob = Softmax(logits, 1.0);
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return prob[a] > prob[b]; });
  std::set<int> nucleus;
  double cum = 0;
  for (int id : order) {
    nucleus.insert(id);
    cum += prob[id];
    if (cum >= 0.5)
      break;
  }
  SamplingParams p;
  p.top_p = 0.5f;
  p.seed = 4;
  Sampler s(p, n);
  std::set<int> seen;
  for (int i = 0; i < 10000; ++i) {
    const int32_t id = s.Sample(logits.data(), n);
    ASSERT_TRUE(nucleus.count(id)) << "drew " << id << " outside the nucleus";
    seen.insert(id);
  }
  // Not truncated either: nearly all of the nucleus shows up.
  EXPECT_GT(seen.size(), nucleus.size() * 3 / 4)
      << seen.size() << " of " << nucleus.size();
}

TEST(SamplerTest, GemmaDefaultsOnAFullSizeVocabulary) {
  const int n = 262144;
  std::mt19937 rng(8);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::vector<float> logits(n);
  for (float &l : logits)
    l = normal(rng);
  std::vector<float> sorted = logits;
  std::nth_element(sorted.begin(), sorted.begin() + 63, sorted.end(),
                   std::greater<float>());
  const float kth = sorted[63];
  SamplingParams p; // temperature 1, top_k 64, top_p 0.95
  p.top_k = 64;
  p.top_p = 0.95f;
  p.seed = 1;
  Sampler s(p, n);
  for (int i = 0; i < 200; ++i) {
    const int32_t id = s.Sample(logits.data(), n);
    ASSERT_GE(id, 0);
    EXPECT_GE(logits[id], kth);
  }
}

TEST(SamplerTest, BadInputsNeverCrash) {
  SamplingParams p;
  p.seed = 1;
  Sampler s(p, 4);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> ok = {0, 1, 2, 3};
  EXPECT_EQ(s.Sample(nullptr, 4), -1);
  EXPECT_EQ(s.Sample(ok.data(), 0), -1);
  EXPECT_EQ(s.Sample(ok.data(), 5), -1); // more than max_vocab
  const std::vector<float> some_nan = {nan, 1.0f, nan, -inf};
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(s.Sample(some_nan.data(), 4), 1);
  const std::vector<float> all_masked = {-inf, -inf, -inf, -inf};
  EXPECT_EQ(s.Sample(all_masked.data(), 4), 0);
  const std::vector<float> all_nan = {nan, nan, nan, nan};
  EXPECT_EQ(s.Sample(all_nan.data(), 4), 0);
  const std::vector<float> pos_inf = {0.0f, inf, 1.0f, inf};
  EXPECT_EQ(s.Sample(pos_inf.data(), 4), 1);
  SamplingParams cold;
  cold.temperature = 1e-30f; // scaled logits overflow to inf
  Sampler c(cold, 4);
  EXPECT_EQ(c.Sample(ok.data(), 4), 3);
}

} // namespace
} // namespace text
} // namespace gemmac
