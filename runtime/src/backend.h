// One created instance of a backend plugin (a gemmac_backend) and the device
// memory it hands out. A session owns one Backend; the VM prepares kernels on
// it and the KV cache and arena are allocated from it. The optional parts of
// the ABI (describe, device_info, and ABI 1.6's streams, copies and weight
// mapping) are reached through here, so the rest of the runtime never checks
// a plugin's version or table size itself.
#ifndef GEMMAC_RUNTIME_BACKEND_H_
#define GEMMAC_RUNTIME_BACKEND_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

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
    const gemmac_plugin_api &a = b->api();
    b->has_streams_ = b->Has(6, offsetof(gemmac_plugin_api, synchronize_event) +
                                    sizeof(a.synchronize_event)) &&
                      a.create_stream && a.destroy_stream &&
                      a.synchronize_stream && a.create_event &&
                      a.destroy_event && a.record_event && a.wait_event &&
                      a.synchronize_event;
    b->has_copy_ =
        b->Has(6, offsetof(gemmac_plugin_api, copy) + sizeof(a.copy)) &&
        a.copy != nullptr;
    b->has_map_weights_ = b->Has(6, offsetof(gemmac_plugin_api, unmap_weights) +
                                        sizeof(a.unmap_weights)) &&
                          a.map_weights && a.unmap_weights;
    gemmac_device_info info;
    b->host_addressable_ = !b->DeviceInfo(&info) ||
                           (info.flags & GEMMAC_DEVICE_HOST_ADDRESSABLE) != 0;
    if (!b->host_addressable_ && !b->has_copy_)
      return Status(StatusCode::kFailedPrecondition,
                    "plugin " + b->plugin_->origin +
                        ": device_info() says its memory is not "
                        "host-addressable, but it has no copy() (ABI 1.6) "
                        "to move data in and out");
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
    const bool has =
        Has(3, offsetof(gemmac_plugin_api, describe) + sizeof(a.describe)) &&
        a.describe != nullptr;
    const char *d = has ? a.describe(handle_) : nullptr;
    return d ? d : "";
  }

  // The plugin's device_info() (ABI 1.5): false when it has none or it
  // fails.
  bool DeviceInfo(gemmac_device_info *info) const {
    const gemmac_plugin_api &a = api();
    const bool has = Has(5, offsetof(gemmac_plugin_api, device_info) +
                                sizeof(a.device_info)) &&
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

  // Whether the host may read and write alloc() memory (plugin.h,
  // GEMMAC_DEVICE_HOST_ADDRESSABLE). When not, every byte goes through Copy.
  bool host_addressable() const { return host_addressable_; }
  bool has_streams() const { return has_streams_; }
  bool has_map_weights() const { return has_map_weights_; }

  // copy() (kind: gemmac_copy_kind) on `stream` (may be null), or memcpy
  // for a host-addressable device without copy().
  Status Copy(void *dst, const void *src, size_t bytes, int32_t kind,
              gemmac_stream *stream) {
    if (bytes == 0)
      return Status::Ok();
    if (!has_copy_) {
      std::memcpy(dst, src, bytes);
      return Status::Ok();
    }
    return Call("copy", [&](gemmac_plugin_error *e) {
      return api().copy(handle_, dst, src, bytes, kind, stream, e);
    });
  }
  // Zeroes device memory (the KV cache at creation).
  Status Zero(void *dst, size_t bytes) {
    if (host_addressable_) {
      std::memset(dst, 0, bytes);
      return Status::Ok();
    }
    const std::vector<uint8_t> zeros(std::min<size_t>(bytes, 1 << 20));
    for (size_t done = 0; done < bytes; done += zeros.size())
      GEMMAC_RETURN_IF_ERROR(Copy(static_cast<uint8_t *>(dst) + done,
                                  zeros.data(),
                                  std::min(zeros.size(), bytes - done),
                                  GEMMAC_COPY_HOST_TO_DEVICE, nullptr));
    return Status::Ok();
  }

  // Runs a fallible plugin call; a failure names the plugin and the call.
  template <typename F> Status Call(const char *what, F &&f) {
    gemmac_plugin_error err{};
    err.struct_size = sizeof(err);
    const int32_t rc = f(&err);
    if (rc == GEMMAC_PLUGIN_OK)
      return Status::Ok();
    return Status(
        rc == GEMMAC_PLUGIN_OUT_OF_MEMORY ? StatusCode::kResourceExhausted
                                          : StatusCode::kInternal,
        "backend '" + name() + "': " + what + " failed: " + ErrorText(err));
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
  // The table has a member of ABI 1.`minor` that ends at byte `end`.
  bool Has(uint32_t minor, size_t end) const {
    return api().abi_minor >= minor && api().struct_size >= end;
  }
  std::shared_ptr<const Plugin> plugin_;
  gemmac_backend *handle_ = nullptr;
  mutable std::string name_;
  bool has_streams_ = false, has_copy_ = false, has_map_weights_ = false;
  bool host_addressable_ = true;
};

// The session's stream and the event that ends each call on it (ABI 1.6),
// for a backend with streams; a Backend without them runs every call
// synchronously and needs none.
class Stream {
public:
  static Status Create(Backend *backend, std::unique_ptr<Stream> *out) {
    std::unique_ptr<Stream> s(new Stream(backend));
    const gemmac_plugin_api &a = backend->api();
    GEMMAC_RETURN_IF_ERROR(backend->Call("create_stream", [&](auto *e) {
      return a.create_stream(backend->handle(), &s->stream_, e);
    }));
    GEMMAC_RETURN_IF_ERROR(backend->Call("create_event", [&](auto *e) {
      return a.create_event(backend->handle(), &s->done_, e);
    }));
    *out = std::move(s);
    return Status::Ok();
  }
  ~Stream() {
    const gemmac_plugin_api &a = backend_->api();
    if (done_ != nullptr)
      a.destroy_event(backend_->handle(), done_);
    if (stream_ != nullptr)
      a.destroy_stream(backend_->handle(), stream_);
  }
  Stream(const Stream &) = delete;
  Stream &operator=(const Stream &) = delete;

  gemmac_stream *get() const { return stream_; }
  // Waits until everything enqueued so far ran: records the event at the
  // stream's end and waits for it on the host. The first error of the
  // deferred work comes back here.
  Status Finish() {
    const gemmac_plugin_api &a = backend_->api();
    GEMMAC_RETURN_IF_ERROR(backend_->Call("record_event", [&](auto *e) {
      return a.record_event(backend_->handle(), done_, stream_, e);
    }));
    return backend_->Call("synchronize_event", [&](auto *e) {
      return a.synchronize_event(backend_->handle(), done_, e);
    });
  }

private:
  explicit Stream(Backend *backend) : backend_(backend) {}
  Backend *backend_;
  gemmac_stream *stream_ = nullptr;
  gemmac_event *done_ = nullptr;
};

} // namespace gemmac

#endif // GEMMAC_RUNTIME_BACKEND_H_
