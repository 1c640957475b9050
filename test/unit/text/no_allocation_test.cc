// The generate loop calls Sampler::Sample and StreamDecoder::Push once per
// token; neither may allocate once warmed up. This binary's operator new
// counts allocations so the tests can check that.
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "text/sampler.h"
#include "text/tokenizer.h"
#include "text_test_util.h"

namespace {
thread_local long g_allocations = 0;
} // namespace

void *operator new(std::size_t size) {
  ++g_allocations;
  if (void *p = std::malloc(size ? size : 1))
    return p;
  throw std::bad_alloc();
}
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }

namespace gemmac {
namespace text {
namespace {

TEST(NoAllocationTest, SampleNeverAllocates) {
  const int n = 262144;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(n);
  for (float &l : logits)
    l = normal(rng);
  const SamplingParams configs[] = {{0.0f, 0, 1.0f, 1},    {1.0f, 0, 1.0f, 1},
                                    {1.0f, 64, 0.95f, 1},  {0.8f, 0, 0.9f, 1},
                                    {1.0f, 5000, 1.0f, 1}, {1.0f, 1, 1.0f, 1}};
  for (const SamplingParams &p : configs) {
    const long before_ctor = g_allocations;
    Sampler s(p, n);
    // The counter works: the constructor is where the buffers come from.
    EXPECT_GT(g_allocations - before_ctor, 0);
    const long before = g_allocations;
    for (int i = 0; i < 5; ++i)
      ASSERT_GE(s.Sample(logits.data(), n), 0);
    EXPECT_EQ(g_allocations - before, 0)
        << "temperature " << p.temperature << " top_k " << p.top_k << " top_p "
        << p.top_p;
  }
}

TEST(NoAllocationTest, StreamDecoderPushDoesNotAllocateInSteadyState) {
  auto tok = testing::LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  std::vector<int32_t> ids;
  ASSERT_TRUE(tok->Encode("The harbour had 3 boats \xF0\x9F\x98\x80 and "
                          "\xE6\x97\xA5\xE6\x9C\xAC lighthouses.",
                          &ids)
                  .ok());
  StreamDecoder dec(*tok);
  for (int32_t id : ids)
    dec.Push(id); // warm up
  dec.Flush();
  const long before = g_allocations;
  size_t bytes = 0;
  for (int round = 0; round < 10; ++round) {
    for (int32_t id : ids)
      bytes += dec.Push(id).size();
    bytes += dec.Flush().size();
  }
  EXPECT_EQ(g_allocations - before, 0);
  EXPECT_GT(bytes, 0u);
}

} // namespace
} // namespace text
} // namespace gemmac
