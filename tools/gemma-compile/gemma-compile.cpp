//===- gemma-compile.cpp - checkpoint directory -> .gmc module
//-------------===//
//
//   gemma-compile MODEL_DIR -o OUT.gmc [--dtype f32|bf16|f16] [--max-chunk N]
//                 [--compile-to=import|planned] [--quiet]
//   gemma-compile IR.mlir -o OUT.gmc [--compile-from=import|planned] ...
//   gemma-compile --describe-config CONFIG.json
//
// Imports a Hugging Face Gemma 3 checkpoint, runs the compile pipeline
// (verify-model, canonicalize, plan-memory) and writes a module file.
// --compile-to prints the MLIR after that phase instead (how the lit tests
// see the importer's output). Errors are diagnostics naming the file and the
// field; the exit status is non-zero and nothing is written. An .mlir file
// in place of the directory is gemma IR from an earlier --compile-to (how the
// lit tests reach the pipeline and the emitter with hand-written IR).
//
//===----------------------------------------------------------------------===//

#include "dialect/GemmaDialect.h"
#include "import/HFConfig.h"
#include "import/HFImporter.h"
#include "target/bytecode/BytecodeEmitter.h"
#include "transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;
namespace cl = llvm::cl;

namespace {

enum class CompileTo { Module, Import, Planned };
enum class CompileFrom { Import, Planned };

/// Writes MLIR text to `path` ("-" for stdout); the file is kept only when
/// the whole print succeeded.
LogicalResult printTo(ModuleOp module, llvm::StringRef path) {
  std::string error;
  std::unique_ptr<llvm::ToolOutputFile> out = openOutputFile(path, &error);
  if (!out) {
    llvm::errs() << "gemma-compile: " << error << "\n";
    return failure();
  }
  module.print(out->os());
  out->os() << "\n";
  out->keep();
  return success();
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);

  cl::OptionCategory category("gemma-compile options");
  cl::opt<std::string> modelDir(cl::Positional, cl::desc("<checkpoint dir>"),
                                cl::Optional, cl::cat(category));
  cl::opt<std::string> output("o", cl::desc("output file ('-' for stdout)"),
                              cl::value_desc("path"), cl::cat(category));
  cl::opt<std::string> dtype(
      "dtype",
      cl::desc("dtype of the embedding and projections in the module: f32, "
               "bf16 or f16 (default: the checkpoint's)"),
      cl::init(""), cl::cat(category));
  cl::opt<int64_t> maxChunk(
      "max-chunk", cl::desc("largest prefill chunk, in tokens (default 64)"),
      cl::init(64), cl::cat(category));
  cl::opt<CompileTo> compileTo(
      "compile-to", cl::desc("stop after a phase and print its MLIR to -o"),
      cl::init(CompileTo::Module),
      cl::values(
          clEnumValN(CompileTo::Import, "import", "the importer's output"),
          clEnumValN(CompileTo::Planned, "planned",
                     "after the compile pipeline (memory planned)")),
      cl::cat(category));
  cl::opt<CompileFrom> compileFrom(
      "compile-from",
      cl::desc("the phase an .mlir input comes from (default: import)"),
      cl::init(CompileFrom::Import),
      cl::values(clEnumValN(CompileFrom::Import, "import",
                            "importer output: run the compile pipeline"),
                 clEnumValN(CompileFrom::Planned, "planned",
                            "memory already planned: emit directly")),
      cl::cat(category));
  cl::opt<bool> quiet("quiet", cl::desc("no progress bar or summary"),
                      cl::cat(category));
  cl::opt<std::string> describeConfig(
      "describe-config",
      cl::desc("print the parsed text-model config of a config.json and exit"),
      cl::value_desc("config.json"), cl::init(""), cl::cat(category));
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "gemma-compile: compile a Hugging Face Gemma 3 checkpoint to a gemmac "
      "module (.gmc)\n");

  DialectRegistry registry;
  registry.insert<gemmac::gemma::GemmaDialect, func::FuncDialect>();
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  // Diagnostics go to stderr with their locations.
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagHandler(sourceMgr, &context);

  if (!describeConfig.empty()) {
    FailureOr<gemmac::TextConfig> config =
        gemmac::parseHFConfig(describeConfig, &context);
    if (failed(config))
      return 1;
    gemmac::describeConfig(*config, llvm::outs());
    return 0;
  }

  if (modelDir.empty()) {
    llvm::errs() << "gemma-compile: missing the checkpoint directory "
                    "(usage: gemma-compile MODEL_DIR -o OUT.gmc)\n";
    return 2;
  }
  if (output.empty()) {
    llvm::errs() << "gemma-compile: missing -o OUT (the module file, or '-' "
                    "with --compile-to)\n";
    return 2;
  }

  gemmac::HFImportOptions options;
  options.maxChunk = maxChunk;
  if (dtype == "f32")
    options.dtype = gemmac::WeightDtype::F32;
  else if (dtype == "bf16")
    options.dtype = gemmac::WeightDtype::BF16;
  else if (dtype == "f16")
    options.dtype = gemmac::WeightDtype::F16;
  else if (!dtype.empty()) {
    llvm::errs() << "gemma-compile: --dtype: expected f32, bf16 or f16, got '"
                 << dtype << "'\n";
    return 2;
  }

  OwningOpRef<ModuleOp> module;
  bool planned = false;
  if (llvm::sys::fs::is_regular_file(modelDir)) {
    std::string error;
    std::unique_ptr<llvm::MemoryBuffer> input = openInputFile(modelDir, &error);
    if (!input) {
      llvm::errs() << "gemma-compile: " << error << "\n";
      return 1;
    }
    sourceMgr.AddNewSourceBuffer(std::move(input), llvm::SMLoc());
    module = parseSourceFile<ModuleOp>(sourceMgr, &context);
    planned = compileFrom == CompileFrom::Planned;
  } else {
    module = gemmac::importHFCheckpoint(modelDir, options, &context);
  }
  if (!module)
    return 1;
  if (compileTo == CompileTo::Import)
    return failed(printTo(*module, output)) ? 1 : 0;

  if (!planned) {
    PassManager pm(&context);
    gemmac::buildCompilePipeline(pm);
    if (failed(pm.run(*module)))
      return 1;
  }
  if (compileTo == CompileTo::Planned)
    return failed(printTo(*module, output)) ? 1 : 0;

  if (output == "-") {
    llvm::errs() << "gemma-compile: a module file cannot go to stdout; give "
                    "-o OUT.gmc\n";
    return 2;
  }
  gemmac::BytecodeOptions bytecode;
  bytecode.producer = "gemma-compile " GEMMAC_VERSION;
  bytecode.log = quiet ? nullptr : &llvm::errs();
  bytecode.interactive = llvm::sys::Process::StandardErrIsDisplayed();
  if (failed(gemmac::emitModuleFile(*module, output, bytecode)))
    return 1;
  return 0;
}
