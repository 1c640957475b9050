// The one symbol libgemmac_cpu.so exports (everything else is hidden, and the
// version script keeps it that way).
#include "gemmac/cpu_plugin.h"

extern "C" GEMMAC_PLUGIN_EXPORT int32_t gemmac_plugin_entry(
    uint32_t abi_major, gemmac_plugin_api *api, size_t api_size) {
  return gemmac_cpu_plugin_entry(abi_major, api, api_size);
}
