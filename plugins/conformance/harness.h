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

} // namespace gemmac::conformance

#endif // GEMMAC_PLUGINS_CONFORMANCE_HARNESS_H_
