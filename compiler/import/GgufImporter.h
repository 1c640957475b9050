//===- GgufImporter.h - GGUF Gemma file -> gemma IR --------------*- C++
//-*-===//
//
// Turns a GGUF file of a Gemma text model (llama.cpp architectures `gemma`,
// `gemma2`, `gemma3`) into the same `gemma` module the HF importer builds: the
// metadata becomes a TextConfig, the tensors an index under the HF names the
// shared builder expects (GGUF dims reversed), the `tokenizer.ggml.*` arrays a
// sentencepiece ModelProto the module embeds (module attribute
// `gemma.tokenizer_model`, the serialized bytes). Weights stay in the GGUF
// file; `gemma.weight` names its ggml type as `source_dtype` (F32, F16, BF16,
// Q4_0, Q8_0, Q4_K, Q5_K, Q6_K) and the bytecode emitter converts. Called by
// `gemma-compile` for a `.gguf` input. docs/gguf.md has the mapping.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_IMPORT_GGUFIMPORTER_H
#define GEMMAC_IMPORT_GGUFIMPORTER_H

#include "import/Gguf.h"
#include "import/HFConfig.h"
#include "import/HFImporter.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <optional>
#include <string>

namespace gemmac {

struct GgufImportOptions {
  /// The dtype of the float weights in the module; unset keeps token_embd's
  /// when it is a float type, else f32.
  std::optional<WeightDtype> dtype;
  /// Largest prefill chunk (gemma.max_tokens of @prefill).
  int64_t maxChunk = 64;
};

/// What gemma-compile needs to keep the file's quantization when the user
/// names none: a --quant scheme and --keep spec (possibly empty) that store
/// each tensor class as the file does (Q4_0 as q4, Q8_0 as q8, floats as
/// floats; K-quants, which have no kernel here, as q8), and a line saying so.
struct GgufQuantDefault {
  std::string scheme;
  std::string keep;
  std::string summary;
};

/// Reads the config of `file` (the `{arch}.*` keys and token_embd's shape).
mlir::FailureOr<TextConfig> readGgufConfig(const GgufFile &file,
                                           mlir::MLIRContext *context);

/// Imports the GGUF file at `path`; null on failure, after a diagnostic.
/// `quantDefault`, when given, receives the file's own quantization policy.
mlir::OwningOpRef<mlir::ModuleOp>
importGgufFile(llvm::StringRef path, const GgufImportOptions &opts,
               mlir::MLIRContext *context,
               GgufQuantDefault *quantDefault = nullptr);

/// The sentencepiece ModelProto (serialized) that tokenizes as the file's
/// `tokenizer.ggml.*` vocabulary does in llama.cpp.
mlir::FailureOr<std::string>
buildGgufTokenizerModel(const GgufFile &file, mlir::MLIRContext *context);

} // namespace gemmac

#endif // GEMMAC_IMPORT_GGUFIMPORTER_H
