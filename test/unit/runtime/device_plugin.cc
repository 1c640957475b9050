// A discrete device, as the runtime sees a GPU without managed memory: the
// reference plugin's kernels behind ABI 1.6's device model, built so that
// every mistake of the runtime shows.
// - alloc() returns addresses the host cannot dereference (the real pointer
//   XOR a mask that makes it non-canonical): a runtime that touches device
//   memory itself crashes instead of passing by luck. device_info() says the
//   memory is not host-addressable.
// - map_weights() copies each segment into such memory (not zero-copy), so a
//   launch handed a pointer into the module's mapping decodes to garbage.
// - Launches and copies given a stream are deferred until the stream (or an
//   event on it) is synchronized: a runtime that reads results without
//   waiting reads stale ones.
// - supports() refuses the ops a test names (gemmac_testdevice_refuse), so
//   the CPU fallback and its border copies are exercised.
// device_test.cc checks the runtime against it. Built as
// libgemmac_testdevice.so beside the other test plugins.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "gemmac/op_checks.h"
#include "gemmac/plugin.h"

// The reference plugin, linked into this library under another entry name.
extern "C" int32_t gemmac_testdevice_ref_entry(uint32_t abi_major,
                                               gemmac_plugin_api *api,
                                               size_t api_size);

namespace {

gemmac_plugin_api g_ref;
std::atomic<uint32_t> g_refused{0}; // bit per gemmac_op
std::atomic<long> g_copies{0};      // copy() calls, for the border test

constexpr uintptr_t kMask = uintptr_t(0x5a) << 56;
void *Encode(void *p) {
  return p ? reinterpret_cast<void *>(reinterpret_cast<uintptr_t>(p) ^ kMask)
           : nullptr;
}
void *Decode(const void *p) {
  return p ? reinterpret_cast<void *>(reinterpret_cast<uintptr_t>(p) ^ kMask)
           : nullptr;
}

// Work deferred on a stream; `done` counts what ran, `queued` what was
// enqueued, so an event is a count to reach.
struct Stream {
  std::deque<std::function<int32_t(gemmac_plugin_error *)>> work;
  uint64_t queued = 0, done = 0;
  int32_t failed = GEMMAC_PLUGIN_OK;
  std::string message;
};
struct Event {
  Stream *stream = nullptr;
  uint64_t at = 0;
};

int32_t Fail(gemmac_plugin_error *e, int32_t rc, const std::string &msg) {
  if (e != nullptr && e->struct_size >= sizeof(*e))
    std::snprintf(e->message, sizeof(e->message), "testdevice: %s",
                  msg.c_str());
  return rc;
}

// Runs `s` until `until` items are done; the first failure sticks and is
// returned by every later wait, as a device's sticky error is.
int32_t Drain(Stream *s, uint64_t until, gemmac_plugin_error *e) {
  while (s->done < until && !s->work.empty()) {
    gemmac_plugin_error err{};
    err.struct_size = sizeof(err);
    const int32_t rc = s->work.front()(&err);
    s->work.pop_front();
    ++s->done;
    if (rc != GEMMAC_PLUGIN_OK && s->failed == GEMMAC_PLUGIN_OK) {
      s->failed = rc;
      s->message = err.message;
    }
  }
  if (s->failed != GEMMAC_PLUGIN_OK)
    return Fail(e, s->failed, s->message);
  return GEMMAC_PLUGIN_OK;
}

int32_t Enqueue(gemmac_stream *sp,
                std::function<int32_t(gemmac_plugin_error *)> fn,
                gemmac_plugin_error *e) {
  if (sp == nullptr)
    return fn(e);
  auto *s = reinterpret_cast<Stream *>(sp);
  s->work.push_back(std::move(fn));
  ++s->queued;
  return GEMMAC_PLUGIN_OK;
}

bool Refused(const gemmac_op_desc *d) {
  return d == nullptr || d->op < 0 || d->op >= 32 ||
         (g_refused.load() >> d->op) & 1u;
}

int32_t Supports(gemmac_backend *b, const gemmac_op_desc *d) {
  return Refused(d) ? 0 : g_ref.supports(b, d);
}

void *Alloc(gemmac_backend *b, size_t bytes, size_t alignment) {
  return Encode(g_ref.alloc(b, bytes, alignment));
}
void Free(gemmac_backend *b, void *p) { g_ref.free(b, Decode(p)); }

int32_t Launch(gemmac_backend *b, gemmac_kernel *k, const gemmac_tensor *in,
               uint32_t num_in, const gemmac_tensor *out, uint32_t num_out,
               const gemmac_exec_context *ctx, gemmac_plugin_error *error) {
  // Copies of everything: the runtime may reuse its structs on return.
  std::vector<gemmac_tensor> ins(in, in + num_in), outs(out, out + num_out);
  for (gemmac_tensor &t : ins)
    t.data = Decode(t.data);
  for (gemmac_tensor &t : outs)
    t.data = Decode(t.data);
  std::vector<gemmac_kv_cache> kv(ctx->kv, ctx->kv + ctx->num_kv);
  for (gemmac_kv_cache &c : kv) {
    c.k = Decode(c.k);
    c.v = Decode(c.v);
    c.k_scale = static_cast<float *>(Decode(c.k_scale));
    c.v_scale = static_cast<float *>(Decode(c.v_scale));
  }
  gemmac_exec_context c = *ctx;
  c.stream = nullptr;
  return Enqueue(
      ctx->stream,
      [=](gemmac_plugin_error *e) mutable {
        c.kv = kv.data();
        return g_ref.launch(b, k, ins.data(), uint32_t(ins.size()), outs.data(),
                            uint32_t(outs.size()), &c, e);
      },
      error);
}

int32_t DeviceInfo(gemmac_backend *b, gemmac_device_info *info,
                   gemmac_plugin_error *error) {
  if (info == nullptr || info->struct_size < sizeof(info->struct_size))
    return Fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "device_info: info is null or its struct_size is 0");
  // The reference's answer in a whole struct, then what fits the caller's.
  gemmac_device_info d{};
  d.struct_size = sizeof(d);
  const int32_t rc = g_ref.device_info(b, &d, error);
  if (rc != GEMMAC_PLUGIN_OK)
    return rc;
  d.kind = GEMMAC_DEVICE_GPU;
  d.flags = 0; // not host-addressable
  std::snprintf(d.name, sizeof(d.name), "%s", "test device (opaque memory)");
  gemmac_sdk::CopyWhatFits(d, info, info->struct_size);
  return GEMMAC_PLUGIN_OK;
}

