// ABI-rule checks of the plugin under test (always run, whatever it
// supports): the handshake's version refusal and size rules, the table's
// identity, backend lifetime, supports()/prepare() refusals with messages,
// launch() errors on bad operands (never a crash), and memory: absurd sizes
// fail with NULL, normal ones are aligned; ABI 1.6's copies, streams, events
// and weight mapping where the plugin has them.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "formats.h"
#include "harness.h"

namespace gemmac::conformance {
namespace {

const std::string &Path() { return UnderTest().path; }
const gemmac_plugin_api &Api() { return UnderTest().api; }

// A message a failing call left: non-empty and NUL-terminated inside the
// 512 bytes (the struct is pre-filled with 0xA5 so a missing NUL shows).
::testing::AssertionResult HasMessage(const gemmac_plugin_error &e) {
  const void *nul = std::memchr(e.message, 0, sizeof(e.message));
  if (nul == nullptr)
    return ::testing::AssertionFailure()
           << "error message is not NUL-terminated within its "
           << sizeof(e.message) << " bytes";
  if (e.message[0] == 0)
    return ::testing::AssertionFailure()
           << "error message is empty, expected what went wrong";
  return ::testing::AssertionSuccess();
}

gemmac_plugin_error PrefilledError() {
  gemmac_plugin_error e;
  std::memset(&e, 0xA5, sizeof(e));
  e.struct_size = sizeof(e);
  return e;
}

TEST(Abi, RefusesAnotherMajorVersion) {
  for (uint32_t major : {0u, uint32_t(GEMMAC_PLUGIN_ABI_MAJOR + 1), 99u}) {
    gemmac_plugin_api api{};
    EXPECT_EQ(UnderTest().entry(major, &api, sizeof(api)),
              GEMMAC_PLUGIN_UNSUPPORTED)
        << Path() << ": entry(abi_major " << major
        << ") must return GEMMAC_PLUGIN_UNSUPPORTED (2): the plugin speaks "
        << GEMMAC_PLUGIN_ABI_MAJOR;
  }
}

TEST(Abi, FillsNoMoreThanApiSize) {
  // An older caller whose table ends before create(), then one that ends
  // exactly at ours: bytes past api_size stay as they were. A plugin may
  // refuse a table too small for it, but then writes nothing either.
  for (size_t size :
       {offsetof(gemmac_plugin_api, create), offsetof(gemmac_plugin_api, alloc),
        sizeof(gemmac_plugin_api)}) {
    unsigned char buf[sizeof(gemmac_plugin_api) + 64];
    std::memset(buf, 0xA5, sizeof(buf));
    const int32_t rc =
        UnderTest().entry(GEMMAC_PLUGIN_ABI_MAJOR,
                          reinterpret_cast<gemmac_plugin_api *>(buf), size);
    for (size_t i = size; i < sizeof(buf); ++i)
      ASSERT_EQ(buf[i], 0xA5)
          << Path() << ": entry(api_size " << size << ") wrote byte " << i
          << " (returned " << rc << "), expected nothing past api_size";
    if (rc == GEMMAC_PLUGIN_OK) {
      size_t filled;
      std::memcpy(&filled, buf, sizeof(filled));
      EXPECT_LE(filled, size) << Path() << ": struct_size " << filled
                              << " exceeds api_size " << size;
    }
  }
}

TEST(Abi, TableIsSane) {
  const gemmac_plugin_api &api = Api();
  const size_t v10 = offsetof(gemmac_plugin_api, free) + sizeof(void *);
  EXPECT_GE(api.struct_size, v10)
      << Path() << ": struct_size " << api.struct_size
      << ", expected at least the ABI 1.0 table (" << v10 << " bytes)";
  EXPECT_LE(api.struct_size, sizeof(gemmac_plugin_api))
      << Path() << ": struct_size " << api.struct_size
      << " exceeds the api_size " << sizeof(gemmac_plugin_api)
      << " the suite passed";
  EXPECT_EQ(api.abi_major, uint32_t(GEMMAC_PLUGIN_ABI_MAJOR)) << Path();
  ASSERT_NE(api.name, nullptr) << Path() << ": name is NULL";
  EXPECT_GT(std::strlen(api.name), 0u) << Path() << ": name is empty";
  EXPECT_NE(api.version, nullptr) << Path() << ": version is NULL";
}

TEST(Abi, CreateWithOlderOrNoOptions) {
  // The smallest options struct a 1.x caller can pass: just num_threads.
  struct {
    gemmac_backend_options o;
    unsigned char guard[16];
  } small;
  std::memset(&small, 0xA5, sizeof(small));
  small.o.struct_size =
      offsetof(gemmac_backend_options, num_threads) + sizeof(int32_t);
  small.o.num_threads = 1;
  for (const gemmac_backend_options *opts :
       {static_cast<const gemmac_backend_options *>(&small.o),
        static_cast<const gemmac_backend_options *>(nullptr)}) {
    gemmac_backend *b = nullptr;
    gemmac_plugin_error e = PrefilledError();
    const int32_t rc = Api().create(opts, &b, &e);
    ASSERT_EQ(rc, GEMMAC_PLUGIN_OK)
        << Path() << ": create(options " << (opts ? "struct_size 12" : "NULL")
        << ") returned " << rc << ": "
        << std::string(e.message, strnlen(e.message, sizeof(e.message)));
    ASSERT_NE(b, nullptr);
    Api().destroy(b);
  }
}

TEST(Abi, CreateDestroyRepeatedly) {
  for (int i = 0; i < 16; ++i) {
    Backend b(UnderTest());
    ASSERT_TRUE(b.ok()) << "round " << i << ": " << b.error();
  }
  // Two live at once.
  Backend a(UnderTest()), b(UnderTest());
  ASSERT_TRUE(a.ok() && b.ok()) << a.error() << b.error();
  EXPECT_NE(a.get(), b.get());
}

TEST(Abi, DescribeReturnsAString) {
  if (Api().struct_size <
          offsetof(gemmac_plugin_api, describe) + sizeof(void *) ||
      Api().describe == nullptr)
    GTEST_SKIP() << "plugin has no describe() (optional, ABI 1.3)";
  Backend b(UnderTest());
  ASSERT_TRUE(b.ok()) << b.error();
  const char *d = Api().describe(b.get());
  ASSERT_NE(d, nullptr) << Path() << ": describe() returned NULL";
  EXPECT_LT(std::strlen(d), 4096u);
}

TEST(Abi, DeviceInfoIsConsistentAndFitsTheCallersStruct) {
  if (Api().struct_size <
          offsetof(gemmac_plugin_api, device_info) + sizeof(void *) ||
      Api().device_info == nullptr)
    GTEST_SKIP() << "plugin has no device_info() (optional, ABI 1.5)";
  Backend b(UnderTest());
  ASSERT_TRUE(b.ok()) << b.error();
  gemmac_device_info info;
  std::memset(&info, 0xAB, sizeof(info));
  info.struct_size = sizeof(info);
  gemmac_plugin_error err{};
  err.struct_size = sizeof(err);
  ASSERT_EQ(Api().device_info(b.get(), &info, &err), GEMMAC_PLUGIN_OK)
      << Path() << ": " << err.message;
  EXPECT_LE(info.struct_size, sizeof(info));
  EXPECT_TRUE(info.kind == GEMMAC_DEVICE_CPU ||
              info.kind == GEMMAC_DEVICE_GPU ||
              info.kind == GEMMAC_DEVICE_ACCELERATOR)
      << "kind " << info.kind;
  EXPECT_NE(std::memchr(info.name, '\0', sizeof(info.name)), nullptr)
      << "name is not NUL-terminated";
  EXPECT_LE(info.memory_available_bytes, info.memory_bytes)
      << "more memory available than there is";
  // Memory the host cannot address needs copy() (ABI 1.6, plugin.h).
  if ((info.flags & GEMMAC_DEVICE_HOST_ADDRESSABLE) == 0) {
    EXPECT_TRUE(DeviceIo::HasCopy(Api()))
        << "device_info() says alloc() memory is not host-addressable, but "
           "the plugin has no copy()";
  }
  EXPECT_EQ((info.flags & GEMMAC_DEVICE_GRAPH_MODE) != 0,
            Api().compile_graph != nullptr)
      << "the graph-mode flag and compile_graph disagree";

  // An older caller's struct (up to `flags`) gets no byte past it.
  unsigned char raw[sizeof(gemmac_device_info)];
  std::memset(raw, 0xCD, sizeof(raw));
  const size_t old_size = offsetof(gemmac_device_info, memory_bytes);
  auto *small = reinterpret_cast<gemmac_device_info *>(raw);
  small->struct_size = old_size;
  ASSERT_EQ(Api().device_info(b.get(), small, &err), GEMMAC_PLUGIN_OK);
  for (size_t i = old_size; i < sizeof(raw); ++i)
    ASSERT_EQ(raw[i], 0xCD) << "device_info wrote byte " << i
                            << " past the caller's struct_size " << old_size;
}

gemmac_op_desc Desc(int32_t op, const std::vector<int32_t> &in,
                    const std::vector<int32_t> &out) {
  gemmac_op_desc d{};
  d.struct_size = sizeof(d);
  d.op = op;
  d.attrs.struct_size = sizeof(d.attrs);
  d.attrs.eps = 1e-6f;
  d.attrs.offset = 1;
  d.num_inputs = uint32_t(in.size());
  d.input_dtypes = in.data();
  d.num_outputs = uint32_t(out.size());
  d.output_dtypes = out.data();
  return d;
}

const int32_t F = GEMMAC_DTYPE_F32;

TEST(Abi, SupportsRefusesWhatNoPluginCanTake) {
  Backend b(UnderTest());
  ASSERT_TRUE(b.ok()) << b.error();
  const std::vector<int32_t> one{F}, two{F, F}, out{F};
  for (int32_t op : {-1, int32_t(GEMMAC_OP_COUNT_), 1000}) {
    gemmac_op_desc d = Desc(op, two, out);
    EXPECT_EQ(Api().supports(b.get(), &d), 0)
        << Path() << ": supports(op " << op << ") is non-zero for an op code "
        << "outside 0.." << GEMMAC_OP_COUNT_ - 1;
  }
  struct Bad {
    const char *what;
    int32_t op;
    std::vector<int32_t> in, out;
  };
  const Bad bad[] = {
      {"linear with an i32 weight",
       GEMMAC_OP_LINEAR,
       {F, GEMMAC_DTYPE_I32},
       {F}},
      {"linear with an i8 activation",
       GEMMAC_OP_LINEAR,
       {GEMMAC_DTYPE_I8, GEMMAC_DTYPE_F32},
       {F}},
      {"add with an i32 input", GEMMAC_OP_ADD, {F, GEMMAC_DTYPE_I32}, {F}},
      {"add with an i32 output", GEMMAC_OP_ADD, {F, F}, {GEMMAC_DTYPE_I32}},
      {"rms_norm with dtype 77", GEMMAC_OP_RMS_NORM, {F, 77}, {F}},
      {"embed with f32 tokens", GEMMAC_OP_EMBED, {F, F}, {F}},
  };
  for (const Bad &x : bad) {
    gemmac_op_desc d = Desc(x.op, x.in, x.out);
    EXPECT_EQ(Api().supports(b.get(), &d), 0)
        << Path() << ": supports() is non-zero for " << x.what;
  }
}

TEST(Abi, PrepareOfAnUnsupportedDescFailsWithAMessage) {
  Backend b(UnderTest());
  ASSERT_TRUE(b.ok()) << b.error();
  const std::vector<int32_t> two{F, F}, bad_w{F, GEMMAC_DTYPE_I32}, out{F},
      none{};
  struct Case {
    const char *what;
    gemmac_op_desc d;
  };
  const Case cases[] = {
      {"an unknown op code", Desc(GEMMAC_OP_COUNT_ + 3, two, out)},
      {"linear with an i32 weight", Desc(GEMMAC_OP_LINEAR, bad_w, out)},
      {"add with no inputs", Desc(GEMMAC_OP_ADD, none, out)},
  };
  for (const Case &c : cases) {
    gemmac_kernel *k = nullptr;
    gemmac_plugin_error e = PrefilledError();
    const int32_t rc = Api().prepare(b.get(), &c.d, &k, &e);
    EXPECT_NE(rc, GEMMAC_PLUGIN_OK)
        << Path() << ": prepare() of " << c.what << " succeeded";
    if (rc == GEMMAC_PLUGIN_OK) {
      Api().release(b.get(), k);
      continue;
    }
    EXPECT_TRUE(HasMessage(e)) << Path() << ": prepare() of " << c.what;
  }
}

// An op the plugin supports, to launch with bad operands: add (f32), else
// linear (f32), else the first element-wise op it takes.
struct Prepared {
  int32_t op = -1;
  gemmac_kernel *kernel = nullptr;
};

Prepared PrepareSimpleOp(const Backend &b) {
  const std::vector<int32_t> two{F, F}, one{F}, out{F};
  for (int32_t op : {GEMMAC_OP_ADD, GEMMAC_OP_MUL, GEMMAC_OP_LINEAR}) {
    gemmac_op_desc d = Desc(op, two, out);
    if (!Api().supports(b.get(), &d))
      continue;
    gemmac_plugin_error e = PrefilledError();
    Prepared p;
    if (Api().prepare(b.get(), &d, &p.kernel, &e) == GEMMAC_PLUGIN_OK) {
      p.op = op;
      return p;
    }
  }
  return {};
}

TEST(Abi, LaunchWithBadOperandsFailsWithAMessage) {
  Backend b(UnderTest());
  ASSERT_TRUE(b.ok()) << b.error();
  Prepared p = PrepareSimpleOp(b);
  if (p.kernel == nullptr)
    GTEST_SKIP() << "plugin supports none of add, mul, linear on f32";
  // a [2, 32] and b [2, 32] (add/mul) or x [2, 32] and w [8, 32] (linear).
  const bool lin = p.op == GEMMAC_OP_LINEAR;
  const int64_t rows_b = lin ? 8 : 2;
  Buffer xa(b, 2 * 32 * 4), xb(b, rows_b * 32 * 4), y(b, 2 * 32 * 4);
  ASSERT_TRUE(xa.data() && xb.data() && y.data());
  DeviceIo io(b);
  const std::vector<uint8_t> zeros(rows_b * 32 * 4, 0);
  ASSERT_EQ(io.Put(xa.data(), zeros.data(), xa.size()), "");
  ASSERT_EQ(io.Put(xb.data(), zeros.data(), xb.size()), "");
  auto tensor = [](void *data, int64_t d0, int64_t d1) {
    gemmac_tensor t{};
    t.struct_size = sizeof(t);
    t.data = data;
    t.dtype = F;
    t.rank = 2;
    t.shape[0] = d0;
    t.shape[1] = d1;
    return t;
  };
  gemmac_exec_context ctx{};
  ctx.struct_size = sizeof(ctx);
  ctx.tokens = 2;
  const gemmac_tensor in[2] = {tensor(xa.data(), 2, 32),
                               tensor(xb.data(), rows_b, 32)};
  const gemmac_tensor out = tensor(y.data(), 2, lin ? 8 : 32);
  // The good launch first, so a failure below is the operands' doing.
  gemmac_plugin_error e = PrefilledError();
  int32_t rc = Api().launch(b.get(), p.kernel, in, 2, &out, 1, &ctx, &e);
  EXPECT_EQ(rc, GEMMAC_PLUGIN_OK)
      << Path() << ": " << OpName(p.op) << " on valid operands returned " << rc
      << ": " << std::string(e.message, strnlen(e.message, sizeof(e.message)));

  // b's inner dimension 16 instead of 32 (as a mismatched shape).
  const gemmac_tensor bad_in[2] = {tensor(xa.data(), 2, 32),
                                   tensor(xb.data(), rows_b, 16)};
  struct Case {
    const char *what;
    const gemmac_tensor *in;
    uint32_t nin, nout;
  };
  const Case cases[] = {
      {"one input fewer than prepared", in, 1, 1},
      {"no outputs", in, 2, 0},
      {"a mismatched input shape", bad_in, 2, 1},
  };
  for (const Case &c : cases) {
    e = PrefilledError();
    rc = Api().launch(b.get(), p.kernel, c.in, c.nin, &out, c.nout, &ctx, &e);
    EXPECT_NE(rc, GEMMAC_PLUGIN_OK)
        << Path() << ": launch() of " << OpName(p.op) << " with " << c.what
        << " succeeded, expected an error code";
    if (rc != GEMMAC_PLUGIN_OK) {
      EXPECT_TRUE(HasMessage(e)) << Path() << ": launch() with " << c.what;
    }
  }
  Api().release(b.get(), p.kernel);
}

TEST(Abi, AllocOfAnAbsurdSizeReturnsNull) {
  Backend b(UnderTest());
  ASSERT_TRUE(b.ok()) << b.error();
  for (size_t bytes : {size_t(1) << 62, SIZE_MAX, SIZE_MAX - 8}) {
    void *p = Api().alloc(b.get(), bytes, 64);
    EXPECT_EQ(p, nullptr) << Path() << ": alloc(" << bytes
                          << " bytes) returned non-NULL, expected NULL "
                             "(out of memory)";
    if (p)
      Api().free(b.get(), p);
  }
}

TEST(Abi, AllocRespectsAlignment) {
  Backend b(UnderTest());
  ASSERT_TRUE(b.ok()) << b.error();
  for (size_t align : {size_t(16), size_t(64), size_t(256), size_t(4096)})
    for (size_t bytes :
         {size_t(1), size_t(100), size_t(4096), size_t(1) << 20}) {
      void *p = Api().alloc(b.get(), bytes, align);
      ASSERT_NE(p, nullptr) << Path() << ": alloc(" << bytes << ", " << align
                            << ") returned NULL";
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u)
          << Path() << ": alloc(" << bytes << ", " << align << ") returned "
          << p << ", not aligned to " << align;
      const std::vector<uint8_t> fill(bytes, 0x5A);
      DeviceIo io(b);
      EXPECT_EQ(io.Put(p, fill.data(), bytes), "") << Path();
      Api().free(b.get(), p);
    }
  Api().free(b.get(), nullptr); // like free(NULL): nothing
}

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = uint8_t(seed + i * 7 + (i >> 8));
  return v;
}

