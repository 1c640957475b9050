// The CUDA backend plugin ("cuda", plugin ABI 1.6 kernel mode): the ABI table,
// device and memory management, and each op's launch composed from kernels.h.
// The same file is the ROCm plugin ("rocm") when built as HIP (backends/rocm):
// names and messages come from gpu_compat.h (GEMMAC_GPU_PLUGIN,
// GEMMAC_GPU_API).
//
// Memory (ABI 1.x): alloc() returns managed memory, so the runtime's CPU
// fallback can read the arena and KV caches in place. The runtime hands each
// weight segment to map_weights() (ABI 1.6), which uploads it once to device
// memory. Host weight pointers (a caller without map_weights) are uploaded
// once and cached per backend (only when they lie in a read-only file
// mapping: other host memory, e.g. a test's heap buffer, can be freed and
// reused at the same address, so it is copied per launch instead). Any other
// operand not device-accessible is staged through a temporary device buffer.
// Every launch ends with a stream synchronize: the runtime reads outputs on
// the host right after.
#include <algorithm>
#include <cinttypes>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "gemmac/op_checks.h"
#include "gemmac/plugin.h"
#include "gpu_compat.h"
#include "kernels.h"

namespace gemmac_cuda {

using namespace gemmac_sdk;
namespace {

struct CachedWeight {
  void *device = nullptr;
  size_t bytes = 0;
  unsigned char head[64], tail[64]; // a cheap guard against a remapped file
};

struct Backend {
  int device = 0;
  gpuStream_t stream = nullptr;
  std::string description;
  std::mutex mu; // alloc/free and the weight cache may be used concurrently
  std::unordered_map<void *, void *> allocations; // aligned -> base
  std::unordered_map<const void *, CachedWeight> weights;
};

struct Kernel {
  int32_t op;
  gemmac_op_attrs a;
};

// The per-launch state: temporaries to free and outputs to copy back.
struct LaunchScope {
  Backend &b;
  gemmac_plugin_error *err;
  std::vector<void *> temps;
  struct CopyBack {
    void *host;
    const void *device;
    size_t bytes;
  };
  std::vector<CopyBack> copy_back;
  ~LaunchScope() {
    for (void *p : temps)
      (void)gpuFree(p);
  }
  int32_t Check(gpuError_t e, const char *what) {
    if (e == gpuSuccess)
      return GEMMAC_PLUGIN_OK;
    return Fail(err, GEMMAC_PLUGIN_INTERNAL,
                GEMMAC_GPU_PLUGIN ": %s failed: %s", what,
                gpuGetErrorString(e));
  }
  // A device buffer of `bytes` freed at the end of the launch.
  int32_t Temp(size_t bytes, void **out) {
    void *p = nullptr;
    if (int32_t rc =
            Check(gpuMalloc(&p, bytes ? bytes : 16), GEMMAC_GPU_API "Malloc");
        rc != GEMMAC_PLUGIN_OK)
      return rc;
    temps.push_back(p);
    *out = p;
    return GEMMAC_PLUGIN_OK;
  }
};

bool DeviceAccessible(const void *p, const void **dev) {
  gpuPointerAttributes attr;
  if (gpuPointerGetAttributes(&attr, p) != gpuSuccess) {
    (void)gpuGetLastError(); // clear the non-sticky error
    return false;
  }
  if (gpuPointerIsDeviceOrManaged(attr)) {
    *dev = p;
    return true;
  }
  if (gpuPointerIsHost(attr) && attr.devicePointer != nullptr) {
    *dev = attr.devicePointer; // registered / pinned host memory
    return true;
  }
  return false;
}

// True when [p, p + bytes) lies in one read-only, file-backed mapping (a
// module mapped with PROT_READ): its contents cannot change under us.
bool InReadOnlyFileMapping(const void *p, size_t bytes) {
  FILE *f = std::fopen("/proc/self/maps", "r");
  if (f == nullptr)
    return false;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(p), hi = lo + bytes;
  char line[512];
  bool found = false;
  while (!found && std::fgets(line, sizeof(line), f)) {
    uintptr_t start, end;
    char perms[8];
    unsigned long long offset, inode;
    char dev[32];
    if (std::sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %llx %31s %llu",
                    &start, &end, perms, &offset, dev, &inode) != 6)
      continue;
    if (lo >= start && hi <= end)
      found = perms[1] == '-' && inode != 0;
  }
  std::fclose(f);
  return found;
}

size_t TensorBytes(const gemmac_tensor &t) {
  if (IsQuant(t.dtype) && t.rank == 2)
    return size_t(gemmac_weight_bytes(t.dtype, t.shape[0], t.shape[1]));
  int64_t n = 1;
  for (int i = 0; i < t.rank; ++i)
    n *= t.shape[i];
  const int64_t elem =
      t.dtype == GEMMAC_DTYPE_BF16 || t.dtype == GEMMAC_DTYPE_F16 ? 2
      : t.dtype == GEMMAC_DTYPE_I8                                ? 1
                                                                  : 4;
  return size_t(n * elem);
}

// A device pointer for input/weight `t`: in place when device-accessible,
// from the weight cache, or staged for this launch.
int32_t ResolveInput(LaunchScope &s, const gemmac_tensor &t, bool weight,
                     const void **out) {
  if (DeviceAccessible(t.data, out))
    return GEMMAC_PLUGIN_OK;
  const size_t bytes = TensorBytes(t);
  if (weight) {
    std::lock_guard<std::mutex> lock(s.b.mu);
    auto it = s.b.weights.find(t.data);
    if (it != s.b.weights.end()) {
      const CachedWeight &c = it->second;
      const size_t n = bytes < 64 ? bytes : 64;
      const auto *h = static_cast<const unsigned char *>(t.data);
      if (c.bytes == bytes && std::memcmp(c.head, h, n) == 0 &&
          std::memcmp(c.tail, h + bytes - n, n) == 0) {
        *out = c.device;
        return GEMMAC_PLUGIN_OK;
      }
      (void)gpuFree(c.device); // the mapping changed: upload again below
      s.b.weights.erase(it);
    }
    if (InReadOnlyFileMapping(t.data, bytes)) {
      CachedWeight c;
      c.bytes = bytes;
      if (int32_t rc = s.Check(gpuMalloc(&c.device, bytes ? bytes : 16),
                               GEMMAC_GPU_API "Malloc (weight cache)");
          rc != GEMMAC_PLUGIN_OK)
        return rc;
      if (int32_t rc =
              s.Check(gpuMemcpy(c.device, t.data, bytes, gpuMemcpyDefault),
                      GEMMAC_GPU_API "Memcpy (weight upload)");
          rc != GEMMAC_PLUGIN_OK) {
        (void)gpuFree(c.device);
        return rc;
      }
      const size_t n = bytes < 64 ? bytes : 64;
      const auto *h = static_cast<const unsigned char *>(t.data);
      std::memcpy(c.head, h, n);
      std::memcpy(c.tail, h + bytes - n, n);
      s.b.weights[t.data] = c;
      *out = c.device;
      return GEMMAC_PLUGIN_OK;
    }
  }
  void *p = nullptr;
  if (int32_t rc = s.Temp(bytes, &p); rc != GEMMAC_PLUGIN_OK)
    return rc;
  if (int32_t rc = s.Check(
          gpuMemcpyAsync(p, t.data, bytes, gpuMemcpyDefault, s.b.stream),
          GEMMAC_GPU_API "MemcpyAsync (stage input)");
      rc != GEMMAC_PLUGIN_OK)
    return rc;
  *out = p;
  return GEMMAC_PLUGIN_OK;
}

int32_t ResolveOutput(LaunchScope &s, const gemmac_tensor &t, float **out) {
  const void *dev = nullptr;
  if (DeviceAccessible(t.data, &dev)) {
    *out = static_cast<float *>(const_cast<void *>(dev));
    return GEMMAC_PLUGIN_OK;
  }
  void *p = nullptr;
  const size_t bytes = TensorBytes(t);
  if (int32_t rc = s.Temp(bytes, &p); rc != GEMMAC_PLUGIN_OK)
    return rc;
  s.copy_back.push_back({t.data, p, bytes});
  *out = static_cast<float *>(p);
  return GEMMAC_PLUGIN_OK;
}

Weight W(const gemmac_tensor &t, const void *dev) {
  Weight w;
  w.data = dev;
  w.dtype = t.dtype;
  w.rows = t.rank == 2 ? t.shape[0] : 1;
  w.cols = t.rank == 2 ? t.shape[1] : t.shape[0];
  return w;
}

// ---- the ABI table ---------------------------------------------------------

int32_t Create(const gemmac_backend_options *, gemmac_backend **out,
               gemmac_plugin_error *err) {
  if (out == nullptr)
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                GEMMAC_GPU_PLUGIN
                ": create: out is null, expected a pointer to fill");
  *out = nullptr;
  int count = 0;
  gpuError_t e = gpuGetDeviceCount(&count);
  if (e != gpuSuccess || count == 0) {
    (void)gpuGetLastError();
    return Fail(err, GEMMAC_PLUGIN_UNSUPPORTED,
                GEMMAC_GPU_PLUGIN ": no " GEMMAC_GPU_KIND
                                  " device (" GEMMAC_GPU_API
                                  "GetDeviceCount: %s, %d devices)",
                e == gpuSuccess ? "ok" : gpuGetErrorString(e), count);
  }
  gpuDeviceProp prop;
  if ((e = gpuSetDevice(0)) != gpuSuccess ||
      (e = gpuGetDeviceProperties(&prop, 0)) != gpuSuccess)
    return Fail(err, GEMMAC_PLUGIN_UNSUPPORTED,
                GEMMAC_GPU_PLUGIN ": device 0 unusable (" GEMMAC_GPU_API
                                  "SetDevice/" GEMMAC_GPU_API
                                  "GetDeviceProperties: %s)",
                gpuGetErrorString(e));
  auto *b = new (std::nothrow) Backend();
  if (b == nullptr)
    return Fail(err, GEMMAC_PLUGIN_OUT_OF_MEMORY,
                GEMMAC_GPU_PLUGIN ": create: out of memory");
  if ((e = gpuStreamCreateWithFlags(&b->stream, gpuStreamNonBlocking)) !=
      gpuSuccess) {
    delete b;
    return Fail(err, GEMMAC_PLUGIN_INTERNAL,
                GEMMAC_GPU_PLUGIN ": " GEMMAC_GPU_API
                                  "StreamCreateWithFlags failed: %s",
                gpuGetErrorString(e));
  }
  char line[640]; // a device name and an arch name of up to 256 each
#if defined(GEMMAC_GPU_HIP)
  // An AMD device names its ISA (e.g. "gfx90a:sramecc+:xnack-"), not an SM.
  std::snprintf(line, sizeof(line), "%s, %s, %.1f GiB, %d CUs", prop.name,
                prop.gcnArchName,
                double(prop.totalGlobalMem) / (1024.0 * 1024 * 1024),
                prop.multiProcessorCount);
#else
  std::snprintf(line, sizeof(line), "%s, sm_%d%d, %.1f GiB, %d SMs", prop.name,
                prop.major, prop.minor,
                double(prop.totalGlobalMem) / (1024.0 * 1024 * 1024),
                prop.multiProcessorCount);
#endif
  b->description = line;
  *out = reinterpret_cast<gemmac_backend *>(b);
  return GEMMAC_PLUGIN_OK;
}

