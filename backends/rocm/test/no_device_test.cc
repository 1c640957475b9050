// no_device_test LIB: loads the ROCm plugin as the runtime does (dlopen, the
// entry symbol, create()) and checks the path CI takes, where no AMD GPU (no
// /dev/kfd) exists: create() must return GEMMAC_PLUGIN_UNSUPPORTED with a
// "rocm: no HIP device (hipGetDeviceCount: ...)" message and no backend, and
// nothing may crash or abort. Exits 0 when it does, 1 on any mismatch, and 77
// (skipped) where a device is present: conformance.rocm covers that case.
#include <dlfcn.h>

#include <cstdio>
#include <cstring>

#include "gemmac/plugin.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s LIBGEMMAC_ROCM\n", argv[0]);
    return 1;
  }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::printf("FAIL: dlopen(%s): %s, expected the plugin to load without a "
                "GPU\n",
                argv[1], dlerror());
    return 1;
  }
  auto entry = reinterpret_cast<gemmac_plugin_entry_fn>(
      dlsym(lib, GEMMAC_PLUGIN_ENTRY_SYMBOL));
  if (entry == nullptr) {
    std::printf("FAIL: %s has no %s\n", argv[1], GEMMAC_PLUGIN_ENTRY_SYMBOL);
    return 1;
  }
  gemmac_plugin_api api;
  std::memset(&api, 0, sizeof(api));
  api.struct_size = sizeof(api);
  if (int32_t rc = entry(GEMMAC_PLUGIN_ABI_MAJOR, &api, sizeof(api));
      rc != GEMMAC_PLUGIN_OK || api.create == nullptr || api.name == nullptr ||
      std::strcmp(api.name, "rocm") != 0) {
    std::printf("FAIL: %s entry returned %d, name \"%s\", expected 0 and "
                "\"rocm\" with create()\n",
                argv[1], rc, api.name ? api.name : "(null)");
    return 1;
  }
  gemmac_backend_options opts;
  std::memset(&opts, 0, sizeof(opts));
  opts.struct_size = sizeof(opts);
  gemmac_plugin_error err;
  std::memset(&err, 0, sizeof(err));
  err.struct_size = sizeof(err);
  gemmac_backend *b = nullptr;
  const int32_t rc = api.create(&opts, &b, &err);
  if (rc == GEMMAC_PLUGIN_OK) {
    std::printf("a HIP device is present (%s): skipped, conformance.rocm "
                "covers it\n",
                api.describe ? api.describe(b) : "?");
    api.destroy(b);
    return 77;
  }
  const char *want = "rocm: no HIP device (hipGetDeviceCount: ";
  if (rc != GEMMAC_PLUGIN_UNSUPPORTED || b != nullptr ||
      std::strncmp(err.message, want, std::strlen(want)) != 0) {
    std::printf("FAIL: create() returned %d, backend %p, message \"%s\"; "
                "expected %d (GEMMAC_PLUGIN_UNSUPPORTED), no backend, and a "
                "message starting \"%s\"\n",
                rc, static_cast<void *>(b), err.message,
                GEMMAC_PLUGIN_UNSUPPORTED, want);
    return 1;
  }
  std::printf("OK: create() without a device: %d, \"%s\"\n", rc, err.message);
  return 0;
}
