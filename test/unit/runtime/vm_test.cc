// The VM and the KV cache: a hand-built tiny Gemma module runs through the
// reference plugin, and its logits match a direct full-sequence computation
// (test_module.cc) for prompts longer than a prefill chunk and than the
// sliding-window ring, fed in every way the session splits them.
#include <cmath>
#include <gtest/gtest.h>

#include "kv_cache.h"
#include "session.h"
#include "test_module.h"

extern "C" int32_t gemmac_testref_plugin_entry(uint32_t, gemmac_plugin_api *,
                                               size_t);

namespace gemmac {
namespace {

using test::TinyConfig;

class VmTest : public ::testing::Test {
protected:
  void SetUp() override {
    tm_ = test::BuildTinyGemma(TinyConfig());
    path_ = test::TempPath("vm.gmc");
    test::WriteModule(tm_, path_);
    std::shared_ptr<Module> m;
    Status s = Module::Load(path_, &m);
    ASSERT_TRUE(s.ok()) << s.message();
    module_ = m;
    ASSERT_TRUE(registry_.Register(gemmac_testref_plugin_entry, "test").ok());
  }
  void TearDown() override { std::remove(path_.c_str()); }

  std::unique_ptr<Session> NewSession(int64_t ctx = 0, bool keep = true) {
    SessionOptions o;
    o.context_length = ctx;
    o.keep_prompt_logits = keep;
    std::unique_ptr<Session> s;
    Status st = Session::Create(module_, registry_, o, &s);
    EXPECT_TRUE(st.ok()) << st.message();
    return s;
  }

  std::vector<int32_t> Tokens(int n) {
    std::vector<int32_t> t = {2};
    for (int i = 1; i < n; ++i)
      t.push_back(6 + (i * 37) % (tm_.rows - 6));
    return t;
  }

  // f32 activations, f64 accumulation in both: differences come from the
  // order of f32 roundings only.
  static constexpr float kTol = 2e-4f;

