#include "harness.h"

#include <dlfcn.h>

#include <cstring>

// The reference plugin, compiled into this program under its own entry name
// (CMakeLists.txt: GEMMAC_TESTREF_ENTRY).
extern "C" int32_t gemmac_conformance_reference_entry(uint32_t abi_major,
                                                      gemmac_plugin_api *api,
                                                      size_t api_size);

namespace gemmac::conformance {
namespace {

Plugin g_under_test, g_reference;
Precision g_precision = Precision::kF32;

std::string Fill(Plugin &p) {
  std::memset(&p.api, 0, sizeof(p.api));
  const int32_t rc = p.entry(GEMMAC_PLUGIN_ABI_MAJOR, &p.api, sizeof(p.api));
  if (rc != GEMMAC_PLUGIN_OK)
    return p.path + ": " GEMMAC_PLUGIN_ENTRY_SYMBOL "(" +
           std::to_string(GEMMAC_PLUGIN_ABI_MAJOR) + ", ...) returned " +
           std::to_string(rc) + ", expected 0 (GEMMAC_PLUGIN_OK)";
  // The suite calls create..free; a table that ends before them is not one
  // this suite (or the runtime) can use.
  const size_t need = offsetof(gemmac_plugin_api, free) + sizeof(void *);
  if (p.api.struct_size < need || !p.api.create || !p.api.destroy ||
      !p.api.supports || !p.api.prepare || !p.api.release || !p.api.launch ||
      !p.api.alloc || !p.api.free)
    return p.path + ": the plugin table has struct_size " +
           std::to_string(p.api.struct_size) +
           " or a null entry among create..free, expected at least " +
           std::to_string(need) + " bytes with every ABI 1.0 entry set";
  return "";
}

} // namespace

const Plugin &UnderTest() { return g_under_test; }
const Plugin &Reference() { return g_reference; }
Precision PrecisionLevel() { return g_precision; }

std::string LoadPlugins(const std::string &path, Precision precision) {
  g_precision = precision;
  g_reference.path = "(reference, linked in)";
  g_reference.entry = gemmac_conformance_reference_entry;
  if (std::string e = Fill(g_reference); !e.empty())
    return e;
  g_under_test.path = path;
  void *dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr) {
    const char *why = dlerror();
    return path + ": dlopen failed: " + (why ? why : "unknown error");
  }
  // The handle stays open for the life of the program: backends and
  // kernels made by the tests point into it.
  g_under_test.entry = reinterpret_cast<gemmac_plugin_entry_fn>(
      dlsym(dl, GEMMAC_PLUGIN_ENTRY_SYMBOL));
  if (g_under_test.entry == nullptr)
    return path + ": no symbol " GEMMAC_PLUGIN_ENTRY_SYMBOL
                  ", expected the plugin entry (is it a gemmac plugin?)";
  return Fill(g_under_test);
}

Backend::Backend(const Plugin &p) : plugin_(p) {
  gemmac_backend_options opts{};
  opts.struct_size = sizeof(opts);
  opts.num_threads = 0;
  gemmac_plugin_error err{};
  err.struct_size = sizeof(err);
  const int32_t rc = p.api.create(&opts, &backend_, &err);
  if (rc != GEMMAC_PLUGIN_OK || backend_ == nullptr) {
    error_ = p.path + ": create() returned " + std::to_string(rc) + ": " +
             err.message;
    backend_ = nullptr;
  }
}

Backend::~Backend() {
  if (backend_)
    plugin_.api.destroy(backend_);
}

Buffer::Buffer(const Backend &b, size_t bytes) : backend_(&b), bytes_(bytes) {
  data_ = b.api().alloc(b.get(), bytes, 64);
}

Buffer::~Buffer() {
  if (data_)
    backend_->api().free(backend_->get(), data_);
}

