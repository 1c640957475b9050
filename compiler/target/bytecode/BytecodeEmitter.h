//===- BytecodeEmitter.h - gemma IR -> .gmc module file ----------*- C++
//-*-===//
//
// Writes a planned gemma module (after buildCompilePipeline: every non-weight
// op has `gemma.arena_offset`, the tokens argument has it as an arg attr and
// each function has `gemma.arena_size` and `gemma.max_tokens`) as a module
// file: header, FlatBuffers program (runtime/schema/module.fbs), then the
// weights, read from the checkpoint files the `gemma.weight` ops name and
// converted to the module's dtypes on the way (quantized ones row by row,
// docs/quantization.md). Module attributes `gemma.quantization` and
// `gemma.kv_dtype` ("f32" or "i8") become Module.quantization and the KV
// layers' dtype; Module.required_features names what the module needs
// beyond format 1.0 (quantized dtypes, an i8 KV cache, fused ops). The file
// appears atomically: it is written next to the output under a temporary name
// and renamed at the end; on any error the temporary is removed and an existing
// output is left untouched. Called by `gemma-compile`.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_TARGET_BYTECODE_BYTECODEEMITTER_H
#define GEMMAC_TARGET_BYTECODE_BYTECODEEMITTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LogicalResult.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace gemmac {

struct BytecodeOptions {
  /// Module.producer, e.g. "gemma-compile 0.1.0".
  std::string producer = "gemma-compile";
  /// Where the progress bar and the summary go; null for silence.
  llvm::raw_ostream *log = nullptr;
  /// Redraw the progress bar in place (only sensible on a terminal).
  bool interactive = false;
};

/// Writes `module` to `outputPath`. Errors are emitted as diagnostics on the
/// offending op (or the module) and leave no output behind.
mlir::LogicalResult emitModuleFile(mlir::ModuleOp module,
                                   llvm::StringRef outputPath,
                                   const BytecodeOptions &options);

} // namespace gemmac

#endif // GEMMAC_TARGET_BYTECODE_BYTECODEEMITTER_H
