// The C API: status ownership, the load -> session -> generate flow, chat
// continuation, stop strings, cancellation from another thread, and the
// memory a session needs (computed before one exists, refused when the
// device has less).
#include <algorithm>
#include <atomic>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <mutex>
#include <string>
#include <thread>

#include "gemmac/runtime.h"
#include "test_module.h"

namespace {

using gemmac::test::BuildTinyGemma;
using gemmac::test::TempPath;
using gemmac::test::TinyConfig;

class CApiTest : public ::testing::Test {
protected:
  void SetUp() override {
    path_ = TempPath("capi.gmc");
    gemmac::test::WriteModule(BuildTinyGemma(TinyConfig()), path_);
    const char *plugins[] = {GEMMAC_TESTREF_SO};
    gemmac_runtime_options ro = {};
    ro.struct_size = sizeof(ro);
    ro.plugin_paths = plugins;
    ro.num_plugin_paths = 1;
    ro.search_plugins = 0;
    ASSERT_EQ(gemmac_runtime_create(&ro, &rt_), nullptr);
    gemmac_status *st = gemmac_module_load(rt_, path_.c_str(), &module_);
    ASSERT_EQ(st, nullptr) << gemmac_status_message(st);
  }
  void TearDown() override {
    gemmac_module_release(module_);
    gemmac_runtime_release(rt_);
    std::remove(path_.c_str());
  }
  gemmac_session *NewSession(int32_t ctx = 64) {
    gemmac_session_options so = {};
    so.struct_size = sizeof(so);
    so.context_length = ctx;
    so.batch_size = 1;
    gemmac_session *s = nullptr;
    gemmac_status *st = gemmac_session_create(rt_, module_, &so, &s);
    EXPECT_EQ(st, nullptr) << gemmac_status_message(st);
    gemmac_status_free(st);
    return s;
  }