  test::TestModule tm_;
  std::string path_;
  std::shared_ptr<const Module> module_;
  PluginRegistry registry_;
};

TEST_F(VmTest, PrefillMatchesReferenceAcrossChunksAndRing) {
  // 30 tokens: four prefill chunks (8, 8, 8, 6) and far past the sliding
  // layer's ring of 4 + 8 - 1 = 11 rows.
  std::vector<int32_t> toks = Tokens(30);
  auto s = NewSession();
  ASSERT_TRUE(s->AppendTokens(toks.data(), toks.size()).ok());
  std::vector<float> ref = test::ReferenceLogits(tm_, toks);
  const std::vector<float> &got = s->prompt_logits();
  ASSERT_EQ(got.size(), ref.size());
  ASSERT_EQ(s->logits_cols(), tm_.rows);
  float max_err = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    max_err = std::max(max_err, std::fabs(got[i] - ref[i]));
  EXPECT_LT(max_err, kTol);
  // The logits must actually vary, or the comparison proves nothing.
  EXPECT_GT(std::fabs(ref[5] - ref[tm_.rows + 5]), 1e-3f);
}

TEST_F(VmTest, TokenByTokenEqualsOneChunk) {
  std::vector<int32_t> toks = Tokens(20);
  std::vector<float> ref = test::ReferenceLogits(tm_, toks);
  auto s = NewSession();
  // 1 (decode), 3, 8, 1, 7 tokens at a time.
  size_t pos = 0;
  for (size_t n : {1, 3, 8, 1, 7}) {
    ASSERT_TRUE(s->AppendTokens(toks.data() + pos, n).ok());
    pos += n;
    for (int64_t c = 0; c < s->logits_cols(); ++c)
      ASSERT_NEAR(s->last_logits()[c], ref[(pos - 1) * tm_.rows + c], kTol)
          << "after " << pos << " tokens, column " << c;
  }
}

TEST_F(VmTest, GreedyGenerateFollowsReferenceArgmax) {
  std::vector<int32_t> toks = Tokens(6);
  auto s = NewSession();
  ASSERT_TRUE(s->AppendTokens(toks.data(), toks.size()).ok());
  GenerateOptions g;
  g.sampling.temperature = 0;
  g.max_tokens = 12;
  StopReason why;
  ASSERT_TRUE(s->Generate(g, nullptr, &why).ok());
  std::vector<int32_t> seq = s->tokens();
  ASSERT_GT(seq.size(), toks.size());
  // Every generated token is the argmax of the reference logits of the
  // sequence before it.
  std::vector<float> ref = test::ReferenceLogits(tm_, seq);
  for (size_t p = toks.size(); p < seq.size(); ++p) {
    const float *row = &ref[(p - 1) * tm_.rows];
    int best = int(std::max_element(row, row + tm_.rows) - row);
    EXPECT_EQ(seq[p], best) << "position " << p;
  }
  if (why == StopReason::kMaxTokens)
    EXPECT_EQ(seq.size(), toks.size() + 12);
  else
    EXPECT_EQ(why, StopReason::kStopToken);
}

#ifdef GEMMAC_CPU_SO
// The same comparison on backends/cpu, loaded as a plugin library. Its
// kernels accumulate in f32 (and may reorder sums), so the tolerance is
// relative to the logits' scale.
TEST_F(VmTest, CpuBackendMatchesReference) {
  PluginRegistry cpu;
  Status st = cpu.LoadFile(GEMMAC_CPU_SO);
  ASSERT_TRUE(st.ok()) << st.message();
  SessionOptions o;
  o.keep_prompt_logits = true;
  std::unique_ptr<Session> s;
  st = Session::Create(module_, cpu, o, &s);
  ASSERT_TRUE(st.ok()) << st.message();
  std::vector<int32_t> toks = Tokens(30);
  ASSERT_TRUE(s->AppendTokens(toks.data(), toks.size()).ok());
  std::vector<float> ref = test::ReferenceLogits(tm_, toks);
  const std::vector<float> &got = s->prompt_logits();
  ASSERT_EQ(got.size(), ref.size());
  float scale = 0, max_err = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    scale = std::max(scale, std::fabs(ref[i]));
    max_err = std::max(max_err, std::fabs(got[i] - ref[i]));
  }
  EXPECT_LT(max_err, 1e-4f * scale + 1e-4f) << "scale " << scale;
}
#endif

TEST(KvCache, RingPlacementAndCapacity) {
  schema::KvLayerT sliding;
  sliding.capacity = 11;
  sliding.window = 4;
  sliding.num_kv_heads = 2;
  sliding.head_dim = 8;
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(schema::KvLayer::Pack(fbb, &sliding));
  const auto *l = flatbuffers::GetRoot<schema::KvLayer>(fbb.GetBufferPointer());
  EXPECT_EQ(KvCache::Capacity(*l, 100), 11);
  EXPECT_EQ(KvCache::Capacity(*l, 6), 6); // never more rows than the context
  EXPECT_EQ(KvCache::RowOf(0, 11), 0);
  EXPECT_EQ(KvCache::RowOf(10, 11), 10);
  EXPECT_EQ(KvCache::RowOf(11, 11), 0);
  EXPECT_EQ(KvCache::RowOf(25, 11), 3);
  schema::KvLayerT global = sliding;
  global.capacity = 0;
  global.window = 0;
  flatbuffers::FlatBufferBuilder fbb2;
  fbb2.Finish(schema::KvLayer::Pack(fbb2, &global));
  const auto *g =
      flatbuffers::GetRoot<schema::KvLayer>(fbb2.GetBufferPointer());
  EXPECT_EQ(KvCache::Capacity(*g, 100), 100);
}

TEST_F(VmTest, KvRingSameForChunksAndSingleTokens) {
  // After 15 tokens the sliding layer (capacity 11) has wrapped: position p
  // sits in row p % 11. Chunked and single-token runs must agree.
  auto s = NewSession(32);
  std::vector<int32_t> toks = Tokens(15);
  ASSERT_TRUE(s->AppendTokens(toks.data(), toks.size()).ok());
  SessionStats st = s->stats();
  // 2 layers x (k + v) x rows x 1 kv head x 8 dims x 4 bytes.
  EXPECT_EQ(st.kv_bytes, uint64_t(2 * 11 * 8 * 4 + 2 * 32 * 8 * 4));
  // Run the same 15 tokens in a second session one at a time: the rings
  // must end up identical, row for row.
  auto s2 = NewSession(32);
  for (int32_t t : toks)
    ASSERT_TRUE(s2->AppendTokens(&t, 1).ok());
  for (int64_t c = 0; c < s->logits_cols(); ++c)
    ASSERT_NEAR(s->last_logits()[c], s2->last_logits()[c], kTol);
}

TEST_F(VmTest, ContextLimits) {
  SessionOptions o;
  o.context_length = 65; // model max_context is 64
  std::unique_ptr<Session> s;
  Status st = Session::Create(module_, registry_, o, &s);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("exceeds the model's max_context 64"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("bytes of KV cache"), std::string::npos);

  auto small = NewSession(10);
  std::vector<int32_t> toks = Tokens(8);
  ASSERT_TRUE(small->AppendTokens(toks.data(), toks.size()).ok());
  st = small->AppendTokens(toks.data(), 3);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("context full"), std::string::npos);
  GenerateOptions g;
  g.sampling.temperature = 0;
  g.max_tokens = 50;
  st = small->Generate(g, nullptr, nullptr);
  if (!st.ok()) {
    EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.message();
  }
  EXPECT_LE(small->tokens().size(), 10u);
}

TEST_F(VmTest, BadTokenIsRefusedNotRun) {
  auto s = NewSession();
  int32_t bad[] = {2, 100000};
  Status st = s->AppendTokens(bad, 2);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("token 1 is 100000"), std::string::npos);
  EXPECT_TRUE(s->tokens().empty());
}

TEST_F(VmTest, ResetStartsOver) {
  std::vector<int32_t> toks = Tokens(9);
  auto s = NewSession();
  ASSERT_TRUE(s->AppendTokens(toks.data(), toks.size()).ok());
  std::vector<float> first(s->last_logits(), s->last_logits() + tm_.rows);
  s->Reset();
  EXPECT_TRUE(s->tokens().empty());
  ASSERT_TRUE(s->AppendTokens(toks.data(), toks.size()).ok());
  for (int c = 0; c < tm_.rows; ++c)
    ASSERT_FLOAT_EQ(s->last_logits()[c], first[c]);
}

} // namespace
} // namespace gemmac
