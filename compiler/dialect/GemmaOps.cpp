//===- GemmaOps.cpp - verifiers of the gemma ops ---------------------------===//
//
// Every rule in docs/ops.md that a shape or attribute can break is checked
// here, so a malformed module is rejected with a located diagnostic before
// any pass or the bytecode emitter sees it.
//
//===----------------------------------------------------------------------===//

#include "dialect/GemmaOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace gemmac::gemma;

namespace {

/// Two dims agree when either is dynamic or they are equal.
bool dimsAgree(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

LogicalResult checkRank(Operation *op, Type type, int64_t rank,
                        StringRef what) {
  auto ranked = cast<RankedTensorType>(type);
  if (ranked.getRank() != rank)
    return op->emitOpError() << "expects " << what << " of rank " << rank
                             << ", got " << type;
  return success();
}

} // namespace

LogicalResult WeightOp::verify() {
  StringRef dtype = getSourceDtype();
  if (dtype != "F32" && dtype != "BF16" && dtype != "F16")
    return emitOpError() << "source_dtype must be F32, BF16 or F16, got \""
                         << dtype << "\"";
  if (getOffset() < 0)
    return emitOpError() << "offset must be non-negative, got " << getOffset();
  if (!getType().hasStaticShape())
    return emitOpError() << "weight shape must be static, got " << getType();
  return success();
}

LogicalResult EmbedOp::verify() {
  auto table = getTable().getType();
  auto result = getType();
  if (failed(checkRank(*this, table, 2, "table")) ||
      failed(checkRank(*this, result, 2, "result")))
    return failure();
  if (!dimsAgree(getTokens().getType().getDimSize(0), result.getDimSize(0)))
    return emitOpError() << "result rows (" << result.getDimSize(0)
                         << ") must equal the token count ("
                         << getTokens().getType().getDimSize(0) << ")";
  if (!dimsAgree(table.getDimSize(1), result.getDimSize(1)))
    return emitOpError() << "result width (" << result.getDimSize(1)
                         << ") must equal the table width ("
                         << table.getDimSize(1) << ")";
  return success();
}

LogicalResult RmsNormOp::verify() {
  auto input = getInput().getType();
  auto weight = getWeight().getType();
  if (input != getType())
    return emitOpError() << "result type " << getType()
                         << " must equal the input type " << input;
  if (failed(checkRank(*this, weight, 1, "weight")))
    return failure();
  int64_t group = weight.getDimSize(0);
  int64_t width = input.getDimSize(input.getRank() - 1);
  if (ShapedType::isDynamic(group) || group <= 0)
    return emitOpError() << "weight size must be static and positive";
  if (!ShapedType::isDynamic(width) && width % group != 0)
    return emitOpError() << "input width " << width
                         << " is not a multiple of the weight size " << group;
  if (getEps().convertToFloat() <= 0.0f)
    return emitOpError() << "eps must be positive";
  return success();
}

LogicalResult LinearOp::verify() {
  auto input = getInput().getType();
  auto weight = getWeight().getType();
  auto result = getType();
  if (failed(checkRank(*this, input, 2, "input")) ||
      failed(checkRank(*this, weight, 2, "weight")) ||
      failed(checkRank(*this, result, 2, "result")))
    return failure();
  if (!dimsAgree(input.getDimSize(1), weight.getDimSize(1)))
    return emitOpError() << "input width " << input.getDimSize(1)
                         << " must equal the weight's in-features "
                         << weight.getDimSize(1);
  if (!dimsAgree(result.getDimSize(1), weight.getDimSize(0)))
    return emitOpError() << "result width " << result.getDimSize(1)
                         << " must equal the weight's out-features "
                         << weight.getDimSize(0);
  if (!dimsAgree(result.getDimSize(0), input.getDimSize(0)))
    return emitOpError() << "result rows must equal the input rows";
  return success();
}

LogicalResult RopeOp::verify() {
  auto type = getType();
  if (failed(checkRank(*this, type, 2, "input")))
    return failure();
  int64_t headDim = getHeadDim();
  if (headDim <= 0 || headDim % 2 != 0)
    return emitOpError() << "head_dim must be positive and even, got "
                         << headDim;
  int64_t width = type.getDimSize(1);
  if (!ShapedType::isDynamic(width) && width % headDim != 0)
    return emitOpError() << "input width " << width
                         << " is not a multiple of head_dim " << headDim;
  if (getTheta().convertToFloat() <= 0.0f)
    return emitOpError() << "theta must be positive";
  if (getRopeScale().convertToFloat() <= 0.0f)
    return emitOpError() << "rope_scale must be positive";
  return success();
}

LogicalResult AttentionOp::verify() {
  int64_t heads = getNumHeads(), kvHeads = getNumKvHeads(),
          headDim = getHeadDim();
  if (heads <= 0 || kvHeads <= 0 || headDim <= 0)
    return emitOpError()
           << "num_heads, num_kv_heads and head_dim must be positive";
  if (heads % kvHeads != 0)
    return emitOpError() << "num_heads (" << heads
                         << ") must be a multiple of num_kv_heads (" << kvHeads
                         << ")";
  if (getLayer() < 0)
    return emitOpError() << "layer must be non-negative";
  if (getWindow() < 0)
    return emitOpError() << "window must be non-negative";
  if (getSoftcap().convertToFloat() < 0.0f)
    return emitOpError() << "softcap must be non-negative";
  auto check = [&](Type type, StringRef what,
                   int64_t width) -> LogicalResult {
    if (failed(checkRank(*this, type, 2, what)))
      return failure();
    int64_t got = cast<RankedTensorType>(type).getDimSize(1);
    if (!dimsAgree(got, width))
      return emitOpError() << what << " width " << got << " must be "
                           << width;
    return success();
  };
  if (failed(check(getQuery().getType(), "query", heads * headDim)) ||
      failed(check(getKey().getType(), "key", kvHeads * headDim)) ||
      failed(check(getValue().getType(), "value", kvHeads * headDim)) ||
      failed(check(getType(), "result", heads * headDim)))
    return failure();
  return success();
}

LogicalResult SoftcapOp::verify() {
  if (getSoftcap().convertToFloat() <= 0.0f)
    return emitOpError() << "softcap must be positive";
  return success();
}

LogicalResult LmHeadOp::verify() {
  auto input = getInput().getType();
  auto table = getTable().getType();
  auto result = getType();
  if (failed(checkRank(*this, input, 2, "input")) ||
      failed(checkRank(*this, table, 2, "table")) ||
      failed(checkRank(*this, result, 2, "result")))
    return failure();
  if (!dimsAgree(input.getDimSize(1), table.getDimSize(1)))
    return emitOpError() << "input width must equal the table width";
  int64_t rows = getRows();
  if (rows <= 0 || rows > table.getDimSize(0))
    return emitOpError() << "rows (" << rows << ") must be in [1, "
                         << table.getDimSize(0) << "]";
  if (!dimsAgree(result.getDimSize(1), rows))
    return emitOpError() << "result width " << result.getDimSize(1)
                         << " must equal rows " << rows;
  return success();
}

#define GET_OP_CLASSES
#include "dialect/GemmaOps.cpp.inc"