// copy() in every direction, synchronous (stream NULL) and, where the plugin
// has streams, enqueued and waited for.
TEST(Abi, CopyMovesBytesInEveryDirection) {
  if (!DeviceIo::HasCopy(Api()))
    GTEST_SKIP() << "plugin has no copy() (optional unless its memory is not "
                    "host-addressable, ABI 1.6)";
  Backend b(UnderTest());
  ASSERT_TRUE(b.ok()) << b.error();
  const size_t n = 3 * 4096 + 5; // not a multiple of anything convenient
  Buffer d1(b, n), d2(b, n);
  ASSERT_TRUE(d1.data() && d2.data());
  gemmac_stream *streams[2] = {nullptr, nullptr};
  int num = 1;
  if (DeviceIo::HasStreams(Api())) {
    gemmac_plugin_error e = PrefilledError();
    ASSERT_EQ(Api().create_stream(b.get(), &streams[1], &e), GEMMAC_PLUGIN_OK)
        << Path() << ": create_stream: " << e.message;
    num = 2;
  }
  for (int s = 0; s < num; ++s) {
    const std::vector<uint8_t> in = Pattern(n, uint8_t(17 + s));
    std::vector<uint8_t> out(n, 0);
    gemmac_plugin_error e = PrefilledError();
    ASSERT_EQ(Api().copy(b.get(), d1.data(), in.data(), n,
                         GEMMAC_COPY_HOST_TO_DEVICE, streams[s], &e),
              GEMMAC_PLUGIN_OK)
        << e.message;
    ASSERT_EQ(Api().copy(b.get(), d2.data(), d1.data(), n,
                         GEMMAC_COPY_DEVICE_TO_DEVICE, streams[s], &e),
              GEMMAC_PLUGIN_OK)
        << e.message;
    ASSERT_EQ(Api().copy(b.get(), out.data(), d2.data(), n,
                         GEMMAC_COPY_DEVICE_TO_HOST, streams[s], &e),
              GEMMAC_PLUGIN_OK)
        << e.message;
    if (streams[s] != nullptr)
      ASSERT_EQ(Api().synchronize_stream(b.get(), streams[s], &e),
                GEMMAC_PLUGIN_OK)
          << e.message;
    EXPECT_EQ(out, in) << Path() << ": host -> device -> device -> host "
                       << (s ? "on a stream" : "synchronously")
                       << " did not give the bytes back";
  }
  gemmac_plugin_error e = PrefilledError();
  EXPECT_NE(Api().copy(b.get(), d1.data(), d2.data(), n, 7, nullptr, &e),
            GEMMAC_PLUGIN_OK)
      << Path() << ": copy() of kind 7 succeeded, expected an error";
  if (streams[1] != nullptr)
    Api().destroy_stream(b.get(), streams[1]);
}

