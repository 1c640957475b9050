// Loading and checking backend plugins. A plugin is foreign code: every
// field of its table is checked before the VM calls through it.
#include "plugin_registry.h"

#include <algorithm>
#include <cstddef>
#include <dirent.h>
#include <dlfcn.h>

namespace gemmac {

Plugin::~Plugin() {
  if (dl_handle != nullptr)
    dlclose(dl_handle);
}

Status PluginRegistry::Handshake(gemmac_plugin_entry_fn entry,
                                 const std::string &origin, Plugin *plugin) {
  gemmac_plugin_api &api = plugin->api;
  api = gemmac_plugin_api{};
  api.struct_size = sizeof(api);
  int32_t rc = entry(GEMMAC_PLUGIN_ABI_MAJOR, &api, sizeof(api));
  std::string ours = std::to_string(GEMMAC_PLUGIN_ABI_MAJOR) + "." +
                     std::to_string(GEMMAC_PLUGIN_ABI_MINOR);
  if (api.abi_major != 0 && api.abi_major != GEMMAC_PLUGIN_ABI_MAJOR)
    return Status(StatusCode::kUnimplemented,
                  "plugin " + origin + " speaks ABI " +
                      std::to_string(api.abi_major) + "." +
                      std::to_string(api.abi_minor) + "; this runtime speaks " +
                      ours);
  if (rc != GEMMAC_PLUGIN_OK)
    return Status(StatusCode::kUnimplemented,
                  "plugin " + origin + " refused ABI " + ours +
                      " (its entry returned " + std::to_string(rc) + ")");
  constexpr size_t kNeeded =
      offsetof(gemmac_plugin_api, free) + sizeof(api.free);
  if (api.struct_size < kNeeded || api.struct_size > sizeof(api))
    return Status(StatusCode::kUnimplemented,
                  "plugin " + origin + " filled a " +
                      std::to_string(api.struct_size) +
                      "-byte gemmac_plugin_api; this runtime needs " +
                      std::to_string(kNeeded) + ".." +
                      std::to_string(sizeof(api)) + " bytes");
  if (api.abi_major != GEMMAC_PLUGIN_ABI_MAJOR)
    return Status(StatusCode::kUnimplemented,
                  "plugin " + origin + " reports ABI major " +
                      std::to_string(api.abi_major) + "; this runtime speaks " +
                      ours);
  if (!api.name || !api.create || !api.destroy || !api.supports ||
      !api.prepare || !api.release || !api.launch || !api.alloc || !api.free)
    return Status(StatusCode::kInvalidArgument,
                  "plugin " + origin +
                      " left a required entry (name, create, destroy, "
                      "supports, prepare, release, launch, alloc, free) null");
  if (Find(api.name) != nullptr)
    return Status(StatusCode::kFailedPrecondition,
                  "plugin " + origin + ": a plugin named '" + api.name +
                      "' is already registered");
  plugin->origin = origin;
  return Status::Ok();
}

Status PluginRegistry::Register(gemmac_plugin_entry_fn entry,
                                const std::string &origin) {
  if (entry == nullptr)
    return Status(StatusCode::kInvalidArgument,
                  "plugin " + origin + ": null entry function");
  auto p = std::make_shared<Plugin>();
  GEMMAC_RETURN_IF_ERROR(Handshake(entry, origin, p.get()));
  plugins_.push_back(std::move(p));
  return Status::Ok();
}

Status PluginRegistry::LoadFile(const std::string &path) {
  // RTLD_NODELETE: a plugin may leave worker threads (TBB, CUDA) running
  // past its destroy(); unmapping their code under them would crash.
  void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (h == nullptr) {
    const char *e = dlerror();
    return Status(StatusCode::kNotFound,
                  "plugin " + path + ": cannot load: " + (e ? e : "dlopen"));
  }
  auto p = std::make_shared<Plugin>();
  p->dl_handle = h; // closed by ~Plugin on every path below
  auto entry = reinterpret_cast<gemmac_plugin_entry_fn>(
      dlsym(h, GEMMAC_PLUGIN_ENTRY_SYMBOL));
  if (entry == nullptr)
    return Status(StatusCode::kNotFound, "plugin " + path +
                                             ": no exported symbol " +
                                             GEMMAC_PLUGIN_ENTRY_SYMBOL);
  GEMMAC_RETURN_IF_ERROR(Handshake(entry, path, p.get()));
  plugins_.push_back(std::move(p));
  return Status::Ok();
}

void PluginRegistry::LoadFromDirs(const std::string &dirs,
                                  std::vector<std::string> *skipped) {
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos)
      end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    start = end + 1;
    if (dir.empty())
      continue;
    DIR *d = opendir(dir.c_str());
    if (d == nullptr)
      continue;
    std::vector<std::string> files;
    while (dirent *e = readdir(d)) {
      std::string n = e->d_name;
      if (n.rfind("libgemmac_", 0) == 0 && n.size() > 3 &&
          n.compare(n.size() - 3, 3, ".so") == 0 && n != "libgemmac_runtime.so")
        files.push_back(dir + "/" + n);
    }
    closedir(d);
    std::sort(files.begin(), files.end()); // a stable, predictable order
    for (const std::string &f : files) {
      Status s = LoadFile(f);
      if (!s.ok() && s.code() != StatusCode::kFailedPrecondition && skipped)
        skipped->push_back(s.message());
    }
  }
}

std::string PluginRegistry::RuntimeLibDir() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(&PluginRegistry::RuntimeLibDir), &info) ==
          0 ||
      info.dli_fname == nullptr)
    return std::string();
  std::string p = info.dli_fname;
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? std::string(".") : p.substr(0, slash);
}

std::shared_ptr<const Plugin>
PluginRegistry::Find(const std::string &name) const {
  for (const auto &p : plugins_)
    if (name.empty() || name == p->api.name)
      return p;
  return nullptr;
}

} // namespace gemmac
