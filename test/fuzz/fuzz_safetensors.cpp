// libFuzzer target: one model.safetensors file through the importer's header
// reader (compiler/import/Safetensors.cpp). Every index it accepts must lie
// inside the file; everything else must be a diagnostic.
#include "fuzz_support.h"
#include "import/Safetensors.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/Support/FileSystem.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mlir::MLIRContext context;
  static const std::string dir = gemmac::fuzz::ScratchDir();
  static const std::string file = dir + "/model.safetensors";
  gemmac::fuzz::WriteWholeFile(file, data, size);

  bool sawError = false;
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
    sawError |= d.getSeverity() == mlir::DiagnosticSeverity::Error;
    return mlir::success();
  });
  // Vision-tower tensors may have other dtypes (the importer skips them).
  auto isIgnored = [](llvm::StringRef name) {
    return name.starts_with("vision_tower.");
  };
  mlir::FailureOr<gemmac::SafetensorsIndex> index =
      gemmac::readSafetensorsIndex(dir, &context, isIgnored);
  if (failed(index)) {
    if (!sawError)
      std::abort(); // a failure must say why
    return 0;
  }
  for (const auto &entry : *index) {
    const gemmac::SafetensorsTensor &t = entry.second;
    if (t.offset < 8 || t.offset > size || t.size > size - t.offset)
      std::abort();
    unsigned bytes = gemmac::safetensorsDtypeBytes(t.dtype);
    if (bytes == 0)
      continue;
    // The element count the importer will trust, recomputed in 128 bits so
    // that a wrapped product cannot hide.
    unsigned __int128 elements = 1;
    for (int64_t d : t.shape)
      elements *= static_cast<uint64_t>(d);
    if (elements * bytes != t.size)
      std::abort();
  }
  return 0;
}
