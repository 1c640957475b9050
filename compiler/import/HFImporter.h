//===- HFImporter.h - Hugging Face Gemma checkpoint -> gemma IR ---*- C++
//-*-===//
//
// Turns a Hugging Face checkpoint directory (config.json, safetensors files,
// tokenizer.model) of any Gemma text generation (Gemma 1 / CodeGemma, Gemma 2,
// Gemma 3; TextConfig::family picks the block) into a `gemma` dialect module
// with two functions, `@prefill` (up to `maxChunk` tokens a call) and
// `@decode` (one token), whose
// weights are `gemma.weight` references into the safetensors files. Module
// attributes carry what the bytecode emitter needs besides the program:
// `gemma.config`, `gemma.tokenizer` (absolute path of tokenizer.model),
// `gemma.special_tokens` and `gemma.chat`. Called by `gemma-compile`.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_IMPORT_HFIMPORTER_H
#define GEMMAC_IMPORT_HFIMPORTER_H

#include "import/HFConfig.h"
#include "import/Safetensors.h"
#include "import/Tokenizer.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <optional>
#include <string>

namespace gemmac {

enum class WeightDtype { F32, BF16, F16 };

struct HFImportOptions {
  /// The dtype of the embedding and projections in the module; unset keeps
  /// the checkpoint's (norm weights are always f32).
  std::optional<WeightDtype> dtype;
  /// Largest prefill chunk (gemma.max_tokens of @prefill).
  int64_t maxChunk = 64;
};

/// Imports the checkpoint in `dir`. Errors are emitted as MLIR diagnostics
/// naming the file and field; returns null on failure.
mlir::OwningOpRef<mlir::ModuleOp>
importHFCheckpoint(llvm::StringRef dir, const HFImportOptions &opts,
                   mlir::MLIRContext *context);

/// Checks that `index` holds every tensor a decoder of `config` needs (names
/// relative to `prefix`), with the shapes the config implies. Errors name the
/// tensor, the shape found and the shape expected; `where` locates a missing
/// tensor. Shared by the HF and GGUF importers.
mlir::LogicalResult checkTextTensors(const TextConfig &config,
                                     const SafetensorsIndex &index,
                                     llvm::StringRef prefix,
                                     mlir::Location where);

/// Builds (and verifies) the `gemma` module of a decoder of `config` (its
/// `family` picks the block and the chat format's system rule) whose
/// tensors `index` lists under HF names relative to `prefix`; the common back
/// half of every importer. Call checkTextTensors first.
mlir::OwningOpRef<mlir::ModuleOp>
buildGemmaModule(const TextConfig &config, const SafetensorsIndex &index,
                 llvm::StringRef prefix, const TokenizerInfo &tokenizer,
                 WeightDtype dtype, int64_t maxChunk,
                 mlir::MLIRContext *context);

} // namespace gemmac

#endif // GEMMAC_IMPORT_HFIMPORTER_H
