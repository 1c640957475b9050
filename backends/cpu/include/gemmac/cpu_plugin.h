/* The CPU backend linked into a program (static registration).
 *
 * libgemmac_cpu.so exports only gemmac_plugin_entry and is found on the
 * plugin path like any third-party plugin. A program that links the static
 * library gemmac_cpu_static instead gets the same function table through
 * gemmac_cpu_plugin_entry, and hands that to the runtime's plugin registry,
 * so a single binary runs with no plugin path. Same contract as
 * gemmac_plugin_entry_fn in gemmac/plugin.h.
 */
#ifndef GEMMAC_CPU_PLUGIN_H_
#define GEMMAC_CPU_PLUGIN_H_

#include "gemmac/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

int32_t gemmac_cpu_plugin_entry(uint32_t abi_major, gemmac_plugin_api *api,
                                size_t api_size);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GEMMAC_CPU_PLUGIN_H_ */