void Destroy(gemmac_backend *bp) {
  auto *b = reinterpret_cast<Backend *>(bp);
  if (b == nullptr)
    return;
  (void)gpuSetDevice(b->device);
  (void)gpuStreamSynchronize(b->stream);
  for (auto &w : b->weights)
    (void)gpuFree(w.second.device);
  for (auto &a : b->allocations)
    (void)gpuFree(a.second);
  (void)gpuStreamDestroy(b->stream);
  delete b;
}

int32_t Supports(gemmac_backend *, const gemmac_op_desc *d) {
  if (CheckDesc(GEMMAC_GPU_PLUGIN, d, nullptr) != GEMMAC_PLUGIN_OK)
    return 0;
  // The attention kernel keeps a head in registers of one warp.
  if (d->op == GEMMAC_OP_ATTENTION && d->attrs.head_dim > kMaxHeadDim)
    return 0;
  return 1;
}

int32_t Prepare(gemmac_backend *b, const gemmac_op_desc *d, gemmac_kernel **out,
                gemmac_plugin_error *err) {
  for (uint32_t i = 0; d && d->input_dtypes && i < d->num_inputs; ++i)
    if (d->input_dtypes[i] == GEMMAC_DTYPE_NONE && !IsOptional(d->op, i))
      return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  GEMMAC_GPU_PLUGIN
                  ": prepare: %s input %u has GEMMAC_DTYPE_NONE, expected "
                  "a dtype (the slot is not optional)",
                  OpName(d->op), i);
  if (int32_t rc = CheckDesc(GEMMAC_GPU_PLUGIN, d, err); rc != GEMMAC_PLUGIN_OK)
    return rc;
  if (!Supports(b, d))
    return Fail(err, GEMMAC_PLUGIN_UNSUPPORTED,
                GEMMAC_GPU_PLUGIN
                ": %s with head_dim %d is not supported, expected at "
                "most %d",
                OpName(d->op), d->attrs.head_dim, kMaxHeadDim);
  auto *k = new (std::nothrow) Kernel{d->op, d->attrs};
  if (k == nullptr)
    return Fail(err, GEMMAC_PLUGIN_OUT_OF_MEMORY,
                GEMMAC_GPU_PLUGIN ": prepare: out of memory");
  *out = reinterpret_cast<gemmac_kernel *>(k);
  return GEMMAC_PLUGIN_OK;
}

