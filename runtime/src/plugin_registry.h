// The backend plugins a runtime knows about.
//
// The C API's gemmac_runtime owns one PluginRegistry; sessions pick a plugin
// from it by name (or take the first). Plugins arrive three ways: a shared
// library opened by path, a search of GEMMAC_PLUGIN_PATH and the install lib
// dir for libgemmac_*.so, or an entry function linked into the program
// (static registration: no dlopen, no path). Every way runs the same
// handshake: ABI major version, table size, non-null entry points.
#ifndef GEMMAC_RUNTIME_PLUGIN_REGISTRY_H_
#define GEMMAC_RUNTIME_PLUGIN_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "gemmac/plugin.h"
#include "status.h"

namespace gemmac {

struct Plugin {
  gemmac_plugin_api api{};
  std::string origin; // the .so path, or "static:<name>"
  void *dl_handle = nullptr;
  ~Plugin();
};

class PluginRegistry {
public:
  // dlopen `path` and run the handshake. A plugin whose name is already
  // registered is refused (kFailedPrecondition).
  Status LoadFile(const std::string &path);
  // Runs the handshake on an entry function linked into the program.
  Status Register(gemmac_plugin_entry_fn entry, const std::string &origin);
  // Loads every libgemmac_*.so in the colon-separated `dirs`, in order.
  // Files that fail to load are skipped; their messages are appended to
  // `skipped` (a duplicate name is skipped silently).
  void LoadFromDirs(const std::string &dirs, std::vector<std::string> *skipped);
  // The directory of libgemmac_runtime.so (the install lib dir).
  static std::string RuntimeLibDir();

  // nullptr when absent; an empty name means the first plugin.
  std::shared_ptr<const Plugin> Find(const std::string &name) const;
  const std::vector<std::shared_ptr<const Plugin>> &plugins() const {
    return plugins_;
  }

private:
  Status Handshake(gemmac_plugin_entry_fn entry, const std::string &origin,
                   Plugin *plugin);
  std::vector<std::shared_ptr<const Plugin>> plugins_;
};

} // namespace gemmac

#endif // GEMMAC_RUNTIME_PLUGIN_REGISTRY_H_
