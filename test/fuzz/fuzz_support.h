// Helpers shared by the fuzz targets whose parsers take a path: a private
// scratch directory (in /dev/shm when there is one, so no disk is touched)
// and a whole-file write.
#ifndef GEMMAC_TEST_FUZZ_FUZZ_SUPPORT_H_
#define GEMMAC_TEST_FUZZ_FUZZ_SUPPORT_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace gemmac {
namespace fuzz {

// Created once per process, removed at exit.
inline const std::string &ScratchDir() {
  static const std::string dir = [] {
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string templ = std::string(base) + "/gemmac-fuzz-XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    static std::string removed;
    removed = templ;
    std::atexit([] {
      std::string cmd = "rm -rf '" + removed + "'";
      (void)std::system(cmd.c_str());
    });
    return templ;
  }();
  return dir;
}

inline void WriteWholeFile(const std::string &path, const uint8_t *data,
                           size_t size) {
  FILE *f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    std::perror(path.c_str());
    std::abort();
  }
  if (size != 0 && std::fwrite(data, 1, size, f) != size) {
    std::perror(path.c_str());
    std::abort();
  }
  std::fclose(f);
}

} // namespace fuzz
} // namespace gemmac

#endif // GEMMAC_TEST_FUZZ_FUZZ_SUPPORT_H_