void Release(gemmac_backend *, gemmac_kernel *k) {
  delete reinterpret_cast<Kernel *>(k);
}

void *Alloc(gemmac_backend *bp, size_t bytes, size_t alignment) {
  auto *b = reinterpret_cast<Backend *>(bp);
  if (b == nullptr || (alignment & (alignment - 1)))
    return nullptr;
  if (alignment < 256)
    alignment = 256; // what cudaMallocManaged guarantees anyway
  // A request near SIZE_MAX must fail, not wrap around; anything past 2^48
  // is more than any device's memory.
  if (bytes > (size_t(1) << 48) || bytes > SIZE_MAX - alignment)
    return nullptr;
  (void)gpuSetDevice(b->device);
  void *base = nullptr;
  const size_t total = (bytes ? bytes : 1) + alignment;
  if (gpuMallocManaged(&base, total, gpuMemAttachGlobal) != gpuSuccess) {
    (void)gpuGetLastError();
    return nullptr;
  }
  uintptr_t at = (reinterpret_cast<uintptr_t>(base) + alignment - 1) /
                 alignment * alignment;
  void *p = reinterpret_cast<void *>(at);
  std::lock_guard<std::mutex> lock(b->mu);
  b->allocations[p] = base;
  return p;
}

void Free(gemmac_backend *bp, void *p) {
  auto *b = reinterpret_cast<Backend *>(bp);
  if (b == nullptr || p == nullptr)
    return;
  std::lock_guard<std::mutex> lock(b->mu);
  auto it = b->allocations.find(p);
  if (it == b->allocations.end())
    return;
  (void)gpuSetDevice(b->device);
  (void)gpuFree(it->second);
  b->allocations.erase(it);
}