// An event orders two streams: what one stream wrote before the event, the
// other reads after waiting for it; synchronize_event lets the host read.
TEST(Abi, EventsOrderStreams) {
  if (!DeviceIo::HasStreams(Api()))
    GTEST_SKIP() << "plugin has no streams (optional, ABI 1.6)";
  ASSERT_TRUE(DeviceIo::HasCopy(Api()))
      << Path() << ": streams without copy() leave nothing to order here";
  Backend b(UnderTest());
  ASSERT_TRUE(b.ok()) << b.error();
  gemmac_plugin_error e = PrefilledError();
  gemmac_stream *s1 = nullptr, *s2 = nullptr;
  gemmac_event *ev = nullptr;
  ASSERT_EQ(Api().create_stream(b.get(), &s1, &e), GEMMAC_PLUGIN_OK);
  ASSERT_EQ(Api().create_stream(b.get(), &s2, &e), GEMMAC_PLUGIN_OK);
  ASSERT_EQ(Api().create_event(b.get(), &ev, &e), GEMMAC_PLUGIN_OK);
  const size_t n = 1 << 16;
  Buffer d(b, n);
  ASSERT_NE(d.data(), nullptr);
  const std::vector<uint8_t> in = Pattern(n, 3);
  std::vector<uint8_t> out(n, 0), out2(n, 0);
  ASSERT_EQ(Api().copy(b.get(), d.data(), in.data(), n,
                       GEMMAC_COPY_HOST_TO_DEVICE, s1, &e),
            GEMMAC_PLUGIN_OK);
  ASSERT_EQ(Api().record_event(b.get(), ev, s1, &e), GEMMAC_PLUGIN_OK)
      << e.message;
  ASSERT_EQ(Api().wait_event(b.get(), s2, ev, &e), GEMMAC_PLUGIN_OK)
      << e.message;
  ASSERT_EQ(Api().copy(b.get(), out.data(), d.data(), n,
                       GEMMAC_COPY_DEVICE_TO_HOST, s2, &e),
            GEMMAC_PLUGIN_OK);
  ASSERT_EQ(Api().synchronize_stream(b.get(), s2, &e), GEMMAC_PLUGIN_OK)
      << e.message;
  EXPECT_EQ(out, in) << Path()
                     << ": stream 2 waited for an event recorded after "
                        "stream 1's copy, but read other bytes";
  ASSERT_EQ(Api().synchronize_event(b.get(), ev, &e), GEMMAC_PLUGIN_OK)
      << e.message;
  ASSERT_EQ(Api().copy(b.get(), out2.data(), d.data(), n,
                       GEMMAC_COPY_DEVICE_TO_HOST, nullptr, &e),
            GEMMAC_PLUGIN_OK);
  EXPECT_EQ(out2, in);
  Api().destroy_event(b.get(), ev);
  Api().destroy_stream(b.get(), s1);
  Api().destroy_stream(b.get(), s2);
}

