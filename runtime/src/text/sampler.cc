// Sampler: temperature -> top-k -> softmax -> top-p -> seeded draw, with no
// allocation per call.
#include "text/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace gemmac {
namespace text {
namespace {

uint64_t SplitMix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// Above this k the heap's log(k) per insertion loses to nth_element.
constexpr int32_t kHeapTopKLimit = 4096;

} // namespace

Sampler::Sampler(const SamplingParams &params, int32_t max_vocab)
    : params_(params), max_vocab_(max_vocab > 0 ? max_vocab : 0),
      cand_(static_cast<size_t>(max_vocab_)) {
  Reset(params.seed);
}

void Sampler::Reset(uint64_t seed) {
  // splitmix64 spreads any seed (0 included) over xoshiro's 256-bit state,
  // which must not be all zero.
  uint64_t x = seed;
  for (uint64_t &s : state_)
    s = SplitMix64(&x);
}

double Sampler::NextUniform() {
  // xoshiro256** (Blackman and Vigna).
  const uint64_t result = Rotl(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = Rotl(state_[3], 45);
  return static_cast<double>(result >> 11) * 0x1.0p-53;
}

int32_t Sampler::Argmax(const float *logits, int32_t n) const {
  int32_t best = -1;
  float best_value = 0.0f;
  for (int32_t i = 0; i < n; ++i) {
    const float v = logits[i];
    if (std::isnan(v))
      continue;
    if (best < 0 || v > best_value) {
      best = i;
      best_value = v;
    }
  }
  return best < 0 ? 0 : best;
}

int32_t Sampler::Sample(const float *logits, int32_t n) {
  if (logits == nullptr || n < 1 || n > max_vocab_)
    return -1;
  if (!(params_.temperature > 0.0f) || params_.top_k == 1)
    return Argmax(logits, n);

  // Ties broken by id so the kept set never depends on the library's
  // selection algorithm.
  const auto greater = [](const Candidate &a, const Candidate &b) {
    return a.value > b.value || (a.value == b.value && a.id < b.id);
  };
  Candidate *const c = cand_.data();
  const int32_t k = params_.top_k;

  // Temperature scaling; NaN and -inf logits can never be drawn.
  const float inv_t = 1.0f / params_.temperature;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  int32_t m = 0;
  if (k > 0 && k < n && k <= kHeapTopKLimit) {
    // Top-k in one pass: a min-heap of the best k seen so far. For real
    // logits nearly every token loses a single compare against the heap's
    // smallest, several times faster than nth_element over the vocabulary.
    // Ids arrive in increasing order, so a tie never displaces an earlier id.
    for (int32_t i = 0; i < n; ++i) {
      const float v = logits[i];
      if (std::isnan(v) || v == kNegInf)
        continue;
      const float scaled = v * inv_t;
      if (m < k) {
        c[m++] = {scaled, i};
        if (m == k)
          std::make_heap(c, c + k, greater);
      } else if (scaled > c[0].value) {
        std::pop_heap(c, c + k, greater);
        c[k - 1] = {scaled, i};
        std::push_heap(c, c + k, greater);
      }
    }
  } else {
    for (int32_t i = 0; i < n; ++i) {
      const float v = logits[i];
      if (std::isnan(v) || v == kNegInf)
        continue;
      c[m++] = {v * inv_t, i};
    }
    if (k > 0 && k < m) {
      std::nth_element(c, c + k - 1, c + m, greater);
      m = k;
    }
  }
  float max_value = kNegInf;
  for (int32_t i = 0; i < m; ++i)
    max_value = std::max(max_value, c[i].value);
  // Nothing finite to weigh (all masked, or a tiny temperature overflowed):
  // the distribution is a point mass on the largest logit.
  if (m == 0 || std::isinf(max_value))
    return Argmax(logits, n);

  double sum = 0.0;
  for (int32_t i = 0; i < m; ++i) {
    c[i].value = std::exp(c[i].value - max_value);
    sum += c[i].value;
  }

  if (params_.top_p < 1.0f) {
    // The nucleus is usually a few dozen tokens: sort a growing prefix
    // (64, 256, 1024, ... tokens) instead of the whole vocabulary.
    const double target = static_cast<double>(params_.top_p) * sum;
    double cum = 0.0;
    int32_t sorted = 0;
    int32_t chunk = 64;
    int32_t keep = m;
    while (sorted < m) {
      const int32_t end = std::min<int64_t>(m, int64_t{sorted} + chunk);
      // Partition the next chunk off the rest in O(m), then sort just it;
      // cheaper than a heap-based partial_sort once chunks grow.
      if (end < m)
        std::nth_element(c + sorted, c + end - 1, c + m, greater);
      std::sort(c + sorted, c + end, greater);
      for (int32_t i = sorted; i < end; ++i) {
        cum += c[i].value;
        if (cum >= target) {
          keep = i + 1;
          break;
        }
      }
      if (keep < m)
        break;
      sorted = end;
      chunk = chunk < (1 << 26) ? chunk * 4 : chunk;
    }
    if (keep < m) {
      m = keep;
      sum = cum;
    }
  }

  const double r = NextUniform() * sum;
  double acc = 0.0;
  for (int32_t i = 0; i < m; ++i) {
    acc += c[i].value;
    if (r < acc)
      return c[i].id;
  }
  // Rounding left r at the very top of the range.
  return c[m - 1].id;
}

} // namespace text
} // namespace gemmac