const char *Describe(gemmac_backend *bp) {
  auto *b = reinterpret_cast<Backend *>(bp);
  return b ? b->description.c_str() : GEMMAC_GPU_PLUGIN;
}

// ABI 1.5: the GPU and its free memory now (alloc() is managed memory,
// which the host can address).
int32_t DeviceInfo(gemmac_backend *bp, gemmac_device_info *info,
                   gemmac_plugin_error *err) {
  auto *b = reinterpret_cast<Backend *>(bp);
  if (b == nullptr || info == nullptr ||
      info->struct_size < sizeof(info->struct_size))
    return FailAs(GEMMAC_GPU_PLUGIN, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "device_info: backend or info is null, or info's "
                  "struct_size is 0");
  gemmac_device_info d{};
  d.kind = GEMMAC_DEVICE_GPU;
  d.flags = GEMMAC_DEVICE_HOST_ADDRESSABLE;
  size_t free_bytes = 0, total_bytes = 0;
  (void)gpuSetDevice(b->device);
  const gpuError_t e = gpuMemGetInfo(&free_bytes, &total_bytes);
  if (e != gpuSuccess)
    return FailAs(GEMMAC_GPU_PLUGIN, err, GEMMAC_PLUGIN_INTERNAL,
                  "device_info: " GEMMAC_GPU_API "MemGetInfo: %s",
                  gpuGetErrorString(e));
  d.memory_bytes = total_bytes;
  d.memory_available_bytes = free_bytes;
  std::snprintf(d.name, sizeof(d.name), "%s", b->description.c_str());
  gemmac_sdk::CopyWhatFits(d, info, info->struct_size);
  return GEMMAC_PLUGIN_OK;
}

// ABI 1.6: copies through the runtime API (cudaMemcpyDefault: unified
// addressing tells the direction), synchronous on the plugin's stream; this
// plugin offers no streams of its own yet, since its launches stage inputs in
// temporaries they free before returning.
int32_t Copy(gemmac_backend *bp, void *dst, const void *src, size_t bytes,
             int32_t kind, gemmac_stream *, gemmac_plugin_error *err) {
  auto *b = reinterpret_cast<Backend *>(bp);
  if (b == nullptr || kind < GEMMAC_COPY_HOST_TO_DEVICE ||
      kind > GEMMAC_COPY_DEVICE_TO_DEVICE || (bytes && (!dst || !src)))
    return FailAs(GEMMAC_GPU_PLUGIN, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "copy: kind %d (expected 0..2) or a null pointer for %zu "
                  "bytes",
                  kind, bytes);
  if (bytes == 0)
    return GEMMAC_PLUGIN_OK;
  (void)gpuSetDevice(b->device);
  gpuError_t e = gpuMemcpyAsync(dst, src, bytes, gpuMemcpyDefault, b->stream);
  if (e == gpuSuccess)
    e = gpuStreamSynchronize(b->stream);
  if (e != gpuSuccess)
    return FailAs(GEMMAC_GPU_PLUGIN, err, GEMMAC_PLUGIN_INTERNAL,
                  "copy of %zu bytes: " GEMMAC_GPU_API "MemcpyAsync: %s", bytes,
                  gpuGetErrorString(e));
  return GEMMAC_PLUGIN_OK;
}

