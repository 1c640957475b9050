// The plugin ABI handshake, backend creation and memory of the CPU backend.
#include <dlfcn.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "cpu_test_support.h"
#include "gemmac/cpu_plugin.h"

namespace gemmac::cpu_test {
namespace {

using AbiTest = CpuPluginTest;

// The entry of the build under test (static or from the .so).
gemmac_plugin_entry_fn Entry(void *dl) {
  if (dl == nullptr)
    return gemmac_cpu_plugin_entry;
  return reinterpret_cast<gemmac_plugin_entry_fn>(
      dlsym(dl, GEMMAC_PLUGIN_ENTRY_SYMBOL));
}

TEST_P(AbiTest, IdentifiesItself) {
  EXPECT_EQ(api_.struct_size, sizeof(gemmac_plugin_api));
  EXPECT_EQ(api_.abi_major, uint32_t(GEMMAC_PLUGIN_ABI_MAJOR));
  EXPECT_EQ(api_.abi_minor, uint32_t(GEMMAC_PLUGIN_ABI_MINOR));
  EXPECT_STREQ(api_.name, "cpu");
  EXPECT_NE(api_.version, nullptr);
  EXPECT_NE(api_.create, nullptr);
  EXPECT_NE(api_.destroy, nullptr);
  EXPECT_NE(api_.supports, nullptr);
  EXPECT_NE(api_.prepare, nullptr);
  EXPECT_NE(api_.release, nullptr);
  EXPECT_NE(api_.launch, nullptr);
  EXPECT_NE(api_.alloc, nullptr);
  EXPECT_NE(api_.free, nullptr);
  EXPECT_NE(api_.describe, nullptr);
}

// describe() (ABI 1.3): the instruction-set level the kernels run at and the
// thread count, valid until destroy.
TEST_P(AbiTest, DescribesTheLevelAndThreads) {
  gemmac_backend_options opts{};
  opts.struct_size = sizeof(opts);
  opts.num_threads = 3;
  gemmac_backend *b = nullptr;
  gemmac_plugin_error e{};
  e.struct_size = sizeof(e);
  ASSERT_EQ(api_.create(&opts, &b, &e), GEMMAC_PLUGIN_OK) << e.message;
  const std::string d = api_.describe(b);
  EXPECT_TRUE(d.rfind("scalar", 0) == 0 || d.rfind("avx2", 0) == 0 ||
              d.rfind("avx512", 0) == 0 || d.rfind("amx", 0) == 0)
      << d;
  EXPECT_NE(d.find("amx: "), std::string::npos) << d;
  EXPECT_NE(d.find(", 3 threads"), std::string::npos) << d;
  api_.destroy(b);
}

TEST_P(AbiTest, RefusesAnotherMajorVersion) {
  gemmac_plugin_entry_fn entry = Entry(dl_);
  ASSERT_NE(entry, nullptr);
  for (uint32_t major : {0u, uint32_t(GEMMAC_PLUGIN_ABI_MAJOR + 1)}) {
    gemmac_plugin_api api{};
    EXPECT_EQ(entry(major, &api, sizeof(api)), GEMMAC_PLUGIN_UNSUPPORTED)
        << "major " << major;
    EXPECT_EQ(api.struct_size, 0u);
    EXPECT_EQ(api.create, nullptr);
  }
  EXPECT_EQ(entry(GEMMAC_PLUGIN_ABI_MAJOR, nullptr, sizeof(gemmac_plugin_api)),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
}

TEST_P(AbiTest, FillsNoMoreThanTheCallersTable) {
  gemmac_plugin_entry_fn entry = Entry(dl_);
  ASSERT_NE(entry, nullptr);
  // An older caller whose table ends before create().
  const size_t small = offsetof(gemmac_plugin_api, create);
  unsigned char buf[sizeof(gemmac_plugin_api) + 16];
  std::memset(buf, 0xA5, sizeof(buf));
  ASSERT_EQ(entry(GEMMAC_PLUGIN_ABI_MAJOR,
                  reinterpret_cast<gemmac_plugin_api *>(buf), small),
            GEMMAC_PLUGIN_OK);
  size_t filled;
  std::memcpy(&filled, buf, sizeof(filled));
  EXPECT_EQ(filled, small);
  for (size_t i = small; i < sizeof(buf); ++i)
    ASSERT_EQ(buf[i], 0xA5) << "byte " << i << " written past api_size";

  // A newer caller with a larger table: the plugin fills what it knows.
  std::memset(buf, 0xA5, sizeof(buf));
  ASSERT_EQ(entry(GEMMAC_PLUGIN_ABI_MAJOR,
                  reinterpret_cast<gemmac_plugin_api *>(buf), sizeof(buf)),
            GEMMAC_PLUGIN_OK);
  std::memcpy(&filled, buf, sizeof(filled));
  EXPECT_EQ(filled, sizeof(gemmac_plugin_api));
  for (size_t i = sizeof(gemmac_plugin_api); i < sizeof(buf); ++i)
    ASSERT_EQ(buf[i], 0xA5) << "byte " << i << " written past the table";
}

TEST_P(AbiTest, SharedLibraryExportsOnlyTheEntry) {
  if (dl_ == nullptr)
    GTEST_SKIP() << "only for the shared library";
  EXPECT_NE(dlsym(dl_, "gemmac_plugin_entry"), nullptr);
  // The static entry and the kernels are hidden inside the .so.
  EXPECT_EQ(dlsym(dl_, "gemmac_cpu_plugin_entry"), nullptr);
  EXPECT_EQ(dlsym(dl_, "_ZN6gemmac3cpu6LinearEPKfllRKNS0_12WeightMatrixElPf"),
            nullptr);
}

TEST_P(AbiTest, CreateValidatesOptions) {
  gemmac_backend_options opts{};
  opts.struct_size = sizeof(opts);
  opts.num_threads = -1;
  gemmac_plugin_error e{};
  e.struct_size = sizeof(e);
  gemmac_backend *b = reinterpret_cast<gemmac_backend *>(&opts);
  EXPECT_EQ(api_.create(&opts, &b, &e), GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_EQ(b, nullptr);
  EXPECT_NE(std::string(e.message).find("num_threads"), std::string::npos)
      << e.message;

  // Null options and 0 threads both mean "all cores".
  ASSERT_EQ(api_.create(nullptr, &b, &e), GEMMAC_PLUGIN_OK) << e.message;
  api_.destroy(b);
  opts.num_threads = 0;
  ASSERT_EQ(api_.create(&opts, &b, &e), GEMMAC_PLUGIN_OK) << e.message;
  api_.destroy(b);

  // A caller struct too small to hold num_threads is refused, not read.
  opts.struct_size = offsetof(gemmac_backend_options, num_threads);
  EXPECT_EQ(api_.create(&opts, &b, &e), GEMMAC_PLUGIN_INVALID_ARGUMENT);
}

TEST_P(AbiTest, AllocAlignsAndFrees) {
  for (size_t alignment : {size_t(0), size_t(64), size_t(4096)}) {
    for (size_t bytes : {size_t(0), size_t(1), size_t(1000), size_t(1 << 20)}) {
      void *p = api_.alloc(backend_, bytes, alignment);
      ASSERT_NE(p, nullptr) << bytes << " bytes, alignment " << alignment;
      const size_t want = alignment ? alignment : 64;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % want, 0u);
      std::memset(p, 1, bytes);
      api_.free(backend_, p);
    }
  }
  EXPECT_EQ(api_.alloc(backend_, 100, 48), nullptr); // not a power of two
  api_.free(backend_, nullptr);
}

TEST_P(AbiTest, ErrorMessageStaysInsideASmallErrorStruct) {
  // An older caller's error struct with room for 8 message bytes.
  const size_t size = offsetof(gemmac_plugin_error, message) + 8;
  unsigned char buf[sizeof(gemmac_plugin_error)];
  std::memset(buf, 0xA5, sizeof(buf));
  std::memcpy(buf, &size, sizeof(size));
  gemmac_backend_options opts{};
  opts.struct_size = sizeof(opts);
  opts.num_threads = -1;
  gemmac_backend *b = nullptr;
  EXPECT_EQ(
      api_.create(&opts, &b, reinterpret_cast<gemmac_plugin_error *>(buf)),
      GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_EQ(buf[size - 1], 0) << "message not terminated";
  EXPECT_EQ(std::strlen(reinterpret_cast<char *>(buf) +
                        offsetof(gemmac_plugin_error, message)),
            7u);
  for (size_t i = size; i < sizeof(buf); ++i)
    ASSERT_EQ(buf[i], 0xA5) << "byte " << i << " written past struct_size";
}

GEMMAC_CPU_INSTANTIATE(AbiTest);

} // namespace
} // namespace gemmac::cpu_test
