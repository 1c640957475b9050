// The VM and the KV cache: a hand-built tiny Gemma module runs through the
// reference plugin, and its logits match a direct full-sequence computation
// (test_module.cc) for prompts longer than a prefill chunk and than the
// sliding-window ring, fed in every way the session splits them. Module
// format 1.1 too: fused ops, quantized weights (against the dequantized
// weights), int8 KV caches (against the int8 round trip), absent inputs as
// the plugin sees them, and a prefill that returns only the last row.
#include <algorithm>
#include <cmath>
#include <gtest/gtest.h>
#include <mutex>

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

// ---- module format 1.1 -----------------------------------------------------

// Loads `cfg`'s module and runs sessions on it with the reference plugin.
class Vm11Test : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(registry_.Register(gemmac_testref_plugin_entry, "test").ok());
  }
  void TearDown() override {
    for (const std::string &p : paths_)
      std::remove(p.c_str());
  }
  std::shared_ptr<const Module> Load(const TinyConfig &cfg,
                                     test::TestModule *tm) {
    *tm = test::BuildTinyGemma(cfg);
    std::string path =
        test::TempPath("vm11_" + std::to_string(paths_.size()) + ".gmc");
    paths_.push_back(path);
    test::WriteModule(*tm, path);
    std::shared_ptr<Module> m;
    Status s = Module::Load(path, &m);
    EXPECT_TRUE(s.ok()) << s.message();
    return m;
  }
  std::unique_ptr<Session> NewSession(std::shared_ptr<const Module> m,
                                      bool keep, int64_t ctx = 0,
                                      const PluginRegistry *reg = nullptr,
                                      Status *status = nullptr) {
    SessionOptions o;
    o.context_length = ctx;
    o.keep_prompt_logits = keep;
    std::unique_ptr<Session> s;
    Status st = Session::Create(m, reg ? *reg : registry_, o, &s);
    if (status)
      *status = st;
    else
      EXPECT_TRUE(st.ok()) << st.message();
    return s;
  }
  static std::vector<int32_t> Tokens(int n, int rows) {
    std::vector<int32_t> t = {2};
    for (int i = 1; i < n; ++i)
      t.push_back(6 + (i * 37) % (rows - 6));
    return t;
  }
  // Largest |a - b| over the logits, and the logits' scale.
  static std::pair<float, float> MaxErr(const std::vector<float> &a,
                                        const std::vector<float> &b) {
    EXPECT_EQ(a.size(), b.size());
    float err = 0, scale = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
      err = std::max(err, std::fabs(a[i] - b[i]));
      scale = std::max(scale, std::fabs(b[i]));
    }
    return {err, scale};
  }

  PluginRegistry registry_;
  std::vector<std::string> paths_;
};

// f32 activations with f64 accumulation in the plugin and the reference:
// the only differences are f32 roundings.
constexpr float kTol11 = 3e-4f;

TEST_F(Vm11Test, FusedOpsMatchTheChainsTheyReplace) {
  for (bool qk_norm : {true, false}) {
    SCOPED_TRACE(qk_norm ? "with qk-norm" : "qk-norm absent");
    TinyConfig cfg;
    cfg.qk_norm = qk_norm;
    test::TestModule plain, fused;
    auto mp = Load(cfg, &plain);
    cfg.fused = true;
    auto mf = Load(cfg, &fused);
    // The fused module really holds the fused ops (and not the chains).
    int fused_ops = 0;
    for (const auto *i : *mf->FindFunction("prefill")->instructions())
      fused_ops += i->op() >= schema::OpCode::AddRmsNorm;
    EXPECT_EQ(fused_ops, 2 /*qkv*/ + 2 /*mlp*/ + 2 /*add_norm*/ + 1 /*head*/);
    std::vector<int32_t> toks = Tokens(30, fused.rows);
    auto sp = NewSession(mp, true), sf = NewSession(mf, true);
    ASSERT_TRUE(sp->AppendTokens(toks.data(), toks.size()).ok());
    Status st = sf->AppendTokens(toks.data(), toks.size());
    ASSERT_TRUE(st.ok()) << st.message();
    std::vector<float> ref = test::ReferenceLogits(fused, toks);
    EXPECT_LT(MaxErr(sf->prompt_logits(), ref).first, kTol11);
    EXPECT_LT(MaxErr(sf->prompt_logits(), sp->prompt_logits()).first, kTol11);
    // Same weights in both modules, so the comparison means something.
    EXPECT_EQ(plain.values.at("l1.gate"), fused.values.at("l1.gate"));
  }
}