  std::string path_;
  gemmac_runtime *rt_ = nullptr;
  gemmac_module *module_ = nullptr;
};

struct Collected {
  std::string text;
  std::vector<int32_t> ids;
};

int32_t Collect(void *user, int32_t token, const char *text, size_t len) {
  auto *c = static_cast<Collected *>(user);
  c->text.append(text, len);
  if (token >= 0)
    c->ids.push_back(token);
  return 0;
}

gemmac_sampling_params Greedy() {
  gemmac_sampling_params p = {};
  p.struct_size = sizeof(p);
  p.temperature = 0;
  p.top_p = 1;
  return p;
}

TEST(CApiStatus, OwnershipAndNull) {
  EXPECT_EQ(gemmac_status_code_of(nullptr), GEMMAC_STATUS_OK);
  EXPECT_STREQ(gemmac_status_message(nullptr), "");
  gemmac_status_free(nullptr);
  gemmac_runtime *rt = nullptr;
  gemmac_runtime_options ro = {};
  ro.struct_size = sizeof(ro);
  ASSERT_EQ(gemmac_runtime_create(&ro, &rt), nullptr);
  gemmac_module *m = reinterpret_cast<gemmac_module *>(0x1);
  gemmac_status *st = gemmac_module_load(rt, "/nonexistent/m.gmc", &m);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(m, nullptr); // out is cleared on failure
  EXPECT_EQ(gemmac_status_code_of(st), GEMMAC_STATUS_NOT_FOUND);
  EXPECT_NE(std::string(gemmac_status_message(st)).find("/nonexistent/m.gmc"),
            std::string::npos);
  gemmac_status_free(st); // the caller owns it; ASan/valgrind would flag a leak
  st = gemmac_runtime_load_plugin(rt, GEMMAC_BAD_ABI_SO);
  EXPECT_EQ(gemmac_status_code_of(st), GEMMAC_STATUS_UNIMPLEMENTED);
  EXPECT_NE(std::string(gemmac_status_message(st)).find("speaks ABI 2.0"),
            std::string::npos);
  gemmac_status_free(st);
  st = gemmac_session_create(rt, nullptr, nullptr, nullptr);
  EXPECT_EQ(gemmac_status_code_of(st), GEMMAC_STATUS_INVALID_ARGUMENT);
  gemmac_status_free(st);
  gemmac_runtime_release(rt);
}

TEST_F(CApiTest, InfoAndOlderStructSizes) {
  gemmac_module_info info = {};
  info.struct_size = sizeof(info);
  ASSERT_EQ(gemmac_module_get_info(module_, &info), nullptr);
  EXPECT_EQ(info.hidden_size, 16);
  EXPECT_EQ(info.tokenizer_vocab_size, GEMMAC_RUNTIME_TEST_VOCAB);
  EXPECT_EQ(info.vocab_size, GEMMAC_RUNTIME_TEST_VOCAB + 3);
  EXPECT_EQ(info.bos_id, 2);
  ASSERT_EQ(info.num_stop_ids, 2u);
  EXPECT_EQ(info.stop_ids[1], 5);
  EXPECT_EQ(info.prefill_max_tokens, 8);
  EXPECT_STREQ(gemmac_module_function_name(module_, 1), "decode");
  // A caller compiled against a shorter struct gets only what fits.
  gemmac_module_info small = {};
  small.struct_size = offsetof(gemmac_module_info, producer);
  small.family = 77;
  ASSERT_EQ(gemmac_module_get_info(module_, &small), nullptr);
  EXPECT_EQ(small.version_major, 1u);
  EXPECT_EQ(small.family, 77); // untouched: past the caller's struct_size
  EXPECT_EQ(gemmac_module_verify_checksums(module_), nullptr);

  gemmac_session_options so = {};
  so.struct_size = sizeof(so);
  so.batch_size = 2;
  gemmac_session *s = nullptr;
  gemmac_status *st = gemmac_session_create(rt_, module_, &so, &s);
  EXPECT_EQ(gemmac_status_code_of(st), GEMMAC_STATUS_UNIMPLEMENTED);
  gemmac_status_free(st);
}

TEST_F(CApiTest, OneRowPrefillModule) {
  // Module format 1.1: fused, q4g32 projections, int8 KV, and a prefill
  // compiled as with --prefill-logits=last.
  TinyConfig cfg;
  cfg.hidden = 32;
  cfg.head_dim = 16;
  cfg.ff = 64;
  cfg.linear_dtype = gemmac::schema::DType::Q4G32;
  cfg.kv_i8 = true;
  cfg.fused = true;
  cfg.last_logits_only = true;
  std::string path = TempPath("capi_last.gmc");
  gemmac::test::WriteModule(BuildTinyGemma(cfg), path);
  gemmac_module *m = nullptr;
  gemmac_status *st = gemmac_module_load(rt_, path.c_str(), &m);
  ASSERT_EQ(st, nullptr) << gemmac_status_message(st);
  gemmac_module_info info = {};
  info.struct_size = sizeof(info);
  ASSERT_EQ(gemmac_module_get_info(m, &info), nullptr);
  EXPECT_EQ(info.version_minor, 1u);
  EXPECT_STREQ(info.quantization, "q4g32");
  EXPECT_EQ(info.prefill_last_logits_only, 1);
  gemmac_module_info plain = {};
  plain.struct_size = sizeof(plain);
  ASSERT_EQ(gemmac_module_get_info(module_, &plain), nullptr);
  EXPECT_STREQ(plain.quantization, "");
  EXPECT_EQ(plain.prefill_last_logits_only, 0);

  // Asking for every prompt position's logits is refused, naming the flag.
  gemmac_session_options so = {};
  so.struct_size = sizeof(so);
  so.batch_size = 1;
  so.keep_prompt_logits = 1;
  gemmac_session *s = nullptr;
  st = gemmac_session_create(rt_, m, &so, &s);
  EXPECT_EQ(gemmac_status_code_of(st), GEMMAC_STATUS_FAILED_PRECONDITION);
  EXPECT_NE(
      std::string(gemmac_status_message(st)).find("--prefill-logits=last"),
      std::string::npos)
      << gemmac_status_message(st);
  EXPECT_EQ(s, nullptr);
  gemmac_status_free(st);

  // Without it the module generates, and the last logits row is there.
  so.keep_prompt_logits = 0;
  st = gemmac_session_create(rt_, m, &so, &s);
  ASSERT_EQ(st, nullptr) << gemmac_status_message(st);
  ASSERT_EQ(gemmac_session_append_text(s, "Once upon a time", 16), nullptr);
  size_t cols = 0, rows = 7;
  EXPECT_NE(gemmac_session_last_logits(s, &cols), nullptr);
  EXPECT_EQ(cols, size_t(GEMMAC_RUNTIME_TEST_VOCAB));
  EXPECT_EQ(gemmac_session_prompt_logits(s, &rows, &cols), nullptr);
  EXPECT_EQ(rows, 0u);
  gemmac_sampling_params p = Greedy();
  Collected c;
  ASSERT_EQ(gemmac_session_generate(s, &p, 4, Collect, &c), nullptr);
  EXPECT_FALSE(c.ids.empty());
  gemmac_session_stats stats = {};
  stats.struct_size = sizeof(stats);
  ASSERT_EQ(gemmac_session_get_stats(s, &stats), nullptr);
  // int8 k and v (16 per row) plus an f32 scale each, 64 rows of context
  // in the global layer and a ring of 11 in the sliding one.
  EXPECT_EQ(stats.kv_cache_bytes, uint64_t(2 * (64 + 11) * (16 + 4)));
  gemmac_session_release(s);
  gemmac_module_release(m);
  std::remove(path.c_str());
}

TEST_F(CApiTest, GenerateStreamsTextAndReportsStats) {
  gemmac_session *s = NewSession();
  ASSERT_NE(s, nullptr);
  EXPECT_STREQ(gemmac_session_backend_name(s), "testref");
  // The test plugin has no describe(): an empty line, not a null.
  EXPECT_STREQ(gemmac_session_backend_description(s), "");
  int32_t *ids = nullptr;
  size_t n = 0;
  ASSERT_EQ(gemmac_session_tokenize(s, "Once upon a time", 16, 1, &ids, &n),
            nullptr);
  ASSERT_GT(n, 2u);
  EXPECT_EQ(ids[0], 2);
  ASSERT_EQ(gemmac_session_append_tokens(s, ids, n), nullptr);
  gemmac_free(ids);
  size_t cols = 0;
  ASSERT_NE(gemmac_session_last_logits(s, &cols), nullptr);
  EXPECT_EQ(cols, size_t(GEMMAC_RUNTIME_TEST_VOCAB));

  Collected c;
  gemmac_sampling_params p = Greedy();
  ASSERT_EQ(gemmac_session_generate(s, &p, 10, Collect, &c), nullptr);
  ASSERT_FALSE(c.ids.empty());
  // The streamed text is the detokenized ids.
  char *text = nullptr;
  size_t len = 0;
  ASSERT_EQ(
      gemmac_session_detokenize(s, c.ids.data(), c.ids.size(), &text, &len),
      nullptr);
  EXPECT_EQ(c.text, std::string(text, len));
  gemmac_free(text);

  gemmac_session_stats st = {};
  st.struct_size = sizeof(st);
  ASSERT_EQ(gemmac_session_get_stats(s, &st), nullptr);
  EXPECT_EQ(st.prompt_tokens, int64_t(n));
  EXPECT_GT(st.prefill_tokens_per_second, 0);
  EXPECT_GT(st.time_to_first_token, 0);
  EXPECT_GT(st.kv_cache_bytes, 0u);
  EXPECT_GT(st.arena_bytes, 0u);
  EXPECT_EQ(st.context_length, 64);
  size_t total = 0;
  gemmac_session_tokens(s, &total);
  EXPECT_EQ(st.position, int64_t(total));
  EXPECT_TRUE(st.stop_reason == GEMMAC_STOP_MAX_TOKENS ||
              st.stop_reason == GEMMAC_STOP_TOKEN);
  gemmac_session_release(s);
}

TEST_F(CApiTest, SameSeedSameTokens) {
  std::vector<int32_t> runs[2];
  for (auto &out : runs) {
    gemmac_session *s = NewSession();
    ASSERT_EQ(gemmac_session_append_text(s, "The lighthouse", 14), nullptr);
    gemmac_sampling_params p = Greedy();
    p.temperature = 1.5f;
    p.seed = 1234;
    Collected c;
    ASSERT_EQ(gemmac_session_generate(s, &p, 8, Collect, &c), nullptr);
    out = c.ids;
    gemmac_session_release(s);
  }
  EXPECT_EQ(runs[0], runs[1]);
}

TEST_F(CApiTest, StopStringCutsTheText) {
  gemmac_session *s = NewSession();
  ASSERT_EQ(gemmac_session_append_text(s, "Once", 4), nullptr);
  gemmac_sampling_params p = Greedy();
  Collected full;
  ASSERT_EQ(gemmac_session_generate(s, &p, 16, Collect, &full), nullptr);
  if (full.text.size() < 6)
    GTEST_SKIP() << "greedy output too short for a stop string";
  std::string stop = full.text.substr(3, 2);
  size_t cut = full.text.find(stop);
  gemmac_session_reset(s);
  ASSERT_EQ(gemmac_session_append_text(s, "Once", 4), nullptr);
  const char *stops[] = {stop.c_str()};
  p.stop_strings = stops;
  p.num_stop_strings = 1;
  Collected got;
  ASSERT_EQ(gemmac_session_generate(s, &p, 16, Collect, &got), nullptr);
  EXPECT_EQ(got.text, full.text.substr(0, cut));
  gemmac_session_stats st = {};
  st.struct_size = sizeof(st);
  gemmac_session_get_stats(s, &st);
  EXPECT_EQ(st.stop_reason, GEMMAC_STOP_STRING);
  gemmac_session_release(s);
}

TEST_F(CApiTest, ChatContinuationPrefillsOnlyTheNewTurn) {
  gemmac_session *s = NewSession();
  gemmac_chat_message first[] = {
      {sizeof(gemmac_chat_message), "system", "Be brief."},
      {sizeof(gemmac_chat_message), "user", "Count ships."}};
  ASSERT_EQ(gemmac_session_append_chat(s, first, 2, 1), nullptr);
  size_t n1 = 0;
  const int32_t *t = gemmac_session_tokens(s, &n1);
  EXPECT_EQ(t[0], 2); // BOS
  EXPECT_EQ(t[1], 4); // <start_of_turn>
  std::vector<int32_t> before(t, t + n1);
  gemmac_sampling_params p = Greedy();
  ASSERT_EQ(gemmac_session_generate(s, &p, 4, nullptr, nullptr), nullptr);
  size_t n2 = 0;
  gemmac_session_tokens(s, &n2);
  gemmac_session_stats st = {};
  st.struct_size = sizeof(st);
  gemmac_session_get_stats(s, &st);
  int64_t prompt_before = st.prompt_tokens;

  gemmac_chat_message second[] = {
      {sizeof(gemmac_chat_message), "user", "Why?"}};
  ASSERT_EQ(gemmac_session_append_chat(s, second, 1, 1), nullptr);
  size_t n3 = 0;
  t = gemmac_session_tokens(s, &n3);
  // History kept: the old tokens are a prefix, and only the new turn was
  // prefilled (the last generated token was run by decode).
  ASSERT_GT(n3, n2);
  EXPECT_TRUE(std::equal(before.begin(), before.end(), t));
  gemmac_session_get_stats(s, &st);
  EXPECT_EQ(st.prompt_tokens - prompt_before, int64_t(n3 - n2));
  // The new turn closes the model turn and opens a user turn.
  std::vector<int32_t> tail(t + n2, t + n3);
  EXPECT_NE(std::find(tail.begin(), tail.end(), 4), tail.end());
  if (t[n2 - 1] != 5)
    EXPECT_EQ(tail[0], 5); // <end_of_turn> closes the model turn
  gemmac_session_release(s);
}

struct CancelState {
  std::mutex mu;
  std::condition_variable cv;
  bool first_token = false;
  bool cancelled = false;
};

int32_t WaitForCancel(void *user, int32_t, const char *, size_t) {
  auto *c = static_cast<CancelState *>(user);
  std::unique_lock<std::mutex> lock(c->mu);
  c->first_token = true;
  c->cv.notify_all();
  c->cv.wait(lock, [&] { return c->cancelled; });
  return 0; // keep going: the session itself must notice the cancel
}

TEST_F(CApiTest, CancelFromAnotherThread) {
  gemmac_session *s = NewSession();
  ASSERT_EQ(gemmac_session_append_text(s, "Once upon", 9), nullptr);
  CancelState cs;
  std::thread canceller([&] {
    std::unique_lock<std::mutex> lock(cs.mu);
    cs.cv.wait(lock, [&] { return cs.first_token; });
    gemmac_session_cancel(s);
    cs.cancelled = true;
    cs.cv.notify_all();
  });
  gemmac_sampling_params p = Greedy();
  gemmac_status *st = gemmac_session_generate(s, &p, 40, WaitForCancel, &cs);
  {
    // Release the canceller even if no token reached the callback.
    std::lock_guard<std::mutex> lock(cs.mu);
    cs.first_token = true;
    cs.cv.notify_all();
  }
  canceller.join();
  gemmac_session_stats stats = {};
  stats.struct_size = sizeof(stats);
  gemmac_session_get_stats(s, &stats);
  if (stats.stop_reason == GEMMAC_STOP_TOKEN && st == nullptr) {
    GTEST_SKIP() << "the model stopped on its own after one token";
  }
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(gemmac_status_code_of(st), GEMMAC_STATUS_CANCELLED);
  gemmac_status_free(st);
  EXPECT_EQ(stats.generated_tokens, 1);
  // The request is cleared: the session keeps working.
  Collected c;
  EXPECT_EQ(gemmac_session_generate(s, &p, 2, Collect, &c), nullptr);
  gemmac_session_release(s);
}

// The tiny module: layer 0 slides (window 4, a ring of window + prefill_max -
// 1 = 11 rows), layer 1 is global; one KV head of 8 f32 values, K and V.
TEST_F(CApiTest, SessionMemoryIsWhatTheSessionAllocates) {
  const uint64_t per_pos = 2 * 1 * 8 * 4;
  for (int32_t ctx : {64, 8, 0}) {
    gemmac_session_options so = {};
    so.struct_size = sizeof(so);
    so.context_length = ctx;
    gemmac_session_memory need = {};
    need.struct_size = sizeof(need);
    gemmac_status *st = gemmac_module_session_memory(module_, &so, &need);
    ASSERT_EQ(st, nullptr) << gemmac_status_message(st);
    EXPECT_EQ(need.struct_size, sizeof(need));
    // 0 means the default, min(max_context 64, 4096).
    const int64_t resolved = ctx == 0 ? 64 : ctx;
    EXPECT_EQ(need.context_length, resolved);
    EXPECT_EQ(need.kv_cache_bytes,
              (std::min<int64_t>(11, resolved) + resolved) * per_pos);
    gemmac_session *s = NewSession(ctx);
    ASSERT_NE(s, nullptr);
    gemmac_session_stats stats = {};
    stats.struct_size = sizeof(stats);
    ASSERT_EQ(gemmac_session_get_stats(s, &stats), nullptr);
    EXPECT_EQ(stats.kv_cache_bytes, need.kv_cache_bytes) << "ctx " << ctx;
    EXPECT_EQ(stats.arena_bytes, need.arena_bytes) << "ctx " << ctx;
    EXPECT_GT(need.arena_bytes, 0u);
    gemmac_session_release(s);
  }
  // NULL options: the defaults.
  gemmac_session_memory need = {};
  need.struct_size = sizeof(need);
  ASSERT_EQ(gemmac_module_session_memory(module_, nullptr, &need), nullptr);
  EXPECT_EQ(need.context_length, 64);
  // Above max_context: refused with both numbers, as session_create does.
  gemmac_session_options so = {};
  so.struct_size = sizeof(so);
  so.context_length = 65;
  gemmac_status *st = gemmac_module_session_memory(module_, &so, &need);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(gemmac_status_code_of(st), GEMMAC_STATUS_RESOURCE_EXHAUSTED);
  EXPECT_NE(std::string(gemmac_status_message(st))
                .find("context length 65 exceeds the model's max_context 64"),
            std::string::npos)
      << gemmac_status_message(st);
  gemmac_status_free(st);
  st = gemmac_module_session_memory(module_, &so, nullptr);
  EXPECT_EQ(gemmac_status_code_of(st), GEMMAC_STATUS_INVALID_ARGUMENT);
  gemmac_status_free(st);
}

TEST_F(CApiTest, DeviceInfoOfAPlugin) {
  gemmac_device_info info = {};
  info.struct_size = sizeof(info);
  gemmac_status *st = gemmac_runtime_device_info(rt_, nullptr, &info);
  ASSERT_EQ(st, nullptr) << gemmac_status_message(st);
  EXPECT_STREQ(info.name, "host (reference kernels)");
  EXPECT_GT(info.memory_available_bytes, 0u);
  EXPECT_LE(info.memory_available_bytes, info.memory_bytes);
  st = gemmac_runtime_device_info(rt_, "no-such-plugin", &info);
  EXPECT_EQ(gemmac_status_code_of(st), GEMMAC_STATUS_NOT_FOUND);
  EXPECT_NE(std::string(gemmac_status_message(st)).find("'no-such-plugin'"),
            std::string::npos);
  gemmac_status_free(st);
}

// A long context is refused before anything is allocated when its KV cache
// does not fit in what the device reports, with the figures
// gemmac_module_session_memory gives.
class CApiLongContextTest : public ::testing::Test {
protected:
  void SetUp() override {
    TinyConfig cfg;
    cfg.layers = 4; // two global layers
    cfg.head_dim = 64;
    cfg.max_context = INT_MAX;
    path_ = TempPath("capi_long.gmc");
    gemmac::test::WriteModule(BuildTinyGemma(cfg), path_);
  }
  void TearDown() override { std::remove(path_.c_str()); }

