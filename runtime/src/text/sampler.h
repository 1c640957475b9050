// Picks the next token from a row of logits.
//
// The session owns one Sampler per sequence and calls Sample once per
// generated token, so Sample never allocates: every buffer is sized for
// max_vocab in the constructor. The order is temperature scaling, top-k,
// softmax, top-p (the smallest set of most likely tokens whose cumulative
// probability reaches p), then one draw from a seeded xoshiro256** generator;
// the same seed and logits give the same tokens on every machine.
#ifndef GEMMAC_RUNTIME_TEXT_SAMPLER_H_
#define GEMMAC_RUNTIME_TEXT_SAMPLER_H_

#include <cstdint>
#include <vector>

namespace gemmac {
namespace text {

struct SamplingParams {
  float temperature = 1.0f; // <= 0: greedy argmax, ties to the lowest id
  int32_t top_k = 0;        // 0: off
  float top_p = 1.0f;       // >= 1: off
  uint64_t seed = 0;
};

class Sampler {
public:
  Sampler(const SamplingParams &params, int32_t max_vocab);

  // Restart the random stream, e.g. for a new request.
  void Reset(uint64_t seed);

  // Returns a token id in [0, n). Returns -1 when n is outside
  // [1, max_vocab] or logits is null. NaN logits are never chosen; when no
  // logit is finite the lowest id with the largest value wins (0 if all are
  // NaN).
  int32_t Sample(const float *logits, int32_t n);

private:
  struct Candidate {
    float value; // scaled logit, then unnormalized probability
    int32_t id;
  };

  int32_t Argmax(const float *logits, int32_t n) const;
  double NextUniform(); // in [0, 1)

  SamplingParams params_;
  int32_t max_vocab_;
  std::vector<Candidate> cand_;
  uint64_t state_[4];
};

} // namespace text
} // namespace gemmac

#endif // GEMMAC_RUNTIME_TEXT_SAMPLER_H_