TEST_F(Vm11Test, QuantizedWeightsMatchTheDequantizedReference) {
  struct Case {
    schema::DType linear, embed;
    bool fused;
  };
  for (const Case &c :
       {Case{schema::DType::Q8C, schema::DType::F32, false},
        Case{schema::DType::Q4G32, schema::DType::Q8C, true},
        Case{schema::DType::Q4G128, schema::DType::Q4G128, true},
        Case{schema::DType::Q4G32R8, schema::DType::F32, true}}) {
    SCOPED_TRACE(std::string(DTypeName(c.linear)) + ", embed " +
                 DTypeName(c.embed));
    TinyConfig cfg;
    cfg.hidden = c.linear == schema::DType::Q4G128 ? 128 : 32;
    cfg.head_dim = cfg.hidden / cfg.heads;
    cfg.ff = 2 * cfg.hidden;
    cfg.linear_dtype = c.linear;
    cfg.embed_quant = c.embed;
    cfg.fused = c.fused;
    test::TestModule tm;
    auto m = Load(cfg, &tm);
    std::vector<int32_t> toks = Tokens(20, tm.rows);
    auto s = NewSession(m, true);
    Status st = s->AppendTokens(toks.data(), toks.size());
    ASSERT_TRUE(st.ok()) << st.message();
    std::vector<float> ref = test::ReferenceLogits(tm, toks);
    auto [err, scale] = MaxErr(s->prompt_logits(), ref);
    EXPECT_LT(err, kTol11 + 1e-5f * scale) << "scale " << scale;
    // The quantization is real: the stored weights differ from the floats
    // they were made from by about a quantization step, so decoding them
    // wrongly could not pass.
    const std::vector<float> &q = tm.values.at("l0.q");
    EXPECT_GT(
        std::count_if(q.begin(), q.end(), [&](float v) { return v != q[0]; }),
        0);
  }
}

TEST_F(Vm11Test, Int8KvCacheMatchesItsRoundTrip) {
  TinyConfig cfg;
  cfg.kv_i8 = true;
  test::TestModule tm;
  auto m = Load(cfg, &tm);
  std::vector<int32_t> toks = Tokens(30, tm.rows);
  auto s = NewSession(m, true, 32);
  // The memory estimate counts int8 k and v and their f32 scales:
  // sliding ring of 11 rows and global of 32, 1 KV head of 8.
  EXPECT_EQ(s->stats().kv_bytes, uint64_t(2 * 11 * (8 + 4) + 2 * 32 * (8 + 4)));
  EXPECT_EQ(KvCache::BytesNeeded(m->program(), 32), s->stats().kv_bytes);
  // Through prefill (chunks of 8) and then single tokens (decode).
  ASSERT_TRUE(s->AppendTokens(toks.data(), 24).ok());
  for (int i = 24; i < 30; ++i)
    ASSERT_TRUE(s->AppendTokens(&toks[i], 1).ok());
  std::vector<float> ref = test::ReferenceLogits(tm, toks);
  EXPECT_LT(MaxErr(s->prompt_logits(), ref).first, 1e-3f);
  // Without the round trip the logits differ by more: the cache really
  // holds int8 values.
  test::TestModule f32 = tm;
  f32.cfg.kv_i8 = false;
  EXPECT_GT(MaxErr(s->prompt_logits(), test::ReferenceLogits(f32, toks)).first,
            5e-3f);
}

