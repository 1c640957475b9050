//===- Tokenizer.h - what the importer needs from tokenizer.model -*- C++
//-*-===//
//
// Loads a checkpoint's sentencepiece model (with the sentencepiece library,
// at compile time only) to learn how many pieces it scores and the ids of
// Gemma's special and turn-marker tokens. The module embeds the file's bytes;
// the runtime loads them again. Called by the HF importer.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_IMPORT_TOKENIZER_H
#define GEMMAC_IMPORT_TOKENIZER_H

#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/LogicalResult.h"

#include <string>

namespace gemmac {

struct TokenizerInfo {
  std::string path;   // absolute path of tokenizer.model
  int64_t pieces = 0; // vocabulary size: the logit rows scored
  // -1 when the piece is not in the vocabulary.
  int64_t pad = -1, eos = -1, bos = -1, unk = -1;
  int64_t startOfTurn = -1, endOfTurn = -1;
};

mlir::FailureOr<TokenizerInfo> loadTokenizerInfo(llvm::StringRef path,
                                                 mlir::MLIRContext *context);

} // namespace gemmac

#endif // GEMMAC_IMPORT_TOKENIZER_H