// map_weights() gives an address whose bytes are the segment's (read back
// with copy() or directly), and says honestly whether it copied.
TEST(Abi, MapWeightsGivesTheSegmentsBytes) {
  if (!DeviceIo::HasMapWeights(Api()))
    GTEST_SKIP() << "plugin has no map_weights() (optional, ABI 1.6)";
  Backend b(UnderTest());
  ASSERT_TRUE(b.ok()) << b.error();
  const size_t n = 2 * 4096;
  std::unique_ptr<uint8_t, decltype(&std::free)> host(
      static_cast<uint8_t *>(std::aligned_alloc(4096, n)), &std::free);
  const std::vector<uint8_t> in = Pattern(n, 99);
  std::memcpy(host.get(), in.data(), n);
  gemmac_plugin_error e = PrefilledError();
  void *device = nullptr;
  int32_t zero_copy = -1;
  ASSERT_EQ(Api().map_weights(b.get(), host.get(), n, &device, &zero_copy, &e),
            GEMMAC_PLUGIN_OK)
      << Path() << ": " << e.message;
  ASSERT_NE(device, nullptr);
  ASSERT_TRUE(zero_copy == 0 || zero_copy == 1) << "zero_copy " << zero_copy;
  if (zero_copy == 1) {
    EXPECT_EQ(device, host.get()) << "zero-copy, yet another address";
  }
  std::vector<uint8_t> out(n, 0);
  DeviceIo io(b);
  ASSERT_EQ(io.Get(out.data(), device, n), "");
  EXPECT_EQ(out, in) << Path() << ": the mapped weights read back differ";
  Api().unmap_weights(b.get(), device);
}

} // namespace
} // namespace gemmac::conformance
