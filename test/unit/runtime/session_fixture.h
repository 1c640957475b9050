// What the tests of sessions on test plugins share (fallback_test,
// device_test): a runtime on exactly the plugin libraries given, the tiny
// Gemma module written to a temporary file, a session on it, and the last
// logits after appending tokens.
#ifndef GEMMAC_TEST_UNIT_RUNTIME_SESSION_FIXTURE_H_
#define GEMMAC_TEST_UNIT_RUNTIME_SESSION_FIXTURE_H_

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <gtest/gtest.h>
#include <string>
#include <vector>

#include "gemmac/runtime.h"
#include "test_module.h"

namespace gemmac::test {

// A runtime on exactly these plugin libraries, in this order (no search).
inline gemmac_runtime *RuntimeWith(std::vector<const char *> plugins) {
  gemmac_runtime_options ro = {};
  ro.struct_size = sizeof(ro);
  ro.plugin_paths = plugins.data();
  ro.num_plugin_paths = plugins.size();
  ro.search_plugins = 0;
  gemmac_runtime *rt = nullptr;
  gemmac_status *st = gemmac_runtime_create(&ro, &rt);
  EXPECT_EQ(st, nullptr) << gemmac_status_message(st);
  gemmac_status_free(st);
  return rt;
}

// Logits of the same call on two backends: the same count, not empty, and
// each within `tol` * (1 + the largest |want|).
inline ::testing::AssertionResult LogitsNear(const std::vector<float> &got,
                                             const std::vector<float> &want,
                                             double tol) {
  if (got.size() != want.size() || want.empty())
    return ::testing::AssertionFailure() << got.size() << " logits, expected "
                                         << want.size() << " (and more than 0)";
  double scale = 0.0;
  for (float v : want)
    scale = std::max(scale, double(std::fabs(v)));
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(double(got[i]) - want[i]) <= tol * (1.0 + scale)))
      return ::testing::AssertionFailure()
             << "logit " << i << ": " << got[i] << ", expected " << want[i]
             << " within " << tol * (1.0 + scale);
  return ::testing::AssertionSuccess();
}

class TinySessionTest : public ::testing::Test {
protected:
  void SetUp() override {
    path_ = TempPath(::testing::UnitTest::GetInstance()
                         ->current_test_info()
                         ->test_suite_name() +
                     std::string(".gmc"));
    WriteModule(BuildTinyGemma(TinyConfig()), path_);
  }
  void TearDown() override { std::remove(path_.c_str()); }

  // Loads the module and creates a session (context 64) on the first plugin
  // of `rt`; returns its status.
  gemmac_status *Open(gemmac_runtime *rt, gemmac_module **m,
                      gemmac_session **s) {
    gemmac_status *st = gemmac_module_load(rt, path_.c_str(), m);
    if (st != nullptr)
      return st;
    gemmac_session_options so = {};
    so.struct_size = sizeof(so);
    so.context_length = 64;
    so.batch_size = 1;
    return gemmac_session_create(rt, *m, &so, s);
  }

  // The last position's logits after appending `ids`.
  static std::vector<float> Logits(gemmac_session *s,
                                   const std::vector<int32_t> &ids) {
    gemmac_status *st = gemmac_session_append_tokens(s, ids.data(), ids.size());
    EXPECT_EQ(st, nullptr) << gemmac_status_message(st);
    gemmac_status_free(st);
    size_t cols = 0;
    const float *l = gemmac_session_last_logits(s, &cols);
    return l ? std::vector<float>(l, l + cols) : std::vector<float>();
  }

  std::string path_;
};

} // namespace gemmac::test

#endif // GEMMAC_TEST_UNIT_RUNTIME_SESSION_FIXTURE_H_
