// A plugin that supports only part of the op set, as a young backend does:
// the reference plugin's kernels for every op except attention, which its
// supports() refuses. The runtime must run those instructions on the CPU
// plugin and say so (runtime/src/vm.h, "Partitioning"). It can also be told
// to fail a launch (gemmac_partial_fail_after), as a device that is lost
// mid-run does. fallback_test.cc checks both. Built as libgemmac_partial.so
// beside the other test plugins.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "gemmac/op_checks.h"
#include "gemmac/plugin.h"

// The reference plugin, linked into this library under another entry name.
extern "C" int32_t gemmac_partial_ref_entry(uint32_t abi_major,
                                            gemmac_plugin_api *api,
                                            size_t api_size);

namespace {

gemmac_plugin_api g_ref;
// Launches left before one fails; negative: never.
std::atomic<long> g_fail_after{-1};
// Memory device_info() reports available; 0: the reference's answer.
std::atomic<uint64_t> g_available{0};

bool Refused(const gemmac_op_desc *desc) {
  return desc == nullptr || desc->op == GEMMAC_OP_ATTENTION;
}

int32_t Supports(gemmac_backend *b, const gemmac_op_desc *desc) {
  return Refused(desc) ? 0 : g_ref.supports(b, desc);
}

int32_t Prepare(gemmac_backend *b, const gemmac_op_desc *desc,
                gemmac_kernel **out, gemmac_plugin_error *error) {
  if (Refused(desc)) {
    if (error != nullptr && error->struct_size >= sizeof(*error))
      std::snprintf(error->message, sizeof(error->message),
                    "partial: op %d is not supported", desc ? desc->op : -1);
    return GEMMAC_PLUGIN_UNSUPPORTED;
  }
  return g_ref.prepare(b, desc, out, error);
}

int32_t Launch(gemmac_backend *b, gemmac_kernel *k, const gemmac_tensor *in,
               uint32_t num_in, const gemmac_tensor *out, uint32_t num_out,
               const gemmac_exec_context *ctx, gemmac_plugin_error *error) {
  long left = g_fail_after.load();
  while (left > 0 && !g_fail_after.compare_exchange_weak(left, left - 1)) {
  }
  if (left == 0) {
    if (error != nullptr && error->struct_size >= sizeof(*error))
      std::snprintf(error->message, sizeof(error->message),
                    "partial: device lost (injected by the test)");
    return GEMMAC_PLUGIN_INTERNAL;
  }
  return g_ref.launch(b, k, in, num_in, out, num_out, ctx, error);
}

int32_t DeviceInfo(gemmac_backend *b, gemmac_device_info *info,
                   gemmac_plugin_error *error) {
  const int32_t rc = g_ref.device_info(b, info, error);
  if (rc == GEMMAC_PLUGIN_OK && g_available.load() != 0 &&
      info->struct_size >=
          offsetof(gemmac_device_info, memory_available_bytes) +
              sizeof(info->memory_available_bytes))
    info->memory_available_bytes = g_available.load();
  return rc;
}

} // namespace

// Test control: device_info() reports `bytes` available (0: the host's).
extern "C" GEMMAC_PLUGIN_EXPORT void
gemmac_partial_memory_available(uint64_t bytes) {
  g_available.store(bytes);
}

// Test control, found with dlsym: the launch after `n` more succeed fails,
// and every one after it; n < 0 clears it.
extern "C" GEMMAC_PLUGIN_EXPORT void gemmac_partial_fail_after(long n) {
  g_fail_after.store(n);
}

extern "C" GEMMAC_PLUGIN_EXPORT int32_t gemmac_plugin_entry(
    uint32_t abi_major, gemmac_plugin_api *api, size_t api_size) {
  int32_t rc = gemmac_partial_ref_entry(abi_major, &g_ref, sizeof(g_ref));
  if (rc != GEMMAC_PLUGIN_OK)
    return rc;
  gemmac_plugin_api table = g_ref;
  table.name = "partial";
  table.supports = Supports;
  table.prepare = Prepare;
  table.launch = Launch;
  table.device_info = DeviceInfo;
  // A kernel plugin: the reference's graph mode (if built in) would run the
  // attention it refuses.
  table.compile_graph = nullptr;
  table.execute_graph = nullptr;
  table.release_graph = nullptr;
  // An older caller's smaller table gets what fits, and no byte past it.
  gemmac_sdk::CopyWhatFits(table, api, api_size);
  return GEMMAC_PLUGIN_OK;
}