// ABI 1.6: each weight segment is uploaded once, when the session starts,
// into device memory (HBM bandwidth for decode, not PCIe); launches then
// find its tensors device-accessible and read them in place.
int32_t MapWeights(gemmac_backend *bp, const void *host, size_t bytes,
                   void **device, int32_t *zero_copy,
                   gemmac_plugin_error *err) {
  auto *b = reinterpret_cast<Backend *>(bp);
  if (b == nullptr || host == nullptr || device == nullptr ||
      zero_copy == nullptr)
    return FailAs(GEMMAC_GPU_PLUGIN, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "map_weights: a null argument");
  (void)gpuSetDevice(b->device);
  void *d = nullptr;
  gpuError_t e = gpuMalloc(&d, bytes ? bytes : 16);
  if (e != gpuSuccess) {
    (void)gpuGetLastError();
    return FailAs(GEMMAC_GPU_PLUGIN, err, GEMMAC_PLUGIN_OUT_OF_MEMORY,
                  "map_weights: " GEMMAC_GPU_API "Malloc of %zu bytes: %s",
                  bytes, gpuGetErrorString(e));
  }
  e = gpuMemcpy(d, host, bytes, gpuMemcpyDefault);
  if (e != gpuSuccess) {
    (void)gpuFree(d);
    return FailAs(GEMMAC_GPU_PLUGIN, err, GEMMAC_PLUGIN_INTERNAL,
                  "map_weights: " GEMMAC_GPU_API "Memcpy of %zu bytes: %s",
                  bytes, gpuGetErrorString(e));
  }
  *device = d;
  *zero_copy = 0;
  return GEMMAC_PLUGIN_OK;
}

void UnmapWeights(gemmac_backend *bp, void *device) {
  auto *b = reinterpret_cast<Backend *>(bp);
  if (b == nullptr || device == nullptr)
    return;
  (void)gpuSetDevice(b->device);
  (void)gpuFree(device);
}

// ---- launch ----------------------------------------------------------------

#define GEMMAC_TRY(expr)                                                       \
  do {                                                                         \
    if (int32_t rc_ = (expr); rc_ != GEMMAC_PLUGIN_OK)                         \
      return rc_;                                                              \
  } while (0)

