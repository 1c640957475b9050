//===- Tokenizer.h - what the importer needs from tokenizer.model -*- C++
//-*-===//
//
// Loads a checkpoint's sentencepiece model (with the sentencepiece library,
// at compile time only) to learn how many pieces it scores and the ids of
// Gemma's special and turn-marker tokens. The module embeds the model's bytes
// (read from tokenizer.model, or built in memory by the GGUF importer); the
// runtime loads them again. Called by the HF and GGUF importers.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_IMPORT_TOKENIZER_H
#define GEMMAC_IMPORT_TOKENIZER_H

#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/LogicalResult.h"

#include <string>

namespace gemmac {

struct TokenizerInfo {
  std::string path; // absolute path of tokenizer.model, or the model's source
  /// The serialized model when it does not come from `path` as is (a GGUF
  /// file's tokenizer.ggml.* rebuilt as a ModelProto); empty otherwise.
  std::string bytes;
  int64_t pieces = 0; // vocabulary size: the logit rows scored
  // -1 when the piece is not in the vocabulary.
  int64_t pad = -1, eos = -1, bos = -1, unk = -1;
  int64_t startOfTurn = -1, endOfTurn = -1;
};

mlir::FailureOr<TokenizerInfo> loadTokenizerInfo(llvm::StringRef path,
                                                 mlir::MLIRContext *context);

/// The same for a serialized ModelProto held in memory; `source` names where
/// it came from in messages and becomes TokenizerInfo::path.
mlir::FailureOr<TokenizerInfo>
loadTokenizerInfoFromBytes(std::string bytes, llvm::StringRef source,
                           mlir::MLIRContext *context);

} // namespace gemmac

#endif // GEMMAC_IMPORT_TOKENIZER_H
