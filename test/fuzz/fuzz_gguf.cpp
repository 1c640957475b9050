// libFuzzer target: one GGUF file through the importer's header reader
// (compiler/import/Gguf.cpp), then the config and tokenizer readers of the
// GGUF importer on what it accepts. Every tensor range it accepts must lie
// inside the file; every failure must be a diagnostic.
#include "fuzz_support.h"
#include "import/Gguf.h"
#include "import/GgufImporter.h"

#include "mlir/IR/Diagnostics.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mlir::MLIRContext context;
  static const std::string file = gemmac::fuzz::ScratchDir() + "/model.gguf";
  gemmac::fuzz::WriteWholeFile(file, data, size);

  bool sawError = false;
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
    sawError |= d.getSeverity() == mlir::DiagnosticSeverity::Error;
    return mlir::success();
  });
  mlir::FailureOr<gemmac::GgufFile> gguf = gemmac::readGgufFile(file, &context);
  if (failed(gguf)) {
    if (!sawError)
      std::abort(); // a failure must say why
    return 0;
  }
  for (const gemmac::GgufTensor &t : gguf->tensors)
    if (t.offset > size || t.size > size - t.offset)
      std::abort();
  sawError = false;
  if (failed(gemmac::readGgufConfig(*gguf, &context)) && !sawError)
    std::abort();
  sawError = false;
  if (failed(gemmac::buildGgufTokenizerModel(*gguf, &context)) && !sawError)
    std::abort();
  return 0;
}
