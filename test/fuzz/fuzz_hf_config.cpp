// libFuzzer target: one config.json through parseHFConfig
// (compiler/import/HFConfig.cpp). A config it accepts is printed the way
// `gemma-compile --describe-config` prints it and must be self-consistent;
// anything else must be a diagnostic.
#include "fuzz_support.h"
#include "import/HFConfig.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mlir::MLIRContext context;
  static const std::string file = gemmac::fuzz::ScratchDir() + "/config.json";
  gemmac::fuzz::WriteWholeFile(file, data, size);

  bool sawError = false;
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
    sawError |= d.getSeverity() == mlir::DiagnosticSeverity::Error;
    return mlir::success();
  });
  mlir::FailureOr<gemmac::TextConfig> config =
      gemmac::parseHFConfig(file, &context);
  if (failed(config)) {
    if (!sawError)
      std::abort(); // a failure must say why
    return 0;
  }
  const gemmac::TextConfig &c = *config;
  // What the importer relies on without checking again.
  if (c.hiddenSize <= 0 || c.intermediateSize <= 0 || c.numLayers <= 0 ||
      c.numHeads <= 0 || c.numKvHeads <= 0 || c.headDim <= 0 ||
      c.vocabSize <= 0 || c.numHeads % c.numKvHeads != 0 ||
      static_cast<int64_t>(c.layerIsSliding.size()) != c.numLayers)
    std::abort();
  std::string text;
  llvm::raw_string_ostream os(text);
  gemmac::describeConfig(c, os);
  return 0;
}
