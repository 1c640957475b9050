//===- gemma-compile.cpp - checkpoint directory -> .gmc module
//-------------===//
//
//   gemma-compile MODEL_DIR|MODEL.gguf -o OUT.gmc [--dtype f32|bf16|f16]
//                 [--quant f32|bf16|f16|q8|q4|q4z] [--keep SPEC]
//                 [--kv-dtype f32|i8] [--prefill-logits all|last] [--no-fuse]
//                 [--target cpu|none] [--max-chunk N] [--compile-to=PHASE]
//                 [--quiet]
//   gemma-compile IR.mlir -o OUT.gmc [--compile-from=PHASE] ...
//   gemma-compile --describe-config CONFIG.json|MODEL.gguf
//
// Imports a Hugging Face Gemma 3 checkpoint and runs the phases
//   import     the importer's IR
//   fused      gemma-verify-model, the fusion passes (skipped by --no-fuse)
//   quantized  gemma-quantize: each weight's stored type (--quant, --keep)
//   packed     gemma-pack-weights: the layout the target's kernels read
//              (--target)
//   planned    gemma-verify-model again, canonicalize, gemma-plan-memory
// then writes a module file. --compile-to=PHASE prints the MLIR after that
// phase instead; --compile-from=PHASE takes an .mlir file written after that
// phase (how the lit tests reach each phase with hand-written IR) and runs
// the phases after it. Errors are diagnostics naming the file and the field;
// the exit status is non-zero and nothing is written.
//
//===----------------------------------------------------------------------===//

#include "dialect/GemmaDialect.h"
#include "import/Gguf.h"
#include "import/GgufImporter.h"
#include "import/HFConfig.h"
#include "import/HFImporter.h"
#include "target/bytecode/BytecodeEmitter.h"
#include "transforms/Passes.h"
#include "transforms/QuantPolicy.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;
namespace cl = llvm::cl;

