// What every check of the conformance suite shares: the plugin under test
// (opened with dlopen from --plugin), the reference plugin (linked in), the
// precision level the suite holds the plugin to, and small RAII holders of
// backends and plugin-allocated buffers. Set once by main() before any test
// runs and read-only afterwards.
#ifndef GEMMAC_PLUGINS_CONFORMANCE_HARNESS_H_
#define GEMMAC_PLUGINS_CONFORMANCE_HARNESS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "gemmac/plugin.h"

namespace gemmac::conformance {

enum class Precision { kF32, kBf16 };

struct Plugin {
  std::string path; // "(reference, linked in)" for the reference
  gemmac_plugin_entry_fn entry = nullptr;
  gemmac_plugin_api api{};
};

// The plugin under test and the reference; valid after main() loaded them.
const Plugin &UnderTest();
const Plugin &Reference();
Precision PrecisionLevel();

// Loads `path` (dlopen, RTLD_NOW | RTLD_LOCAL) and the reference; returns an
// empty string or what went wrong (naming the file and the step).
std::string LoadPlugins(const std::string &path, Precision precision);

// One backend instance of a plugin; destroyed with the holder.
class Backend {
public:
  explicit Backend(const Plugin &p);
  ~Backend();
  Backend(const Backend &) = delete;
  Backend &operator=(const Backend &) = delete;
  bool ok() const { return backend_ != nullptr; }
  const std::string &error() const { return error_; }
  gemmac_backend *get() const { return backend_; }
  const gemmac_plugin_api &api() const { return plugin_.api; }

private:
  const Plugin &plugin_;
  gemmac_backend *backend_ = nullptr;
  std::string error_;
};

// Memory from a backend's alloc(), as the runtime gets activations and KV
// caches; freed with the holder.
class Buffer {
public:
  Buffer() = default;
  Buffer(const Backend &b, size_t bytes);
  ~Buffer();
  Buffer(Buffer &&o) noexcept { *this = static_cast<Buffer &&>(o); }
  Buffer &operator=(Buffer &&o) noexcept;
  void *data() const { return data_; }
  size_t size() const { return bytes_; }

private:
  const Backend *backend_ = nullptr;
  void *data_ = nullptr;
  size_t bytes_ = 0;
};

// How the suite reaches a backend's memory (ABI 1.6): through copy() when
// the plugin has it (a discrete device's memory may not be host-addressable),
// weights through map_weights(), launches on a stream that Finish() waits
// for. A plugin without these gets memcpy, the host pointers and synchronous
// launches, as the runtime gives it.
class DeviceIo {
public:
  explicit DeviceIo(const Backend &b);
  ~DeviceIo();
  DeviceIo(const DeviceIo &) = delete;
  DeviceIo &operator=(const DeviceIo &) = delete;

  // Each returns "" or what failed.
  std::string Put(void *device, const void *host, size_t bytes);
  std::string Get(void *host, const void *device, size_t bytes);
  // `host` is page-aligned and outlives this object.
  std::string MapWeights(const void *host, size_t bytes, void **device);
  // Null when the plugin has no streams.
  gemmac_stream *stream() const { return stream_; }
  // Waits for the stream; "" or the error a deferred launch met.
  std::string Finish();

  static bool HasCopy(const gemmac_plugin_api &api);
  static bool HasStreams(const gemmac_plugin_api &api);
  static bool HasMapWeights(const gemmac_plugin_api &api);

private:
  const Backend &b_;
  gemmac_stream *stream_ = nullptr;
  std::vector<void *> mapped_;
};

} // namespace gemmac::conformance

#endif // GEMMAC_PLUGINS_CONFORMANCE_HARNESS_H_