int32_t RunOp(LaunchScope &s, const Kernel &k, const gemmac_tensor *in,
              uint32_t num_in, const gemmac_tensor *out, uint32_t num_out,
              const gemmac_exec_context *ctx) {
  const gemmac_op_attrs &a = k.a;
  gpuStream_t st = s.b.stream;
  const int64_t T = ctx->tokens;
  const void *dev_in[7] = {};
  for (uint32_t i = 0; i < num_in; ++i)
    if (in[i].dtype != GEMMAC_DTYPE_NONE)
      GEMMAC_TRY(ResolveInput(s, in[i], IsWeightSlot(k.op, i), &dev_in[i]));
  float *y[3] = {};
  for (uint32_t i = 0; i < num_out; ++i)
    GEMMAC_TRY(ResolveOutput(s, out[i], &y[i]));
  auto x0 = static_cast<const float *>(dev_in[0]);
  const char *name = OpName(k.op);
  switch (k.op) {
  case GEMMAC_OP_EMBED: {
    // Token ids are checked on the host: an id outside [0, V) is an error.
    // Read from the caller's pointer (host or managed), not a staged copy
    // still in flight on our stream.
    std::vector<int32_t> ids(size_t(T > 0 ? T : 0));
    if (T > 0)
      GEMMAC_TRY(s.Check(gpuMemcpy(ids.data(), in[0].data, sizeof(int32_t) * T,
                                   gpuMemcpyDefault),
                         GEMMAC_GPU_API "Memcpy (embed token ids)"));
    for (int64_t t = 0; t < T; ++t)
      if (ids[t] < 0 || ids[t] >= in[1].shape[0])
        return Fail(s.err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                    GEMMAC_GPU_PLUGIN
                    ": embed token %lld is id %d, expected 0..%lld",
                    (long long)t, ids[t], (long long)in[1].shape[0] - 1);
    return s.Check(Embed(static_cast<const int32_t *>(dev_in[0]), T,
                         W(in[1], dev_in[1]), a.scale, y[0], st),
                   "embed kernel");
  }
  case GEMMAC_OP_RMS_NORM:
    return s.Check(RmsNorm(x0, T, in[0].shape[1], W(in[1], dev_in[1]), a.eps,
                           a.offset, y[0], st),
                   "rms_norm kernel");
  case GEMMAC_OP_LINEAR:
  case GEMMAC_OP_LM_HEAD:
    return s.Check(Matmul(x0, T, W(in[1], dev_in[1]),
                          k.op == GEMMAC_OP_LINEAR ? in[1].shape[0] : a.rows,
                          y[0], st),
                   "matmul kernel");
  case GEMMAC_OP_ROPE:
    return s.Check(Rope(x0, T, in[0].shape[1], a.head_dim, a.theta,
                        a.rope_scale, ctx->past, y[0], st),
                   "rope kernel");
  case GEMMAC_OP_ATTENTION: {
    if (a.layer < 0 || uint32_t(a.layer) >= ctx->num_kv || ctx->kv == nullptr)
      return Fail(s.err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  GEMMAC_GPU_PLUGIN
                  ": attention attribute layer is %d, expected 0..%u (the "
                  "context's KV caches)",
                  a.layer, ctx->num_kv ? ctx->num_kv - 1 : 0);
    const gemmac_kv_cache &c = ctx->kv[a.layer];
    const bool i8 = c.dtype == GEMMAC_DTYPE_I8;
    if (!i8 && c.dtype != GEMMAC_DTYPE_F32)
      return Fail(s.err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  GEMMAC_GPU_PLUGIN
                  ": attention KV cache %d has dtype %d, expected f32 (0) "
                  "or i8 (4)",
                  a.layer, c.dtype);
    if (i8 &&
        (c.struct_size < offsetof(gemmac_kv_cache, v_scale) + sizeof(float *) ||
         c.k_scale == nullptr || c.v_scale == nullptr))
      return Fail(s.err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  GEMMAC_GPU_PLUGIN
                  ": attention KV cache %d is i8 without k_scale/v_scale, "
                  "expected both",
                  a.layer);
    if (c.num_kv_heads != a.num_kv_heads || c.head_dim != a.head_dim ||
        c.capacity <= 0)
      return Fail(s.err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  GEMMAC_GPU_PLUGIN
                  ": attention KV cache %d is [%d, %d, %d], expected "
                  "[capacity > 0, %d, %d]",
                  a.layer, c.capacity, c.num_kv_heads, c.head_dim,
                  a.num_kv_heads, a.head_dim);
    const int64_t p = ctx->past + T - 1;
    int64_t lo = a.window > 0 ? p - a.window + 1 : 0;
    if (lo < 0)
      lo = 0;
    if (T > 0 && p - lo + 1 > c.capacity)
      return Fail(s.err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  GEMMAC_GPU_PLUGIN
                  ": attention sees %lld keys at position %lld, expected "
                  "at most the cache capacity %d",
                  (long long)(p - lo + 1), (long long)p, c.capacity);
    KvArgs kv;
    const void *ptrs[4] = {c.k, c.v, c.k_scale, c.v_scale};
    const void *dev[4] = {};
    for (int i = 0; i < (i8 ? 4 : 2); ++i)
      if (!DeviceAccessible(ptrs[i], &dev[i]))
        return Fail(s.err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                    GEMMAC_GPU_PLUGIN
                    ": attention KV cache %d %s is not device-accessible, "
                    "expected memory from this plugin's alloc()",
                    a.layer,
                    i == 0   ? "k"
                    : i == 1 ? "v"
                             : "scales");
    kv.k = const_cast<void *>(dev[0]);
    kv.v = const_cast<void *>(dev[1]);
    kv.k_scale = static_cast<float *>(const_cast<void *>(dev[2]));
    kv.v_scale = static_cast<float *>(const_cast<void *>(dev[3]));
    kv.i8 = i8;
    kv.capacity = c.capacity;
    kv.kv_heads = c.num_kv_heads;
    kv.head_dim = c.head_dim;
    GEMMAC_TRY(s.Check(KvWrite(static_cast<const float *>(dev_in[1]),
                               static_cast<const float *>(dev_in[2]), T,
                               ctx->past, kv, st),
                       "kv write kernel"));
    // Flash-decoding's partial softmax states, when the call splits keys.
    float *workspace = nullptr;
    if (const int64_t n = AttentionWorkspaceFloats(T, ctx->past, a.num_heads,
                                                   a.window, c.head_dim)) {
      void *p = nullptr;
      GEMMAC_TRY(s.Temp(size_t(n) * sizeof(float), &p));
      workspace = static_cast<float *>(p);
    }
    return s.Check(Attention(x0, T, ctx->past, a.num_heads, a.scale, a.window,
                             a.softcap, kv, workspace, y[0], st),
                   "attention kernel");
  }
  case GEMMAC_OP_GELU_TANH:
  case GEMMAC_OP_MUL:
  case GEMMAC_OP_ADD:
  case GEMMAC_OP_SOFTCAP:
  case GEMMAC_OP_SCALE: {
    int64_t n = 1;
    for (int i = 0; i < out[0].rank; ++i)
      n *= out[0].shape[i];
    const Eltwise op = k.op == GEMMAC_OP_GELU_TANH ? Eltwise::kGelu
                       : k.op == GEMMAC_OP_MUL     ? Eltwise::kMul
                       : k.op == GEMMAC_OP_ADD     ? Eltwise::kAdd
                       : k.op == GEMMAC_OP_SOFTCAP ? Eltwise::kSoftcap
                                                   : Eltwise::kScale;
    const float attr = k.op == GEMMAC_OP_SOFTCAP ? a.softcap : a.scale;
    return s.Check(Elementwise(op, x0, static_cast<const float *>(dev_in[1]),
                               attr, n, y[0], st),
                   "elementwise kernel");
  }
  case GEMMAC_OP_ADD_RMS_NORM: {
    const int64_t N = in[0].shape[1];
    GEMMAC_TRY(s.Check(Elementwise(Eltwise::kAdd, x0,
                                   static_cast<const float *>(dev_in[1]), 0,
                                   T * N, y[0], st),
                       "add kernel"));
    return s.Check(
        RmsNorm(y[0], T, N, W(in[2], dev_in[2]), a.eps, a.offset, y[1], st),
        "rms_norm kernel");
  }
  case GEMMAC_OP_QKV_PROJ: {
    const int64_t K = in[0].shape[1];
    const float *x = x0;
    if (in[1].dtype != GEMMAC_DTYPE_NONE) {
      void *xn = nullptr;
      GEMMAC_TRY(s.Temp(sizeof(float) * T * K, &xn));
      GEMMAC_TRY(s.Check(RmsNorm(x0, T, K, W(in[1], dev_in[1]), a.eps, a.offset,
                                 static_cast<float *>(xn), st),
                         "rms_norm kernel"));
      x = static_cast<const float *>(xn);
    }
    for (int j = 0; j < 3; ++j) {
      const int64_t N = in[2 + j].shape[0];
      GEMMAC_TRY(s.Check(Matmul(x, T, W(in[2 + j], dev_in[2 + j]), N, y[j], st),
                         "matmul kernel"));
      if (j == 2)
        break; // v: no norm, no rope
      if (in[5 + j].dtype != GEMMAC_DTYPE_NONE)
        GEMMAC_TRY(s.Check(RmsNorm(y[j], T, N, W(in[5 + j], dev_in[5 + j]),
                                   a.eps, a.offset, y[j], st),
                           "rms_norm kernel"));
      GEMMAC_TRY(s.Check(Rope(y[j], T, N, a.head_dim, a.theta, a.rope_scale,
                              ctx->past, y[j], st),
                         "rope kernel"));
    }
    return GEMMAC_PLUGIN_OK;
  }
  case GEMMAC_OP_GATED_MLP: {
    const int64_t K = in[0].shape[1], F = in[2].shape[0];
    const float *x = x0;
    void *g = nullptr;
    GEMMAC_TRY(s.Temp(sizeof(float) * T * F, &g));
    if (in[1].dtype != GEMMAC_DTYPE_NONE) {
      void *xn = nullptr;
      GEMMAC_TRY(s.Temp(sizeof(float) * T * K, &xn));
      GEMMAC_TRY(s.Check(RmsNorm(x0, T, K, W(in[1], dev_in[1]), a.eps, a.offset,
                                 static_cast<float *>(xn), st),
                         "rms_norm kernel"));
      x = static_cast<const float *>(xn);
    }
    GEMMAC_TRY(s.Check(
        Matmul(x, T, W(in[2], dev_in[2]), F, static_cast<float *>(g), st),
        "matmul kernel"));
    GEMMAC_TRY(s.Check(Matmul(x, T, W(in[3], dev_in[3]), F, y[0], st),
                       "matmul kernel"));
    return s.Check(Elementwise(Eltwise::kMulGeluOf, y[0],
                               static_cast<const float *>(g), 0, T * F, y[0],
                               st),
                   "gelu-mul kernel");
  }
  case GEMMAC_OP_FINAL_HEAD: {
    // An output of one row holds only the last position's logits.
    const int64_t H = in[0].shape[1];
    const int64_t rows_out = out[0].shape[0], first = T - rows_out;
    void *xn = nullptr;
    GEMMAC_TRY(s.Temp(sizeof(float) * rows_out * H, &xn));
    GEMMAC_TRY(s.Check(RmsNorm(x0 + first * H, rows_out, H, W(in[1], dev_in[1]),
                               a.eps, a.offset, static_cast<float *>(xn), st),
                       "rms_norm kernel"));
    GEMMAC_TRY(s.Check(Matmul(static_cast<const float *>(xn), rows_out,
                              W(in[2], dev_in[2]), a.rows, y[0], st),
                       "matmul kernel"));
    if (a.softcap > 0)
      return s.Check(Elementwise(Eltwise::kSoftcap, y[0], nullptr, a.softcap,
                                 rows_out * a.rows, y[0], st),
                     "softcap kernel");
    return GEMMAC_PLUGIN_OK;
  }
  default:
    return Fail(s.err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                GEMMAC_GPU_PLUGIN ": launch: %s (op %d) has no kernel", name,
                k.op);
  }
}