  gemmac_status *Open(const char *plugin, int32_t ctx, gemmac_runtime **rt,
                      gemmac_module **m, gemmac_session **s) {
    const char *plugins[] = {plugin};
    gemmac_runtime_options ro = {};
    ro.struct_size = sizeof(ro);
    ro.plugin_paths = plugins;
    ro.num_plugin_paths = 1;
    ro.search_plugins = 0;
    gemmac_status *st = gemmac_runtime_create(&ro, rt);
    if (st == nullptr)
      st = gemmac_module_load(*rt, path_.c_str(), m);
    if (st != nullptr)
      return st;
    gemmac_session_options so = {};
    so.struct_size = sizeof(so);
    so.context_length = ctx;
    so.batch_size = 1;
    return gemmac_session_create(*rt, *m, &so, s);
  }
  static gemmac_session_memory Need(gemmac_module *m, int32_t ctx) {
    gemmac_session_options so = {};
    so.struct_size = sizeof(so);
    so.context_length = ctx;
    gemmac_session_memory need = {};
    need.struct_size = sizeof(need);
    gemmac_status *st = gemmac_module_session_memory(m, &so, &need);
    EXPECT_EQ(st, nullptr) << gemmac_status_message(st);
    gemmac_status_free(st);
    return need;
  }

