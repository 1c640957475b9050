// libFuzzer target: the bytes of a module file (.gmc) through the runtime's
// loader, which must refuse anything malformed with a Status and never read
// outside the mapping. The loader takes a path (it maps the file), so each
// input goes into one memfd that is reopened through /proc/self/fd.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

#include "module.h"

namespace {

int MemFd() {
  static int fd = [] {
    int f = memfd_create("gemmac-fuzz-module", MFD_CLOEXEC);
    if (f < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    return f;
  }();
  return fd;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int fd = MemFd();
  if (ftruncate(fd, 0) != 0 ||
      pwrite(fd, data, size, 0) != static_cast<ssize_t>(size))
    return 0;
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  std::shared_ptr<gemmac::Module> module;
  gemmac::Status s = gemmac::Module::Load(path, &module);
  if (!s.ok()) {
    // Every refusal names the file it refuses.
    if (s.message().find(path) == std::string::npos) {
      std::fprintf(stderr, "message does not name the file: %s\n",
                   s.message().c_str());
      std::abort();
    }
    return 0;
  }
  // A module that loads is trusted by the VM: touch what it would.
  (void)module->VerifyChecksums();
  for (const char *name : {"prefill", "decode"})
    if (module->FindFunction(name) == nullptr)
      std::abort();
  const auto *tensors = module->program().tensors();
  for (uint32_t i = 0; tensors != nullptr && i < tensors->size(); ++i) {
    const gemmac::schema::Tensor *t = tensors->Get(i);
    if (t->storage() != gemmac::schema::StorageKind::Weight ||
        t->size_bytes() == 0)
      continue;
    // The first and the last byte the kernels would read.
    const auto *w =
        static_cast<const volatile uint8_t *>(module->WeightData(*t));
    (void)w[0];
    (void)w[t->size_bytes() - 1];
  }
  return 0;
}