int32_t Launch(gemmac_backend *bp, gemmac_kernel *kp, const gemmac_tensor *in,
               uint32_t num_in, const gemmac_tensor *out, uint32_t num_out,
               const gemmac_exec_context *ctx, gemmac_plugin_error *err) {
  if (bp == nullptr || kp == nullptr)
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                GEMMAC_GPU_PLUGIN
                ": launch: backend or kernel is null, expected both from "
                "create() and prepare()");
  if (ctx && ctx->cancel && *ctx->cancel)
    return GEMMAC_PLUGIN_CANCELLED;
  auto &b = *reinterpret_cast<Backend *>(bp);
  const Kernel &k = *reinterpret_cast<Kernel *>(kp);
  if (int32_t rc = CheckOperands(GEMMAC_GPU_PLUGIN, k.op, k.a, in, num_in, out,
                                 num_out, ctx, err);
      rc != GEMMAC_PLUGIN_OK)
    return rc;
  for (uint32_t i = 0; i < num_in; ++i) {
    const bool none = in[i].dtype == GEMMAC_DTYPE_NONE;
    if ((none || in[i].data == nullptr) &&
        !(none && in[i].data == nullptr && in[i].rank == 0 &&
          IsOptional(k.op, i)))
      return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  GEMMAC_GPU_PLUGIN
                  ": %s input %u is absent or has no data, expected data "
                  "(absent only in an optional slot: dtype none, data NULL, "
                  "rank 0)",
                  OpName(k.op), i);
  }
  (void)gpuSetDevice(b.device);
  LaunchScope s{b, err, {}, {}};
  int32_t rc = RunOp(s, k, in, num_in, out, num_out, ctx);
  if (rc == GEMMAC_PLUGIN_OK)
    for (const auto &c : s.copy_back)
      if ((rc = s.Check(gpuMemcpyAsync(c.host, c.device, c.bytes,
                                       gpuMemcpyDefault, b.stream),
                        GEMMAC_GPU_API "MemcpyAsync (output copy-back)")) !=
          GEMMAC_PLUGIN_OK)
        break;
  // Always drain the stream (also after an error) so temporaries can be
  // freed and the caller may read outputs on the host.
  const gpuError_t e = gpuStreamSynchronize(b.stream);
  if (rc == GEMMAC_PLUGIN_OK)
    rc = s.Check(e, GEMMAC_GPU_API "StreamSynchronize (kernel execution)");
  return rc;
}

} // namespace
} // namespace gemmac_cuda

