#include "gemmac/host_memory.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace gemmac_sdk {

void HostMemory(uint64_t *total, uint64_t *available) {
  uint64_t t = 0, a = 0;
  if (std::FILE *f = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    while (std::fgets(line, sizeof(line), f) != nullptr) {
      unsigned long long kib = 0;
      if (std::sscanf(line, "MemTotal: %llu kB", &kib) == 1)
        t = uint64_t(kib) << 10;
      else if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
        a = uint64_t(kib) << 10;
    }
    std::fclose(f);
  }
  if (t == 0) {
    const long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages > 0 && size > 0)
      t = uint64_t(pages) * uint64_t(size);
  }
  if (total != nullptr)
    *total = t;
  if (available != nullptr)
    *available = a;
}

} // namespace gemmac_sdk
