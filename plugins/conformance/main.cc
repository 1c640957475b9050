// gemmac-conformance: runs the conformance suite on one plugin.
//
//   gemmac-conformance --plugin /path/libmyplugin.so [--precision f32|bf16]
//                      [gtest flags]
//
// A plugin is "supported" when the run ends with zero failures; the cases it
// declines through supports() are listed as skipped with the reason.
// Exit status: 0 when it passes, 1 when a check fails, 2 on a usage error or
// a plugin that cannot be loaded.
#include <cstdio>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "harness.h"

namespace {

// One closing line a plugin author can read (and CI can grep).
class Summary : public ::testing::EmptyTestEventListener {
  void OnTestProgramEnd(const ::testing::UnitTest &u) override {
    const auto &p = gemmac::conformance::UnderTest();
    std::printf("gemmac-conformance: plugin \"%s\" (%s): %d passed, %d "
                "failed, %d skipped (not supported) -> %s\n",
                p.api.name ? p.api.name : "?", p.path.c_str(),
                u.successful_test_count(), u.failed_test_count(),
                u.skipped_test_count(),
                u.failed_test_count() == 0 ? "SUPPORTED (conforms)"
                                           : "NOT CONFORMING");
  }
};

int Usage(const char *argv0, const char *why) {
  std::fprintf(stderr,
               "%s: %s\nusage: %s --plugin PATH [--precision f32|bf16] "
               "[gtest flags]\n",
               argv0, why, argv0);
  return 2;
}

} // namespace

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  std::string plugin;
  std::string precision = "f32";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char *flag, std::string *out) {
      const std::string f = flag;
      if (a == f && i + 1 < argc) {
        *out = argv[++i];
        return true;
      }
      if (a.rfind(f + "=", 0) == 0) {
        *out = a.substr(f.size() + 1);
        return true;
      }
      return false;
    };
    if (!value("--plugin", &plugin) && !value("--precision", &precision))
      return Usage(argv[0], ("unknown argument " + a).c_str());
  }
  if (::testing::GTEST_FLAG(list_tests))
    return RUN_ALL_TESTS();
  if (plugin.empty())
    return Usage(argv[0], "--plugin PATH is required");
  if (precision != "f32" && precision != "bf16")
    return Usage(
        argv[0],
        ("--precision is " + precision + ", expected f32 or bf16").c_str());
  const std::string err = gemmac::conformance::LoadPlugins(
      plugin, precision == "bf16" ? gemmac::conformance::Precision::kBf16
                                  : gemmac::conformance::Precision::kF32);
  if (!err.empty()) {
    std::fprintf(stderr, "gemmac-conformance: %s\n", err.c_str());
    return 2;
  }
  ::testing::UnitTest::GetInstance()->listeners().Append(new Summary);
  return RUN_ALL_TESTS();
}
