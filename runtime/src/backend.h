// One created instance of a backend plugin (a gemmac_backend) and the device
// memory it hands out. A session owns one Backend; the VM prepares kernels on
// it and the KV cache and arena are allocated from it.
#ifndef GEMMAC_RUNTIME_BACKEND_H_
#define GEMMAC_RUNTIME_BACKEND_H_

#include <cstddef>
#include <memory>
#include <string>

#include "plugin_registry.h"
#include "status.h"

namespace gemmac {

class Backend {
public:
  static Status Create(std::shared_ptr<const Plugin> plugin,
                       int32_t num_threads, std::unique_ptr<Backend> *out) {
    std::unique_ptr<Backend> b(new Backend());
    b->plugin_ = std::move(plugin);
    gemmac_backend_options opts{};
    opts.struct_size = sizeof(opts);
    opts.num_threads = num_threads;
    gemmac_plugin_error err{};
    err.struct_size = sizeof(err);
    int32_t rc = b->api().create(&opts, &b->handle_, &err);
    if (rc != GEMMAC_PLUGIN_OK || b->handle_ == nullptr) {
      b->handle_ = nullptr;
      return Status(StatusCode::kInternal,
                    "plugin " + b->plugin_->origin + ": create failed (" +
                        std::to_string(rc) + "): " + ErrorText(err));
    }
    *out = std::move(b);
    return Status::Ok();
  }
  ~Backend() {
    if (handle_ != nullptr)
      api().destroy(handle_);
  }
  Backend(const Backend &) = delete;
  Backend &operator=(const Backend &) = delete;

  const gemmac_plugin_api &api() const { return plugin_->api; }
  gemmac_backend *handle() const { return handle_; }
  const std::string &name() const { return name_ = plugin_->api.name; }
  // The plugin's describe() (ABI 1.3), or "" when it has none.
  std::string Description() const {
    const gemmac_plugin_api &a = api();
    const bool has = a.abi_minor >= 3 &&
                     a.struct_size >= offsetof(gemmac_plugin_api, describe) +
                                          sizeof(a.describe) &&
                     a.describe != nullptr;
    const char *d = has ? a.describe(handle_) : nullptr;
    return d ? d : "";
  }

  // The plugin's device_info() (ABI 1.5): false when it has none or it
  // fails.
  bool DeviceInfo(gemmac_device_info *info) const {
    const gemmac_plugin_api &a = api();
    const bool has = a.abi_minor >= 5 &&
                     a.struct_size >= offsetof(gemmac_plugin_api, device_info) +
                                          sizeof(a.device_info) &&
                     a.device_info != nullptr;
    if (!has)
      return false;
    *info = gemmac_device_info{};
    info->struct_size = sizeof(*info);
    gemmac_plugin_error err{};
    err.struct_size = sizeof(err);
    return a.device_info(handle_, info, &err) == GEMMAC_PLUGIN_OK;
  }

  // nullptr when the device is out of memory.
  void *Alloc(size_t bytes) { return api().alloc(handle_, bytes, 64); }
  void Free(void *p) {
    if (p != nullptr)
      api().free(handle_, p);
  }

  // A plugin's message, bounded even if it forgot the terminator.
  static std::string ErrorText(const gemmac_plugin_error &err) {
    size_t n = 0;
    while (n < sizeof(err.message) && err.message[n] != '\0')
      ++n;
    return n ? std::string(err.message, n) : std::string("(no message)");
  }

private:
  Backend() = default;
  std::shared_ptr<const Plugin> plugin_;
  gemmac_backend *handle_ = nullptr;
  mutable std::string name_;
};

} // namespace gemmac

#endif // GEMMAC_RUNTIME_BACKEND_H_
