// Partitioning at load: instructions the session's backend refuses run on
// the CPU plugin, the session says which, and the result matches a backend
// that runs everything. The partial test plugin (partial_plugin.cc) refuses
// attention and runs every other op with the reference kernels.
#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <gtest/gtest.h>
#include <string>
#include <vector>

#include "gemmac/runtime.h"
#include "session_fixture.h"

namespace {

using gemmac::test::LogitsNear;
using gemmac::test::RuntimeWith;
using gemmac::test::TinyConfig;
using gemmac::test::TinySessionTest;

using FallbackTest = TinySessionTest;

TEST_F(FallbackTest, RefusedOpWithoutACpuPluginIsAClearError) {
  gemmac_runtime *rt = RuntimeWith({GEMMAC_PARTIAL_SO});
  ASSERT_NE(rt, nullptr);
  gemmac_module *m = nullptr;
  gemmac_session *s = nullptr;
  gemmac_status *st = Open(rt, &m, &s);
  ASSERT_NE(st, nullptr);
  const std::string msg = gemmac_status_message(st);
  EXPECT_NE(msg.find(path_), std::string::npos) << msg;
  EXPECT_NE(msg.find("Attention"), std::string::npos) << msg;
  EXPECT_NE(msg.find("backend 'partial' does not support this op"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("no CPU plugin is registered to fall back to"),
            std::string::npos)
      << msg;
  EXPECT_EQ(s, nullptr);
  gemmac_status_free(st);
  gemmac_module_release(m);
  gemmac_runtime_release(rt);
}

// Memory is checked before anything is allocated: a session the device says
// it cannot hold is refused with the numbers, not an out-of-memory failure.
TEST_F(FallbackTest, SessionThatDoesNotFitIsRefusedBeforeAllocating) {
  gemmac_runtime *rt = RuntimeWith({GEMMAC_PARTIAL_SO});
  ASSERT_NE(rt, nullptr);
  void *lib = dlopen(GEMMAC_PARTIAL_SO, RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto available = reinterpret_cast<void (*)(uint64_t)>(
      dlsym(lib, "gemmac_partial_memory_available"));
  ASSERT_NE(available, nullptr);
  available(4096);
  gemmac_module *m = nullptr;
  gemmac_session *s = nullptr;
  gemmac_status *st = Open(rt, &m, &s);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(gemmac_status_code_of(st), GEMMAC_STATUS_RESOURCE_EXHAUSTED);
  const std::string msg = gemmac_status_message(st);
  EXPECT_NE(msg.find(path_ + ": a session needs "), std::string::npos) << msg;
  EXPECT_NE(msg.find("for context length 64), but backend 'partial' (host "
                     "(reference kernels)) has 4096 bytes available"),
            std::string::npos)
      << msg;
  gemmac_status_free(st);
  EXPECT_EQ(s, nullptr);
  // With the host's real figure the session gets past the check (and then
  // stops at the attention this plugin refuses, with no CPU plugin here).
  available(0);
  gemmac_module_release(m);
  m = nullptr;
  st = Open(rt, &m, &s);
  ASSERT_NE(st, nullptr);
  EXPECT_NE(std::string(gemmac_status_message(st)).find("does not support"),
            std::string::npos)
      << gemmac_status_message(st);
  gemmac_status_free(st);
  gemmac_module_release(m);
  gemmac_runtime_release(rt);
  dlclose(lib);
}

#ifdef GEMMAC_CPU_SO
TEST_F(FallbackTest, RefusedOpsRunOnTheCpuPluginAndAreReported) {
  const TinyConfig cfg;
  gemmac_runtime *rt = RuntimeWith({GEMMAC_PARTIAL_SO, GEMMAC_CPU_SO});
  gemmac_runtime *ref = RuntimeWith({GEMMAC_TESTREF_SO});
  ASSERT_NE(rt, nullptr);
  ASSERT_NE(ref, nullptr);
  gemmac_module *m = nullptr, *rm = nullptr;
  gemmac_session *s = nullptr, *rs = nullptr;
  gemmac_status *st = Open(rt, &m, &s);
  ASSERT_EQ(st, nullptr) << gemmac_status_message(st);
  st = Open(ref, &rm, &rs);
  ASSERT_EQ(st, nullptr) << gemmac_status_message(st);

  EXPECT_STREQ(gemmac_session_backend_name(s), "partial");
  // One attention per layer in prefill and in decode; nothing else.
  EXPECT_EQ(std::string(gemmac_session_fallback_summary(s)),
            "cpu runs Attention x" + std::to_string(2 * cfg.layers));
  EXPECT_STREQ(gemmac_session_fallback_summary(rs), "");

  // Prefill then one decode step: both functions cross the border.
  const std::vector<int32_t> prompt = {2, 17, 42, 99, 7};
  for (const std::vector<int32_t> &ids : {prompt, std::vector<int32_t>{5}}) {
    // Both are f32 end to end; only the attention's summation order
    // differs (SIMD CPU kernels against the plain reference).
    ASSERT_TRUE(LogitsNear(Logits(s, ids), Logits(rs, ids), 1e-4));
  }

  gemmac_session_release(s);
  gemmac_session_release(rs);
  gemmac_module_release(m);
  gemmac_module_release(rm);
  gemmac_runtime_release(rt);
  gemmac_runtime_release(ref);
}

// A plugin that fails mid-run: the call returns the plugin's message with the
// instruction, the host goes on, and the session works again once the
// device does.
TEST_F(FallbackTest, PluginFailingMidRunIsAnErrorTheHostSurvives) {
  gemmac_runtime *rt = RuntimeWith({GEMMAC_PARTIAL_SO, GEMMAC_CPU_SO});
  ASSERT_NE(rt, nullptr);
  // The runtime loaded the library already: this finds that instance.
  void *lib = dlopen(GEMMAC_PARTIAL_SO, RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto fail_after =
      reinterpret_cast<void (*)(long)>(dlsym(lib, "gemmac_partial_fail_after"));
  ASSERT_NE(fail_after, nullptr);
  gemmac_module *m = nullptr;
  gemmac_session *s = nullptr;
  gemmac_status *st = Open(rt, &m, &s);
  ASSERT_EQ(st, nullptr) << gemmac_status_message(st);
  const std::vector<int32_t> prompt = {2, 17, 42, 99, 7};
  const std::vector<float> before = Logits(s, prompt);
  ASSERT_FALSE(before.empty());

  fail_after(3);
  st = gemmac_session_append_tokens(s, prompt.data(), prompt.size());
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(gemmac_status_code_of(st), GEMMAC_STATUS_INTERNAL);
  const std::string msg = gemmac_status_message(st);
  EXPECT_NE(msg.find("function 'prefill' instruction "), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("backend 'partial' failed: partial: device lost"),
            std::string::npos)
      << msg;
  gemmac_status_free(st);

  // The device is back: the same session, reset, gives the same logits.
  fail_after(-1);
  gemmac_session_reset(s);
  EXPECT_EQ(Logits(s, prompt), before);

  gemmac_session_release(s);
  gemmac_module_release(m);
  gemmac_runtime_release(rt);
  dlclose(lib);
}
#endif

} // namespace
