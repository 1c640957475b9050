// The runtime on a discrete device (ABI 1.6): memory the host cannot read,
// weights mapped into device memory, launches deferred on a stream, and CPU
// fallback with copies at the partition border. The device is the reference
// kernels behind device_plugin.cc, which crashes a runtime that dereferences
// device memory and hands stale results to one that does not wait for its
// stream; the logits must equal the reference plugin's own.
#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <gtest/gtest.h>
#include <string>
#include <vector>

#include "gemmac/plugin.h"
#include "gemmac/runtime.h"
#include "session_fixture.h"

namespace {

using gemmac::test::LogitsNear;
using gemmac::test::RuntimeWith;
using gemmac::test::TinySessionTest;

class DeviceTest : public TinySessionTest {
protected:
  void SetUp() override {
    TinySessionTest::SetUp();
    // The device library is loaded by the runtimes below; its controls are
    // reached through this handle (the same instance).
    lib_ = dlopen(GEMMAC_TESTDEVICE_SO, RTLD_NOW);
    ASSERT_NE(lib_, nullptr) << dlerror();
    refuse_ = reinterpret_cast<void (*)(uint32_t)>(
        dlsym(lib_, "gemmac_testdevice_refuse"));
    copies_ =
        reinterpret_cast<long (*)()>(dlsym(lib_, "gemmac_testdevice_copies"));
    ASSERT_NE(refuse_, nullptr);
    ASSERT_NE(copies_, nullptr);
    refuse_(0);
  }
  void TearDown() override {
    if (refuse_ != nullptr)
      refuse_(0);
    if (lib_ != nullptr)
      dlclose(lib_);
    TinySessionTest::TearDown();
  }

  // Runs a prompt and three decode steps on `plugins` and on the reference
  // plugin; the logits of each call must agree within `tol` of their scale.
  void ExpectSameAsReference(std::vector<const char *> plugins, double tol,
                             std::string *summary) {
    gemmac_runtime *rt = RuntimeWith(plugins);
    gemmac_runtime *ref = RuntimeWith({GEMMAC_TESTREF_SO});
    ASSERT_NE(rt, nullptr);
    ASSERT_NE(ref, nullptr);
    gemmac_module *m = nullptr, *rm = nullptr;
    gemmac_session *s = nullptr, *rs = nullptr;
    gemmac_status *st = Open(rt, &m, &s);
    ASSERT_EQ(st, nullptr) << gemmac_status_message(st);
    st = Open(ref, &rm, &rs);
    ASSERT_EQ(st, nullptr) << gemmac_status_message(st);
    EXPECT_STREQ(gemmac_session_backend_name(s), "testdevice");
    *summary = gemmac_session_fallback_summary(s);

    const std::vector<std::vector<int32_t>> calls = {
        {2, 17, 42, 99, 7, 3, 250}, {5}, {61}, {9}};
    for (size_t c = 0; c < calls.size(); ++c)
      ASSERT_TRUE(LogitsNear(Logits(s, calls[c]), Logits(rs, calls[c]), tol))
          << "call " << c;
    gemmac_session_release(s);
    gemmac_session_release(rs);
    gemmac_module_release(m);
    gemmac_module_release(rm);
    gemmac_runtime_release(rt);
    gemmac_runtime_release(ref);
  }

  void *lib_ = nullptr;
  void (*refuse_)(uint32_t) = nullptr;
  long (*copies_)() = nullptr;
};

// Everything on the device: the same kernels as the reference, so the same
// numbers, though every byte went through copy(), map_weights() and a
// deferred stream.
TEST_F(DeviceTest, RunsWithOpaqueMemoryMappedWeightsAndAStream) {
  std::string summary;
  const long before = copies_();
  ExpectSameAsReference({GEMMAC_TESTDEVICE_SO}, 0.0, &summary);
  EXPECT_EQ(summary, "");
  // Tokens in and logits out for each of the 4 calls, and the KV zeroing.
  EXPECT_GE(copies_() - before, 8);
}

#ifdef GEMMAC_CPU_SO
// Refused ops run on the CPU plugin in a host mirror of the arena: the
// first instruction (reads the tokens the runtime copied to the device), one
// in the middle of each layer, and the head (makes the logits on the host).
TEST_F(DeviceTest, FallbackCopiesOnlyAtTheBorder) {
  refuse_(1u << GEMMAC_OP_EMBED | 1u << GEMMAC_OP_ROPE |
          1u << GEMMAC_OP_FINAL_HEAD | 1u << GEMMAC_OP_LM_HEAD |
          1u << GEMMAC_OP_SOFTCAP);
  std::string summary;
  // f32 throughout; the CPU's kernels sum in another order.
  ExpectSameAsReference({GEMMAC_TESTDEVICE_SO, GEMMAC_CPU_SO}, 1e-4, &summary);
  EXPECT_NE(summary.find("cpu runs "), std::string::npos) << summary;
  EXPECT_NE(summary.find("Embed x2"), std::string::npos) << summary;
  EXPECT_NE(summary.find("Rope x"), std::string::npos) << summary;
}

// The KV cache lives on the device: attention cannot fall back to the CPU.
TEST_F(DeviceTest, AttentionCannotFallBackOffADiscreteDevice) {
  refuse_(1u << GEMMAC_OP_ATTENTION);
  gemmac_runtime *rt = RuntimeWith({GEMMAC_TESTDEVICE_SO, GEMMAC_CPU_SO});
  ASSERT_NE(rt, nullptr);
  gemmac_module *m = nullptr;
  gemmac_session *s = nullptr;
  gemmac_status *st = Open(rt, &m, &s);
  ASSERT_NE(st, nullptr);
  const std::string msg = gemmac_status_message(st);
  EXPECT_NE(msg.find(path_), std::string::npos) << msg;
  EXPECT_NE(msg.find("Attention"), std::string::npos) << msg;
  EXPECT_NE(msg.find("its memory is not host-addressable, so the 'cpu' "
                     "fallback cannot reach the KV cache on it"),
            std::string::npos)
      << msg;
  EXPECT_EQ(s, nullptr);
  gemmac_status_free(st);
  gemmac_module_release(m);
  gemmac_runtime_release(rt);
}
#endif

} // namespace