extern "C" GEMMAC_PLUGIN_EXPORT int32_t gemmac_plugin_entry(
    uint32_t abi_major, gemmac_plugin_api *api, size_t api_size) {
  using namespace gemmac_cuda;
  if (abi_major != GEMMAC_PLUGIN_ABI_MAJOR)
    return GEMMAC_PLUGIN_UNSUPPORTED;
  if (api == nullptr || api_size < sizeof(api->struct_size))
    return GEMMAC_PLUGIN_INVALID_ARGUMENT;
  gemmac_plugin_api table;
  std::memset(&table, 0, sizeof(table));
  table.abi_major = GEMMAC_PLUGIN_ABI_MAJOR;
  table.abi_minor = GEMMAC_PLUGIN_ABI_MINOR;
  table.name = GEMMAC_GPU_PLUGIN;
  table.version = "0.1";
  table.create = Create;
  table.destroy = Destroy;
  table.supports = Supports;
  table.prepare = Prepare;
  table.release = Release;
  table.launch = Launch;
  table.alloc = Alloc;
  table.free = Free;
  table.describe = Describe;
  table.device_info = DeviceInfo;
  table.copy = Copy;
  table.map_weights = MapWeights;
  table.unmap_weights = UnmapWeights;
  // An older caller's smaller table gets what fits, and no byte past it.
  gemmac_sdk::CopyWhatFits(table, api, api_size);
  return GEMMAC_PLUGIN_OK;
}
