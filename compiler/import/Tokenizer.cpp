//===- Tokenizer.cpp - piece count and special ids of tokenizer.model -----===//

#include "import/Tokenizer.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "llvm/Support/FileSystem.h"

#include <sentencepiece_processor.h>

using namespace mlir;

namespace gemmac {

namespace {

/// Counts the pieces of a loaded model and finds Gemma's special ids.
FailureOr<TokenizerInfo>
describeProcessor(const sentencepiece::SentencePieceProcessor &processor,
                  Location loc) {
  TokenizerInfo info;
  info.pieces = processor.GetPieceSize();
  if (info.pieces <= 0) {
    emitError(loc) << "the sentencepiece model has no pieces";
    return failure();
  }
  // PieceToId answers the unknown id for a missing piece; check the round
  // trip so a missing marker reads as -1, not as <unk>.
  auto lookup = [&](llvm::StringRef piece) -> int64_t {
    int id = processor.PieceToId(piece.str());
    if (id < 0 || id >= info.pieces || processor.IdToPiece(id) != piece.str())
      return -1;
    return id;
  };
  info.pad = lookup("<pad>");
  info.eos = lookup("<eos>");
  info.bos = lookup("<bos>");
  info.unk = lookup("<unk>");
  info.startOfTurn = lookup("<start_of_turn>");
  info.endOfTurn = lookup("<end_of_turn>");
  return info;
}

} // namespace

FailureOr<TokenizerInfo> loadTokenizerInfo(llvm::StringRef path,
                                           MLIRContext *context) {
  Location loc = FileLineColLoc::get(context, path, 0, 0);
  if (!llvm::sys::fs::exists(path)) {
    emitError(loc) << "missing tokenizer.model: the checkpoint directory must "
                      "hold the sentencepiece model";
    return failure();
  }
  sentencepiece::SentencePieceProcessor processor;
  sentencepiece::util::Status status = processor.Load(path.str());
  if (!status.ok()) {
    emitError(loc) << "cannot load the sentencepiece model: "
                   << status.ToString();
    return failure();
  }
  FailureOr<TokenizerInfo> info = describeProcessor(processor, loc);
  if (succeeded(info))
    info->path = path.str();
  return info;
}

FailureOr<TokenizerInfo> loadTokenizerInfoFromBytes(std::string bytes,
                                                    llvm::StringRef source,
                                                    MLIRContext *context) {
  Location loc = FileLineColLoc::get(context, source, 0, 0);
  sentencepiece::SentencePieceProcessor processor;
  sentencepiece::util::Status status = processor.LoadFromSerializedProto(bytes);
  if (!status.ok()) {
    emitError(loc) << "the sentencepiece model built from " << source
                   << " does not load: " << status.ToString();
    return failure();
  }
  FailureOr<TokenizerInfo> info = describeProcessor(processor, loc);
  if (succeeded(info)) {
    info->path = source.str();
    info->bytes = std::move(bytes);
  }
  return info;
}

} // namespace gemmac
