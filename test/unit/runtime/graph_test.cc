// Graph mode (ABI 1.4): a plugin that takes whole functions gets prefill and
// decode compiled once, runs each call as one execute_graph, and computes
// exactly what the same kernels compute one instruction at a time; a
// function it declines runs per instruction, and the session says which.
// The plugin is the reference plugin built with GEMMAC_TESTREF_GRAPH.
#include <dlfcn.h>

#include <cstdio>
#include <gtest/gtest.h>
#include <string>
#include <vector>

#include "gemmac/runtime.h"
#include "test_module.h"

namespace {

using gemmac::test::BuildTinyGemma;
using gemmac::test::TempPath;
using gemmac::test::TinyConfig;

// One runtime on one plugin library, one module, one session.
struct SessionRun {
  explicit SessionRun(const char *plugin, const std::string &model) {
    gemmac_runtime_options ro = {};
    ro.struct_size = sizeof(ro);
    ro.plugin_paths = &plugin;
    ro.num_plugin_paths = 1;
    ro.search_plugins = 0;
    Check(gemmac_runtime_create(&ro, &rt));
    Check(gemmac_module_load(rt, model.c_str(), &m));
    gemmac_session_options so = {};
    so.struct_size = sizeof(so);
    so.context_length = 64;
    so.batch_size = 1;
    Check(gemmac_session_create(rt, m, &so, &s));
  }
  ~SessionRun() {
    gemmac_session_release(s);
    gemmac_module_release(m);
    gemmac_runtime_release(rt);
  }
  static void Check(gemmac_status *st) {
    EXPECT_EQ(st, nullptr) << gemmac_status_message(st);
    gemmac_status_free(st);
  }
  // The last position's logits after appending ids.
  std::vector<float> Logits(const std::vector<int32_t> &ids) {
    Check(gemmac_session_append_tokens(s, ids.data(), ids.size()));
    size_t cols = 0;
    const float *l = gemmac_session_last_logits(s, &cols);
    return l ? std::vector<float>(l, l + cols) : std::vector<float>();
  }
  gemmac_runtime *rt = nullptr;
  gemmac_module *m = nullptr;
  gemmac_session *s = nullptr;
};

class GraphTest : public ::testing::Test {
protected:
  void SetUp() override {
    path_ = TempPath("graph.gmc");
    gemmac::test::WriteModule(BuildTinyGemma(TinyConfig()), path_);
  }
  void TearDown() override { std::remove(path_.c_str()); }
  // Prefill of a prompt, then two decode steps, on both runs.
  void ExpectSameLogits(SessionRun &a, SessionRun &b) {
    const std::vector<std::vector<int32_t>> calls = {
        {2, 17, 42, 99, 7, 11, 3}, {5}, {23}};
    for (const std::vector<int32_t> &ids : calls) {
      const std::vector<float> x = a.Logits(ids), y = b.Logits(ids);
      ASSERT_FALSE(x.empty());
      // The same kernels in the same order: bit for bit.
      EXPECT_EQ(x, y) << "after a call of " << ids.size() << " tokens";
    }
  }
  std::string path_;
};

TEST_F(GraphTest, FunctionsRunAsGraphsWithTheKernelsResults) {
  SessionRun graph(GEMMAC_TESTREF_GRAPH_SO, path_);
  SessionRun kernels(GEMMAC_TESTREF_SO, path_);
  ASSERT_NE(graph.s, nullptr);
  ASSERT_NE(kernels.s, nullptr);
  EXPECT_STREQ(gemmac_session_backend_name(graph.s), "testref-graph");
  EXPECT_STREQ(gemmac_session_graph_summary(graph.s),
               "graphs: prefill, decode");
  EXPECT_STREQ(gemmac_session_graph_summary(kernels.s), "");
  ExpectSameLogits(graph, kernels);
}

TEST_F(GraphTest, ADeclinedFunctionRunsPerInstruction) {
  // Load the library first so that its test control can be set before the
  // session compiles (the runtime's dlopen finds this instance).
  void *lib = dlopen(GEMMAC_TESTREF_GRAPH_SO, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto decline = reinterpret_cast<void (*)(const char *)>(
      dlsym(lib, "gemmac_testref_graph_decline"));
  ASSERT_NE(decline, nullptr);
  decline("prefill");
  {
    SessionRun graph(GEMMAC_TESTREF_GRAPH_SO, path_);
    SessionRun kernels(GEMMAC_TESTREF_SO, path_);
    ASSERT_NE(graph.s, nullptr);
    EXPECT_EQ(std::string(gemmac_session_graph_summary(graph.s)),
              "graphs: decode; prefill declined: testref-graph: declines "
              "function 'prefill' (asked by the test)");
    ExpectSameLogits(graph, kernels);
  }
  decline(nullptr);
  dlclose(lib);
}

} // namespace
