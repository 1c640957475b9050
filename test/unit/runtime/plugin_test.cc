// The plugin loader: a good plugin loads by path and by search; a plugin
// that speaks another ABI major version is refused with a clear message.
#include <cstdlib>
#include <gtest/gtest.h>

#include "plugin_registry.h"

namespace gemmac {
namespace {

TEST(PluginLoader, LoadsByPath) {
  PluginRegistry r;
  Status s = r.LoadFile(GEMMAC_TESTREF_SO);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(r.plugins().size(), 1u);
  EXPECT_STREQ(r.plugins()[0]->api.name, "testref");
  EXPECT_EQ(r.Find("testref"), r.plugins()[0]);
  EXPECT_EQ(r.Find(""), r.plugins()[0]);
  EXPECT_EQ(r.Find("cuda"), nullptr);
  // The same plugin twice is refused by name.
  s = r.LoadFile(GEMMAC_TESTREF_SO);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("already registered"), std::string::npos);
}

TEST(PluginLoader, RefusesWrongAbiMajor) {
  PluginRegistry r;
  Status s = r.LoadFile(GEMMAC_BAD_ABI_SO);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_EQ(s.message(), std::string("plugin ") + GEMMAC_BAD_ABI_SO +
                             " speaks ABI 2.0; this runtime speaks 1." +
                             std::to_string(GEMMAC_PLUGIN_ABI_MINOR));
  EXPECT_TRUE(r.plugins().empty());
}

TEST(PluginLoader, MissingFileAndSymbol) {
  PluginRegistry r;
  Status s = r.LoadFile("/nonexistent/libgemmac_x.so");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("/nonexistent/libgemmac_x.so"), std::string::npos);
  // libc has no gemmac_plugin_entry.
  s = r.LoadFile("libc.so.6");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("gemmac_plugin_entry"), std::string::npos);
}

TEST(PluginLoader, SearchSkipsBadPluginsWithAWarning) {
  PluginRegistry r;
  std::vector<std::string> skipped;
  r.LoadFromDirs(std::string("/nonexistent:") + GEMMAC_TEST_PLUGIN_DIR,
                 &skipped);
  ASSERT_EQ(r.plugins().size(), 1u);
  EXPECT_STREQ(r.plugins()[0]->api.name, "testref");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("speaks ABI 2.0"), std::string::npos);
}

extern "C" int32_t NullTable(uint32_t, gemmac_plugin_api *api, size_t) {
  api->struct_size = sizeof(*api);
  api->abi_major = GEMMAC_PLUGIN_ABI_MAJOR;
  api->name = "empty";
  return GEMMAC_PLUGIN_OK;
}

TEST(PluginLoader, StaticRegistrationChecksTheTable) {
  PluginRegistry r;
  Status s = r.Register(NullTable, "static:empty");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("left a required entry"), std::string::npos);
  s = r.Register(nullptr, "static:null");
  EXPECT_FALSE(s.ok());
}

} // namespace
} // namespace gemmac