TEST_F(Vm11Test, OneRowPrefillWorksForGeneration) {
  TinyConfig cfg;
  cfg.fused = true;
  cfg.last_logits_only = true;
  test::TestModule tm;
  auto m = Load(cfg, &tm);
  std::vector<int32_t> toks = Tokens(30, tm.rows);
  std::vector<float> ref = test::ReferenceLogits(tm, toks);
  auto s = NewSession(m, false);
  EXPECT_TRUE(s->last_position_logits_only());
  // 3, 8 (one full chunk), 1 (decode), 13 (8 + 5), 5: after each append the
  // last row is the reference's row of the last token.
  size_t pos = 0;
  for (size_t n : {3, 8, 1, 13, 5}) {
    ASSERT_TRUE(s->AppendTokens(toks.data() + pos, n).ok());
    pos += n;
    for (int64_t c = 0; c < s->logits_cols(); ++c)
      ASSERT_NEAR(s->last_logits()[c], ref[(pos - 1) * tm.rows + c], kTol11)
          << "after " << pos << " tokens, column " << c;
  }
  GenerateOptions g;
  g.sampling.temperature = 0;
  g.max_tokens = 6;
  ASSERT_TRUE(s->Generate(g, nullptr, nullptr).ok());
  std::vector<int32_t> seq = s->tokens();
  std::vector<float> full = test::ReferenceLogits(tm, seq);
  for (size_t p = toks.size(); p < seq.size(); ++p) {
    const float *row = &full[(p - 1) * tm.rows];
    EXPECT_EQ(seq[p], int(std::max_element(row, row + tm.rows) - row))
        << "position " << p;
  }

  // Every position's logits cannot be had from such a module.
  Status st;
  auto keep = NewSession(m, true, 0, nullptr, &st);
  EXPECT_EQ(keep, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("compiled with --prefill-logits=last"),
            std::string::npos)
      << st.message();
}

#ifdef GEMMAC_CPU_SO
// The module format 1.1 features on backends/cpu, loaded as a plugin
// library: its kernels (f32 accumulation, its own dequantization and int8
// cache) against the double-precision reference of the same weights.
TEST_F(Vm11Test, CpuBackendRunsFusedQuantizedInt8Modules) {
  PluginRegistry cpu;
  Status st = cpu.LoadFile(GEMMAC_CPU_SO);
  ASSERT_TRUE(st.ok()) << st.message();
  for (schema::DType d : {schema::DType::Q8C, schema::DType::Q4G32,
                          schema::DType::Q4G128, schema::DType::Q4G32R8}) {
    SCOPED_TRACE(DTypeName(d));
    TinyConfig cfg;
    cfg.hidden = d == schema::DType::Q4G128 ? 128 : 32;
    cfg.head_dim = cfg.hidden / cfg.heads;
    cfg.ff = 2 * cfg.hidden;
    cfg.linear_dtype = d;
    cfg.embed_quant = schema::DType::Q8C;
    cfg.fused = true;
    cfg.qk_norm = d != schema::DType::Q4G32; // absent q_norm/k_norm once
    cfg.kv_i8 = true;
    test::TestModule tm;
    auto m = Load(cfg, &tm);
    auto s = NewSession(m, true, 0, &cpu, &st);
    ASSERT_TRUE(st.ok()) << st.message();
    std::vector<int32_t> toks = Tokens(20, tm.rows);
    st = s->AppendTokens(toks.data(), toks.size());
    ASSERT_TRUE(st.ok()) << st.message();
    auto [err, scale] =
        MaxErr(s->prompt_logits(), test::ReferenceLogits(tm, toks));
    // The reference is weights-only; the kernels also round activations to
    // Q8 codes (docs/quantization.md, "Kernel arithmetic"), and the int8
    // cache its rows: measured 6e-3 to 8e-3 of the logits' scale over these
    // 20 tokens, so a loose bound relative to that scale. The kernels' own
    // arithmetic is checked tightly by the cpu unit tests.
    EXPECT_LT(err, 2e-2f * scale + 1e-3f) << "scale " << scale;
  }
}
#endif

// A plugin that is the reference plugin, but records what the runtime hands
// it for qkv_proj, and can claim to speak ABI 1.0.
struct Probe {
  std::mutex mu;
  std::vector<std::vector<int32_t>> prepared;       // input dtypes
  std::vector<std::vector<gemmac_tensor>> launched; // inputs
  const gemmac_plugin_api *ref = nullptr;
};
Probe g_probe;
gemmac_plugin_api g_ref_api;

