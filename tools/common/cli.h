// Small helpers the command-line tools share (gemma-run, gemma-kld,
// gemma-bench): integer arguments, status messages of the C API, JSON
// strings and the runtime set-up.
#ifndef GEMMAC_TOOLS_COMMON_CLI_H_
#define GEMMAC_TOOLS_COMMON_CLI_H_

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "gemmac/runtime.h"
#ifdef GEMMAC_HAVE_CPU_STATIC
#include "gemmac/cpu_plugin.h"
#endif

namespace gemmac::tools {

// A whole decimal integer in [lo, hi]; false (and *out untouched) for
// anything else: empty, trailing characters, out of range.
template <class Int>
bool ParseInt(const char *s, long long lo, long long hi, Int *out) {
  if (s == nullptr)
    return false;
  char *end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi)
    return false;
  *out = static_cast<Int>(v);
  return true;
}

// Consumes a status: its message, or "" when it is a success (null).
inline std::string TakeStatus(gemmac_status *st) {
  if (st == nullptr)
    return "";
  std::string m = gemmac_status_message(st);
  gemmac_status_free(st);
  return m;
}

// s as a JSON string literal: quotes, backslashes and control characters
// escaped, other bytes (UTF-8, paths) passed through.
inline std::string JsonString(const std::string &s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

// The runtime a tool runs on: with `plugin` set, that plugin library,
// otherwise the plugin search (GEMMAC_PLUGIN_PATH, the install dir); then
// the CPU plugin linked into the tool (GEMMAC_HAVE_CPU_STATIC), unless it is
// already loaded. Sessions run on the first plugin; the CPU plugin runs the
// ops that one does not support. Plugins the search skipped are reported on
// stderr as "TOOL: warning: skipped ...". Returns an error message, or ""
// with *out set (the caller releases it).
inline std::string OpenRuntime(const char *tool, const std::string &plugin,
                               int32_t threads, gemmac_runtime **out) {
  gemmac_runtime_options ro = {};
  ro.struct_size = sizeof(ro);
  const char *paths[] = {plugin.c_str()};
  ro.plugin_paths = plugin.empty() ? nullptr : paths;
  ro.num_plugin_paths = plugin.empty() ? 0 : 1;
  ro.search_plugins = plugin.empty() ? 1 : 0;
  ro.num_threads = threads;
  gemmac_runtime *rt = nullptr;
  std::string err = TakeStatus(gemmac_runtime_create(&ro, &rt));
  if (!err.empty())
    return err;
#ifdef GEMMAC_HAVE_CPU_STATIC
  // Registered after --plugin's, so a session runs on that one and the CPU
  // plugin takes the ops it does not support.
  gemmac_status *st =
      gemmac_runtime_register_plugin(rt, gemmac_cpu_plugin_entry, "cpu");
  // Already loaded as libgemmac_cpu.so (the install dir, or --plugin): the
  // same plugin.
  if (gemmac_status_code_of(st) == GEMMAC_STATUS_FAILED_PRECONDITION)
    gemmac_status_free(st);
  else if (!(err = TakeStatus(st)).empty()) {
    gemmac_runtime_release(rt);
    return "cpu plugin: " + err;
  }
#endif
  for (size_t i = 0; const char *w = gemmac_runtime_plugin_warning(rt, i); ++i)
    std::fprintf(stderr, "%s: warning: skipped %s\n", tool, w);
  *out = rt;
  return "";
}

} // namespace gemmac::tools

#endif // GEMMAC_TOOLS_COMMON_CLI_H_