int32_t CreateStream(gemmac_backend *, gemmac_stream **out,
                     gemmac_plugin_error *) {
  *out = reinterpret_cast<gemmac_stream *>(new Stream());
  return GEMMAC_PLUGIN_OK;
}
void DestroyStream(gemmac_backend *, gemmac_stream *s) {
  auto *st = reinterpret_cast<Stream *>(s);
  Drain(st, st->queued, nullptr);
  delete st;
}
int32_t SynchronizeStream(gemmac_backend *, gemmac_stream *s,
                          gemmac_plugin_error *e) {
  auto *st = reinterpret_cast<Stream *>(s);
  return Drain(st, st->queued, e);
}
int32_t CreateEvent(gemmac_backend *, gemmac_event **out,
                    gemmac_plugin_error *) {
  *out = reinterpret_cast<gemmac_event *>(new Event());
  return GEMMAC_PLUGIN_OK;
}
void DestroyEvent(gemmac_backend *, gemmac_event *e) {
  delete reinterpret_cast<Event *>(e);
}
int32_t RecordEvent(gemmac_backend *, gemmac_event *ev, gemmac_stream *s,
                    gemmac_plugin_error *e) {
  if (s == nullptr)
    return Fail(e, GEMMAC_PLUGIN_INVALID_ARGUMENT, "record_event: no stream");
  auto *event = reinterpret_cast<Event *>(ev);
  event->stream = reinterpret_cast<Stream *>(s);
  event->at = event->stream->queued;
  return GEMMAC_PLUGIN_OK;
}
int32_t WaitEvent(gemmac_backend *, gemmac_stream *s, gemmac_event *ev,
                  gemmac_plugin_error *e) {
  const Event event = *reinterpret_cast<Event *>(ev);
  if (event.stream == nullptr)
    return GEMMAC_PLUGIN_OK; // never recorded: nothing to wait for
  return Enqueue(
      s,
      [event](gemmac_plugin_error *err) {
        return Drain(event.stream, event.at, err);
      },
      e);
}
int32_t SynchronizeEvent(gemmac_backend *, gemmac_event *ev,
                         gemmac_plugin_error *e) {
  const Event *event = reinterpret_cast<Event *>(ev);
  if (event->stream == nullptr)
    return GEMMAC_PLUGIN_OK;
  return Drain(event->stream, event->at, e);
}