int32_t ProbePrepare(gemmac_backend *b, const gemmac_op_desc *d,
                     gemmac_kernel **out, gemmac_plugin_error *e) {
  if (d->op == GEMMAC_OP_QKV_PROJ) {
    std::lock_guard<std::mutex> l(g_probe.mu);
    g_probe.prepared.emplace_back(d->input_dtypes,
                                  d->input_dtypes + d->num_inputs);
  }
  return g_ref_api.prepare(b, d, out, e);
}
int32_t ProbeLaunch(gemmac_backend *b, gemmac_kernel *k,
                    const gemmac_tensor *in, uint32_t nin,
                    const gemmac_tensor *out, uint32_t nout,
                    const gemmac_exec_context *ctx, gemmac_plugin_error *e) {
  if (nin == 7 && nout == 3) { // qkv_proj
    std::lock_guard<std::mutex> l(g_probe.mu);
    g_probe.launched.emplace_back(in, in + nin);
  }
  return g_ref_api.launch(b, k, in, nin, out, nout, ctx, e);
}
int32_t ProbeEntry(uint32_t major, gemmac_plugin_api *api, size_t size) {
  int32_t rc = gemmac_testref_plugin_entry(major, &g_ref_api, size);
  *api = g_ref_api;
  api->name = "probe";
  api->prepare = ProbePrepare;
  api->launch = ProbeLaunch;
  return rc;
}
int32_t OldAbiEntry(uint32_t major, gemmac_plugin_api *api, size_t size) {
  int32_t rc = gemmac_testref_plugin_entry(major, api, size);
  api->name = "old";
  api->abi_minor = 0;
  return rc;
}

TEST_F(Vm11Test, AbsentInputReachesThePluginAsNull) {
  TinyConfig cfg;
  cfg.fused = true;
  cfg.qk_norm = false;
  test::TestModule tm;
  auto m = Load(cfg, &tm);
  PluginRegistry probe;
  ASSERT_TRUE(probe.Register(ProbeEntry, "probe").ok());
  g_probe.prepared.clear();
  g_probe.launched.clear();
  auto s = NewSession(m, true, 0, &probe);
  ASSERT_NE(s, nullptr);
  std::vector<int32_t> toks = Tokens(5, tm.rows);
  ASSERT_TRUE(s->AppendTokens(toks.data(), toks.size()).ok());
  // Two layers in each of prefill and decode; layer 0 folds its input norm,
  // layer 1 gets it from add_rms_norm. q_norm and k_norm are absent in all.
  ASSERT_EQ(g_probe.prepared.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    const std::vector<int32_t> &d = g_probe.prepared[i];
    ASSERT_EQ(d.size(), 7u);
    EXPECT_EQ(d[1], i % 2 == 0 ? GEMMAC_DTYPE_F32 : GEMMAC_DTYPE_NONE) << i;
    EXPECT_EQ(d[5], GEMMAC_DTYPE_NONE);
    EXPECT_EQ(d[6], GEMMAC_DTYPE_NONE);
    EXPECT_EQ(d[2], GEMMAC_DTYPE_F32);
  }
  ASSERT_EQ(g_probe.launched.size(), 2u); // one prefill call, two layers
  for (size_t layer = 0; layer < 2; ++layer) {
    const std::vector<gemmac_tensor> &in = g_probe.launched[layer];
    for (size_t j : {size_t(5), size_t(6)}) {
      EXPECT_EQ(in[j].data, nullptr);
      EXPECT_EQ(in[j].rank, 0);
      EXPECT_EQ(in[j].dtype, GEMMAC_DTYPE_NONE);
      EXPECT_EQ(in[j].struct_size, sizeof(gemmac_tensor));
    }
    EXPECT_EQ(in[1].data == nullptr, layer == 1);
    EXPECT_EQ(in[1].rank, layer == 0 ? 1 : 0);
    EXPECT_NE(in[2].data, nullptr);
    EXPECT_EQ(in[2].rank, 2);
  }
  // And the logits are right with them absent.
  std::vector<float> ref = test::ReferenceLogits(tm, toks);
  EXPECT_LT(MaxErr(s->prompt_logits(), ref).first, kTol11);
}

TEST_F(Vm11Test, Int8KvNeedsAnAbi11Plugin) {
  TinyConfig cfg;
  cfg.kv_i8 = true;
  test::TestModule tm;
  auto m = Load(cfg, &tm);
  PluginRegistry old;
  ASSERT_TRUE(old.Register(OldAbiEntry, "old").ok());
  Status st;
  auto s = NewSession(m, false, 0, &old, &st);
  EXPECT_EQ(s, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kUnimplemented);
  EXPECT_NE(st.message().find("kv_layers[0] is an int8 KV cache, but plugin "
                              "'old' speaks ABI 1.0; int8 caches"),
            std::string::npos)
      << st.message();
  // An f32 module still runs on it.
  test::TestModule tm2;
  auto m2 = Load(TinyConfig(), &tm2);
  EXPECT_NE(NewSession(m2, false, 0, &old), nullptr);
}

} // namespace
} // namespace gemmac
