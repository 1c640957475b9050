// Host memory for plugins whose alloc() draws from it (the CPU, reference
// and TPU-style plugins), as ABI 1.5's device_info reports it. Part of the
// plugin SDK (gemmac::plugin_sdk).
#ifndef GEMMAC_SDK_HOST_MEMORY_H_
#define GEMMAC_SDK_HOST_MEMORY_H_

#include <cstdint>

namespace gemmac_sdk {

// Total RAM and what a new allocation can get now, in bytes: Linux's
// MemTotal and MemAvailable (free plus reclaimable page cache; free memory
// alone would refuse sessions on a machine whose cache is full). 0 where
// unknown.
void HostMemory(uint64_t *total, uint64_t *available);

} // namespace gemmac_sdk

#endif // GEMMAC_SDK_HOST_MEMORY_H_
