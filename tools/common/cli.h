// Small helpers the command-line tools share (gemma-run, gemma-kld,
// gemma-bench): integer arguments and status messages of the C API.
#ifndef GEMMAC_TOOLS_COMMON_CLI_H_
#define GEMMAC_TOOLS_COMMON_CLI_H_

#include <cerrno>
#include <cstdlib>
#include <string>

#include "gemmac/runtime.h"

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

} // namespace gemmac::tools

#endif // GEMMAC_TOOLS_COMMON_CLI_H_
