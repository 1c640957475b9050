// The C++ wrapper (gemmac/runtime.hpp): RAII handles and Status carry the C
// API's results through unchanged.
#include <gtest/gtest.h>

#include "gemmac/runtime.hpp"
#include "test_module.h"

namespace {

namespace g = gemmac::api;

TEST(CppApi, LoadGenerateAndErrors) {
  std::string path = gemmac::test::TempPath("cpp.gmc");
  gemmac::test::WriteModule(
      gemmac::test::BuildTinyGemma(gemmac::test::TinyConfig()), path);
  g::Runtime rt;
  g::Runtime::Options ro;
  ro.plugin_paths = {GEMMAC_TESTREF_SO};
  ro.search_plugins = false;
  ASSERT_TRUE(g::Runtime::Create(ro, &rt).ok());
  g::ModuleRef missing;
  g::Status st = rt.Load("/nonexistent.gmc", &missing);
  EXPECT_EQ(st.code(), GEMMAC_STATUS_NOT_FOUND);
  EXPECT_FALSE(missing);
  g::ModuleRef m;
  ASSERT_TRUE(rt.Load(path, &m).ok());
  gemmac_module_info info;
  ASSERT_TRUE(m.Info(&info).ok());
  EXPECT_EQ(info.num_layers, 2);
  g::SessionRef s;
  ASSERT_TRUE(rt.NewSession(m, {}, &s).ok());
  ASSERT_TRUE(s.AppendChat({{"user", "Hello"}}).ok());
  std::string text;
  std::vector<int32_t> ids;
  g::SamplingParams p;
  p.temperature = 0;
  st = s.Generate(p, 5, [&](int32_t id, std::string_view t) {
    text += t;
    if (id >= 0)
      ids.push_back(id);
    return true;
  });
  ASSERT_TRUE(st.ok()) << st.message();
  std::string decoded;
  ASSERT_TRUE(s.Detokenize(ids, &decoded).ok());
  EXPECT_EQ(text, decoded);
  gemmac_session_stats stats;
  ASSERT_TRUE(s.Stats(&stats).ok());
  EXPECT_EQ(stats.position, int64_t(s.Tokens().size()));
  // The figures before a session exist are what this one allocated.
  g::Runtime::SessionOptions so;
  so.context_length = int32_t(stats.context_length);
  gemmac_session_memory mem;
  ASSERT_TRUE(g::Runtime::SessionMemory(m, so, &mem).ok());
  EXPECT_EQ(mem.kv_cache_bytes, stats.kv_cache_bytes);
  EXPECT_EQ(mem.arena_bytes, stats.arena_bytes);
  gemmac_device_info dev;
  ASSERT_TRUE(rt.DeviceInfo("", &dev).ok());
  EXPECT_EQ(dev.kind, GEMMAC_DEVICE_CPU);
  EXPECT_EQ(rt.DeviceInfo("no-such-plugin", &dev).code(),
            GEMMAC_STATUS_NOT_FOUND);
  std::remove(path.c_str());
}

} // namespace
