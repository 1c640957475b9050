/* Lists the plugins an installed runtime loads with the default search
 * (GEMMAC_PLUGIN_PATH, then the directory of libgemmac_runtime.so): one
 * "plugin NAME" line each, then "skipped: WHY" for each it refused.
 * sdk.example_out_of_tree (test_out_of_tree.sh) reads the output. */
#include <stdio.h>

#include "gemmac/runtime.h"

int main(void) {
  gemmac_runtime *rt = NULL;
  gemmac_status *st = gemmac_runtime_create(NULL, &rt);
  if (st != NULL) {
    fprintf(stderr, "gemmac_list_plugins: gemmac_runtime_create: %s\n",
            gemmac_status_message(st));
    gemmac_status_free(st);
    return 1;
  }
  for (size_t i = 0; i < gemmac_runtime_plugin_count(rt); ++i)
    printf("plugin %s\n", gemmac_runtime_plugin_name(rt, i));
  for (size_t i = 0; gemmac_runtime_plugin_warning(rt, i) != NULL; ++i)
    printf("skipped: %s\n", gemmac_runtime_plugin_warning(rt, i));
  gemmac_runtime_release(rt);
  return 0;
}