int32_t Copy(gemmac_backend *, void *dst, const void *src, size_t bytes,
             int32_t kind, gemmac_stream *stream, gemmac_plugin_error *e) {
  if (kind < GEMMAC_COPY_HOST_TO_DEVICE || kind > GEMMAC_COPY_DEVICE_TO_DEVICE)
    return Fail(e, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "copy: kind " + std::to_string(kind) + " is not a copy kind");
  void *d = kind == GEMMAC_COPY_DEVICE_TO_HOST ? dst : Decode(dst);
  const void *s = kind == GEMMAC_COPY_HOST_TO_DEVICE ? src : Decode(src);
  ++g_copies;
  return Enqueue(
      stream,
      [=](gemmac_plugin_error *) {
        std::memcpy(d, s, bytes);
        return GEMMAC_PLUGIN_OK;
      },
      e);
}

int32_t MapWeights(gemmac_backend *b, const void *host, size_t bytes,
                   void **device, int32_t *zero_copy, gemmac_plugin_error *e) {
  void *p = g_ref.alloc(b, bytes, 64);
  if (p == nullptr)
    return Fail(e, GEMMAC_PLUGIN_OUT_OF_MEMORY,
                "map_weights: no memory for " + std::to_string(bytes) +
                    " bytes");
  std::memcpy(p, host, bytes);
  *device = Encode(p);
  *zero_copy = 0;
  return GEMMAC_PLUGIN_OK;
}
void UnmapWeights(gemmac_backend *b, void *device) {
  g_ref.free(b, Decode(device));
}

} // namespace

// Test controls, found with dlsym.
extern "C" GEMMAC_PLUGIN_EXPORT void gemmac_testdevice_refuse(uint32_t ops) {
  g_refused = ops;
}
extern "C" GEMMAC_PLUGIN_EXPORT long gemmac_testdevice_copies() {
  return g_copies.load();
}

extern "C" GEMMAC_PLUGIN_EXPORT int32_t gemmac_plugin_entry(
    uint32_t abi_major, gemmac_plugin_api *api, size_t api_size) {
  if (abi_major != GEMMAC_PLUGIN_ABI_MAJOR)
    return GEMMAC_PLUGIN_UNSUPPORTED;
  if (api == nullptr || api_size < sizeof(api->struct_size))
    return GEMMAC_PLUGIN_INVALID_ARGUMENT;
  g_ref = gemmac_plugin_api{};
  g_ref.struct_size = sizeof(g_ref);
  int32_t rc = gemmac_testdevice_ref_entry(abi_major, &g_ref, sizeof(g_ref));
  if (rc != GEMMAC_PLUGIN_OK)
    return rc;
  gemmac_plugin_api table = g_ref;
  table.name = "testdevice";
  table.supports = Supports;
  table.launch = Launch;
  table.alloc = Alloc;
  table.free = Free;
  table.device_info = DeviceInfo;
  table.create_stream = CreateStream;
  table.destroy_stream = DestroyStream;
  table.synchronize_stream = SynchronizeStream;
  table.create_event = CreateEvent;
  table.destroy_event = DestroyEvent;
  table.record_event = RecordEvent;
  table.wait_event = WaitEvent;
  table.synchronize_event = SynchronizeEvent;
  table.copy = Copy;
  table.map_weights = MapWeights;
  table.unmap_weights = UnmapWeights;
  gemmac_sdk::CopyWhatFits(table, api, api_size);
  return GEMMAC_PLUGIN_OK;
}