Buffer &Buffer::operator=(Buffer &&o) noexcept {
  if (this != &o) {
    if (data_)
      backend_->api().free(backend_->get(), data_);
    backend_ = o.backend_;
    data_ = o.data_;
    bytes_ = o.bytes_;
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

bool DeviceIo::HasCopy(const gemmac_plugin_api &api) {
  return api.abi_minor >= 6 &&
         api.struct_size >=
             offsetof(gemmac_plugin_api, copy) + sizeof(api.copy) &&
         api.copy != nullptr;
}

bool DeviceIo::HasStreams(const gemmac_plugin_api &api) {
  return api.abi_minor >= 6 &&
         api.struct_size >= offsetof(gemmac_plugin_api, synchronize_event) +
                                sizeof(api.synchronize_event) &&
         api.create_stream != nullptr;
}

bool DeviceIo::HasMapWeights(const gemmac_plugin_api &api) {
  return api.abi_minor >= 6 &&
         api.struct_size >= offsetof(gemmac_plugin_api, unmap_weights) +
                                sizeof(api.unmap_weights) &&
         api.map_weights != nullptr;
}

DeviceIo::DeviceIo(const Backend &b) : b_(b) {
  if (HasStreams(b.api())) {
    gemmac_plugin_error err{};
    err.struct_size = sizeof(err);
    if (b.api().create_stream(b.get(), &stream_, &err) != GEMMAC_PLUGIN_OK)
      stream_ = nullptr; // the launches then run synchronously
  }
}

DeviceIo::~DeviceIo() {
  if (stream_ != nullptr) {
    (void)Finish();
    b_.api().destroy_stream(b_.get(), stream_);
  }
  for (void *d : mapped_)
    b_.api().unmap_weights(b_.get(), d);
}

std::string DeviceIo::Put(void *device, const void *host, size_t bytes) {
  if (!HasCopy(b_.api())) {
    std::memcpy(device, host, bytes);
    return "";
  }
  gemmac_plugin_error err{};
  err.struct_size = sizeof(err);
  const int32_t rc = b_.api().copy(b_.get(), device, host, bytes,
                                   GEMMAC_COPY_HOST_TO_DEVICE, nullptr, &err);
  return rc == GEMMAC_PLUGIN_OK ? ""
                                : "copy(host to device) returned " +
                                      std::to_string(rc) + ": " + err.message;
}

std::string DeviceIo::Get(void *host, const void *device, size_t bytes) {
  if (!HasCopy(b_.api())) {
    std::memcpy(host, device, bytes);
    return "";
  }
  gemmac_plugin_error err{};
  err.struct_size = sizeof(err);
  const int32_t rc = b_.api().copy(b_.get(), host, device, bytes,
                                   GEMMAC_COPY_DEVICE_TO_HOST, nullptr, &err);
  return rc == GEMMAC_PLUGIN_OK ? ""
                                : "copy(device to host) returned " +
                                      std::to_string(rc) + ": " + err.message;
}

std::string DeviceIo::MapWeights(const void *host, size_t bytes,
                                 void **device) {
  if (!HasMapWeights(b_.api())) {
    *device = const_cast<void *>(host);
    return "";
  }
  gemmac_plugin_error err{};
  err.struct_size = sizeof(err);
  int32_t zero_copy = -1;
  const int32_t rc =
      b_.api().map_weights(b_.get(), host, bytes, device, &zero_copy, &err);
  if (rc != GEMMAC_PLUGIN_OK)
    return "map_weights(" + std::to_string(bytes) + " bytes) returned " +
           std::to_string(rc) + ": " + err.message;
  if (*device == nullptr || (zero_copy != 0 && zero_copy != 1))
    return "map_weights returned OK with device " +
           std::string(*device ? "set" : "NULL") + " and zero_copy " +
           std::to_string(zero_copy) + ", expected an address and 0 or 1";
  if (zero_copy == 1 && *device != host)
    return "map_weights said zero-copy but returned another address than "
           "the host's";
  mapped_.push_back(*device);
  return "";
}

std::string DeviceIo::Finish() {
  if (stream_ == nullptr)
    return "";
  gemmac_plugin_error err{};
  err.struct_size = sizeof(err);
  const int32_t rc = b_.api().synchronize_stream(b_.get(), stream_, &err);
  return rc == GEMMAC_PLUGIN_OK ? ""
                                : "synchronize_stream returned " +
                                      std::to_string(rc) + ": " + err.message;
}

} // namespace gemmac::conformance