namespace {

/// The phases in order; a module file is written after the last.
enum class Phase { Import, Fused, Quantized, Packed, Planned, Module };

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
      cl::desc("float dtype of the embedding and projections that are not "
               "quantized: f32, bf16 or f16 (default: the checkpoint's)"),
      cl::init(""), cl::cat(category));
  cl::opt<std::string> quant(
      "quant",
      cl::desc("weight scheme: f32, bf16, f16 (the same as --dtype), q8 "
               "(int8 per row), q4 (int4, groups of 32) or q4z (int4 with "
               "minimum, groups of 128); norms always stay f32"),
      cl::value_desc("scheme"), cl::init(""), cl::cat(category));
  cl::list<std::string> keep(
      "keep",
      cl::desc("CLASS[,CLASS...][=SCHEME]: store these tensor classes (embed, "
               "lm_head, attn, mlp) as SCHEME, or at the float dtype without "
               "=SCHEME; repeat or separate groups with ';'"),
      cl::value_desc("spec"), cl::cat(category));
  cl::opt<std::string> kvDtype(
      "kv-dtype",
      cl::desc("KV cache dtype: f32 (default) or i8 (int8 with a scale per "
               "position and KV head)"),
      cl::init(""), cl::cat(category));
  cl::opt<std::string> prefillLogits(
      "prefill-logits",
      cl::desc("logits prefill returns: all positions (default) or the last "
               "one only"),
      cl::value_desc("all|last"), cl::init("all"), cl::cat(category));
  cl::opt<bool> noFuse("no-fuse",
                       cl::desc("skip the fusion passes (one kernel per op)"),
                       cl::cat(category));
  cl::opt<std::string> target(
      "target",
      cl::desc("the plugin whose kernels the weight layouts are packed for: "
               "cpu (default; q4 matrices become q4g32r8) or none (the "
               "unpacked formats, for any plugin)"),
      cl::value_desc("cpu|none"), cl::init("cpu"), cl::cat(category));
  cl::opt<int64_t> maxChunk(
      "max-chunk", cl::desc("largest prefill chunk, in tokens (default 64)"),
      cl::init(64), cl::cat(category));
  auto phaseValues = [] {
    return cl::values(
        clEnumValN(Phase::Import, "import", "the importer's output"),
        clEnumValN(Phase::Fused, "fused",
                   "after gemma-verify-model and the fusion passes"),
        clEnumValN(Phase::Quantized, "quantized",
                   "after gemma-quantize (weights have their stored types)"),
        clEnumValN(Phase::Packed, "packed",
                   "after gemma-pack-weights (layouts for --target)"),
        clEnumValN(Phase::Planned, "planned",
                   "after canonicalize and gemma-plan-memory"));
  };
  cl::opt<Phase> compileTo(
      "compile-to", cl::desc("stop after a phase and print its MLIR to -o"),
      cl::init(Phase::Module), phaseValues(), cl::cat(category));
  cl::opt<Phase> compileFrom(
      "compile-from",
      cl::desc("the phase an .mlir input was written after (default: import); "
               "the phases after it run"),
      cl::init(Phase::Import), phaseValues(), cl::cat(category));
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
  // A diagnostic names its op and location; the op's generic form (a whole
  // weight reference, per remark) would only bury the message.
  context.printOpOnDiagnostic(false);
  // Diagnostics go to stderr with their locations.
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagHandler(sourceMgr, &context);

  if (!describeConfig.empty()) {
    FailureOr<gemmac::TextConfig> config = failure();
    if (gemmac::isGgufFile(describeConfig)) {
      FailureOr<gemmac::GgufFile> file =
          gemmac::readGgufFile(describeConfig, &context);
      if (succeeded(file))
        config = gemmac::readGgufConfig(*file, &context);
    } else {
      config = gemmac::parseHFConfig(describeConfig, &context);
    }
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
  // The policy is checked here, before anything is imported; the quantize
  // pass parses the same strings again.
  std::string keepSpec = llvm::join(keep, ";");
  {
    std::string error;
    gemmac::QuantOptionNames flags;
    flags.scheme = "--quant";
    flags.keep = "--keep";
    flags.dtype = "--dtype";
    if (failed(
            gemmac::parseQuantPolicy(quant, keepSpec, dtype, error, flags))) {
      llvm::errs() << "gemma-compile: " << error << "\n";
      return 2;
    }
  }
  // A float scheme is the importer's dtype (--quant bf16 == --dtype bf16).
  if (std::optional<gemmac::QuantScheme> s = gemmac::parseQuantScheme(quant);
      s && gemmac::isFloatScheme(*s) && !options.dtype)
    options.dtype = *s == gemmac::QuantScheme::F32 ? gemmac::WeightDtype::F32
                    : *s == gemmac::QuantScheme::BF16
                        ? gemmac::WeightDtype::BF16
                        : gemmac::WeightDtype::F16;
  if (!kvDtype.empty() && kvDtype != "f32" && kvDtype != "i8") {
    llvm::errs() << "gemma-compile: --kv-dtype: expected f32 or i8, got '"
                 << kvDtype << "'\n";
    return 2;
  }
  if (target != "cpu" && target != "none") {
    llvm::errs() << "gemma-compile: --target: expected cpu or none, got '"
                 << target << "'\n";
    return 2;
  }
  if (prefillLogits != "all" && prefillLogits != "last") {
    llvm::errs() << "gemma-compile: --prefill-logits: expected all or last, "
                    "got '"
                 << prefillLogits << "'\n";
    return 2;
  }

  // A GGUF file is a model, imported like a checkpoint directory.
  bool isGguf = gemmac::isGgufFile(modelDir);
  bool fromFile = llvm::sys::fs::is_regular_file(modelDir) && !isGguf;
  // A checkpoint directory goes through every phase; an .mlir file through
  // those after --compile-from.
  Phase from = fromFile ? compileFrom.getValue() : Phase::Import;
  if (!fromFile && compileFrom.getNumOccurrences()) {
    llvm::errs() << "gemma-compile: --compile-from needs an .mlir file, not "
                    "the checkpoint directory "
                 << modelDir << "\n";
    return 2;
  }
  if (fromFile && compileTo != Phase::Module && compileTo <= from) {
    llvm::errs() << "gemma-compile: --compile-to names a phase the input "
                    "already went through (--compile-from)\n";
    return 2;
  }
  // A flag whose phase does not run would be silently ignored: refuse it.
  auto skipped = [&](Phase phase, llvm::StringRef flag) {
    if (from < phase && compileTo >= phase)
      return false;
    llvm::errs() << "gemma-compile: " << flag << " has no effect: the "
                 << (from >= phase ? "input is past" : "compile stops before")
                 << " the phase it changes\n";
    return true;
  };
  if ((noFuse && skipped(Phase::Fused, "--no-fuse")) ||
      (prefillLogits.getNumOccurrences() &&
       skipped(Phase::Fused, "--prefill-logits")) ||
      (!quant.empty() && skipped(Phase::Quantized, "--quant")) ||
      (!keep.empty() && skipped(Phase::Quantized, "--keep")) ||
      (target.getNumOccurrences() && skipped(Phase::Packed, "--target")) ||
      // --dtype acts in the importer, or in gemma-quantize for an .mlir.
      (!dtype.empty() && fromFile && skipped(Phase::Quantized, "--dtype")))
    return 2;
  if (prefillLogits == "last" && noFuse) {
    llvm::errs() << "gemma-compile: --prefill-logits=last needs the fusion "
                    "passes (the fused final head computes one row); drop "
                    "--no-fuse\n";
    return 2;
  }

  OwningOpRef<ModuleOp> module;
  if (fromFile) {
    std::string error;
    std::unique_ptr<llvm::MemoryBuffer> input = openInputFile(modelDir, &error);
    if (!input) {
      llvm::errs() << "gemma-compile: " << error << "\n";
      return 1;
    }
    sourceMgr.AddNewSourceBuffer(std::move(input), llvm::SMLoc());
    module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  } else if (isGguf) {
    gemmac::GgufImportOptions ggufOptions;
    ggufOptions.dtype = options.dtype;
    ggufOptions.maxChunk = options.maxChunk;
    gemmac::GgufQuantDefault fileQuant;
    module =
        gemmac::importGgufFile(modelDir, ggufOptions, &context, &fileQuant);
    // Without --quant/--keep, a quantized file keeps its quantization.
    if (module && quant.empty() && keep.empty() && !fileQuant.scheme.empty()) {
      quant = fileQuant.scheme;
      keepSpec = fileQuant.keep;
      if (!quiet)
        llvm::errs() << "gemma-compile: " << fileQuant.summary << "\n";
    }
  } else {
    module = gemmac::importHFCheckpoint(modelDir, options, &context);
  }
  if (!module)
    return 1;
  // The KV cache dtype is a module fact the emitter reads; an .mlir input
  // keeps its own unless the flag is given.
  if (!kvDtype.empty())
    (*module)->setAttr("gemma.kv_dtype",
                       StringAttr::get(&context, kvDtype.getValue()));

  auto runPhase = [&](Phase phase) -> LogicalResult {
    PassManager pm(&context);
    switch (phase) {
    case Phase::Fused:
      pm.addPass(gemmac::createGemmaVerifyModel());
      if (!noFuse) {
        gemmac::FusionOptions fusion;
        fusion.lastPositionLogits = prefillLogits == "last";
        gemmac::addFusionPasses(pm, fusion);
      }
      break;
    case Phase::Quantized: {
      gemmac::GemmaQuantizeOptions q;
      q.scheme = quant;
      q.keep = keepSpec;
      q.dtype = dtype;
      pm.addPass(gemmac::createGemmaQuantize(q));
      break;
    }
    case Phase::Packed: {
      gemmac::GemmaPackWeightsOptions p;
      p.target = target;
      pm.addPass(gemmac::createGemmaPackWeights(p));
      break;
    }
    case Phase::Planned:
      // Verifies again: the passes before must have kept one type per
      // weight name and the model's invariants.
      gemmac::buildCompilePipeline(pm);
      break;
    default:
      return success();
    }
    return pm.run(*module);
  };
  for (Phase phase : {Phase::Import, Phase::Fused, Phase::Quantized,
                      Phase::Packed, Phase::Planned}) {
    if (phase > from && failed(runPhase(phase)))
      return 1;
    if (phase == compileTo)
      return failed(printTo(*module, output)) ? 1 : 0;
  }

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
