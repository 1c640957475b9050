/* A plugin that speaks plugin ABI 2.0: the runtime must refuse it. */
#include <string.h>

#include "gemmac/plugin.h"

GEMMAC_PLUGIN_EXPORT int32_t gemmac_plugin_entry(uint32_t abi_major,
                                                 gemmac_plugin_api *api,
                                                 size_t api_size) {
  (void)abi_major;
  if (api_size < sizeof(*api))
    return GEMMAC_PLUGIN_UNSUPPORTED;
  memset(api, 0, sizeof(*api));
  api->struct_size = sizeof(*api);
  api->abi_major = 2;
  api->abi_minor = 0;
  api->name = "bad_abi";
  return GEMMAC_PLUGIN_UNSUPPORTED;
}