  std::string path_;
};

TEST_F(CApiLongContextTest, RefusedWhenTheKvCacheExceedsTheHostsMemory) {
  // 2 global layers x 2^31 - 1 positions x 512 bytes: 2 TiB of KV cache.
  gemmac_runtime *rt = nullptr;
  gemmac_module *m = nullptr;
  gemmac_session *s = nullptr;
  gemmac_status *st = Open(GEMMAC_TESTREF_SO, INT_MAX, &rt, &m, &s);
  ASSERT_NE(m, nullptr);
  const gemmac_session_memory need = Need(m, INT_MAX);
  const uint64_t per_pos = 2 * 1 * 64 * 4;
  EXPECT_EQ(need.kv_cache_bytes,
            (2 * uint64_t(INT_MAX) + 2 * (4 + 8 - 1)) * per_pos);
  gemmac_device_info dev = {};
  dev.struct_size = sizeof(dev);
  gemmac_status_free(gemmac_runtime_device_info(rt, nullptr, &dev));
  if (dev.memory_available_bytes >= need.kv_cache_bytes + need.arena_bytes) {
    gemmac_status_free(st);
    gemmac_session_release(s);
    gemmac_module_release(m);
    gemmac_runtime_release(rt);
    GTEST_SKIP() << "this host has more than 2 TiB available";
  }
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(s, nullptr);
  EXPECT_EQ(gemmac_status_code_of(st), GEMMAC_STATUS_RESOURCE_EXHAUSTED);
  // The refusal of the check before allocation, not a failed allocation.
  const std::string msg = gemmac_status_message(st);
  EXPECT_NE(msg.find(": a session needs " +
                     std::to_string(need.arena_bytes + need.kv_cache_bytes) +
                     " bytes (arena " + std::to_string(need.arena_bytes) +
                     " + KV cache " + std::to_string(need.kv_cache_bytes) +
                     " for context length " + std::to_string(INT_MAX) + ")"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("use a shorter context"), std::string::npos) << msg;
  gemmac_status_free(st);
  gemmac_module_release(m);
  gemmac_runtime_release(rt);
}

// The figure is exact: a device with one byte less than arena + KV refuses,
// one with exactly that much gets past the check (the partial plugin fakes
// its free memory; it then stops at the attention it refuses, as there is no
// CPU plugin to fall back on).
TEST_F(CApiLongContextTest, TheCheckUsesExactlyTheReportedFigures) {
  gemmac_runtime *rt = nullptr;
  gemmac_module *m = nullptr;
  gemmac_session *s = nullptr;
  const int32_t ctx = 4096;
  gemmac_status_free(Open(GEMMAC_PARTIAL_SO, ctx, &rt, &m, &s));
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(s, nullptr);
  void *lib = dlopen(GEMMAC_PARTIAL_SO, RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto available = reinterpret_cast<void (*)(uint64_t)>(
      dlsym(lib, "gemmac_partial_memory_available"));
  ASSERT_NE(available, nullptr);
  const gemmac_session_memory need = Need(m, ctx);
  for (uint64_t have : {need.arena_bytes + need.kv_cache_bytes - 1,
                        need.arena_bytes + need.kv_cache_bytes}) {
    available(have);
    gemmac_session_options so = {};
    so.struct_size = sizeof(so);
    so.context_length = ctx;
    so.batch_size = 1;
    gemmac_status *st = gemmac_session_create(rt, m, &so, &s);
    ASSERT_NE(st, nullptr);
    const std::string msg = gemmac_status_message(st);
    const bool refused = msg.find(" has " + std::to_string(have) +
                                  " bytes available") != std::string::npos;
    EXPECT_EQ(refused, have < need.arena_bytes + need.kv_cache_bytes) << msg;
    gemmac_status_free(st);
  }
  available(0);
  gemmac_module_release(m);
  gemmac_runtime_release(rt);
  dlclose(lib);
}

TEST_F(CApiTest, ReleaseOrderDoesNotMatter) {
  gemmac_session *s = NewSession();
  // Drop our references first: the session keeps module and runtime alive.
  gemmac_module_release(module_);
  gemmac_runtime_release(rt_);
  module_ = nullptr;
  rt_ = nullptr;
  EXPECT_EQ(gemmac_session_append_text(s, "Once", 4), nullptr);
  Collected c;
  gemmac_sampling_params p = Greedy();
  EXPECT_EQ(gemmac_session_generate(s, &p, 3, Collect, &c), nullptr);
  gemmac_session_release(s);
}

} // namespace
