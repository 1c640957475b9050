//===- GemmaOps.cpp - verifiers of the gemma ops---------------------------===//
//
// Every rule in docs/ops.md that a shape or attribute can break is checked
// here, so a malformed module is rejected with a located diagnostic before
// any pass or the bytecode emitter sees it.
//
//===----------------------------------------------------------------------===//

#include "dialect/GemmaOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

#include <cmath>

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
    return op->emitOpError()
           << "expects " << what << " of rank " << rank << ", got " << type;
  return success();
}

} // namespace

LogicalResult WeightOp::verify() {
  StringRef dtype = getSourceDtype();
  // GGUF block formats: the emitter dequantizes (or, Q4_0 into Q4G32,
  // copies) whole blocks, so each row must hold whole blocks.
  int64_t block = dtype == "Q4_0" || dtype == "Q8_0"                      ? 32
                  : dtype == "Q4_K" || dtype == "Q5_K" || dtype == "Q6_K" ? 256
                                                                          : 0;
  if (dtype != "F32" && dtype != "BF16" && dtype != "F16" && block == 0)
    return emitOpError() << "source_dtype must be F32, BF16, F16, Q4_0, Q8_0, "
                            "Q4_K, Q5_K or Q6_K, got \""
                         << dtype << "\"";
  if (block > 0 && getType().hasStaticShape() &&
      (getType().getRank() == 0 || getType().getShape().back() % block != 0))
    return emitOpError() << "source_dtype " << dtype << " stores blocks of "
                         << block << " values along the last dimension, but "
                         << "the weight is " << getType();
  // I64Attr accessors are unsigned; read the signed value to see negatives.
  int64_t offset = static_cast<int64_t>(getOffset());
  if (offset < 0)
    return emitOpError() << "offset must be non-negative, got " << offset;
  if (!getType().hasStaticShape())
    return emitOpError() << "weight shape must be static, got " << getType();
  return verifyWeightLayout(*this, getType(), "result");
}

LogicalResult EmbedOp::verify() {
  auto table = getTable().getType();
  auto result = getType();
  if (failed(checkRank(*this, table, 2, "table")) ||
      failed(checkRank(*this, result, 2, "result")) ||
      failed(verifyWeightLayout(*this, table, "table")))
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
      failed(checkRank(*this, result, 2, "result")) ||
      failed(verifyWeightLayout(*this, weight, "weight")))
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
  int64_t headDim = static_cast<int64_t>(getHeadDim());
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
  // I64Attr accessors are unsigned; read the signed values to see negatives.
  int64_t heads = static_cast<int64_t>(getNumHeads()),
          kvHeads = static_cast<int64_t>(getNumKvHeads()),
          headDim = static_cast<int64_t>(getHeadDim());
  if (heads <= 0 || kvHeads <= 0 || headDim <= 0)
    return emitOpError()
           << "num_heads, num_kv_heads and head_dim must be positive";
  if (heads % kvHeads != 0)
    return emitOpError() << "num_heads (" << heads
                         << ") must be a multiple of num_kv_heads (" << kvHeads
                         << ")";
  if (static_cast<int64_t>(getLayer()) < 0)
    return emitOpError() << "layer must be non-negative";
  if (static_cast<int64_t>(getWindow()) < 0)
    return emitOpError() << "window must be non-negative";
  if (getSoftcap().convertToFloat() < 0.0f)
    return emitOpError() << "softcap must be non-negative";
  auto check = [&](Type type, StringRef what, int64_t width) -> LogicalResult {
    if (failed(checkRank(*this, type, 2, what)))
      return failure();
    int64_t got = cast<RankedTensorType>(type).getDimSize(1);
    if (!dimsAgree(got, width))
      return emitOpError() << what << " width " << got << " must be " << width;
    return success();
  };
  if (failed(check(getQuery().getType(), "query", heads * headDim)) ||
      failed(check(getKey().getType(), "key", kvHeads * headDim)) ||
      failed(check(getValue().getType(), "value", kvHeads * headDim)) ||
      failed(check(getType(), "result", heads * headDim)))
    return failure();
  // Row t of each operand is the token at position past + t.
  int64_t rows = getQuery().getType().getDimSize(0);
  for (Value v : {getKey(), getValue(), getResult()}) {
    int64_t got = cast<RankedTensorType>(v.getType()).getDimSize(0);
    if (!dimsAgree(rows, got))
      return emitOpError() << "query, key, value and result must have the "
                              "same number of rows, got "
                           << rows << " and " << got;
    if (ShapedType::isDynamic(rows))
      rows = got;
  }
  return success();
}

OpFoldResult ScaleOp::fold(FoldAdaptor) {
  // x * 1.0 == x exactly, for every f32 including NaN and infinities.
  float scale = getScale().convertToFloat();
  if (scale == 1.0f)
    return getInput();
  auto inner = getInput().getDefiningOp<ScaleOp>();
  if (!inner)
    return {};
  // (x * a) * b and x * (a * b) agree up to rounding as long as neither
  // order overflows or underflows. x is unknown here, so this assumes, as any
  // reassociating compiler does, that activations stay well inside f32's
  // range; what it does check is that a * b itself is a normal f32, since a
  // product of inf or 0 would change every element, not just extreme ones.
  float a = inner.getScale().convertToFloat();
  float combined = a * scale;
  bool exactZero = combined == 0.0f && (a == 0.0f || scale == 0.0f);
  if (!std::isnormal(combined) && !exactZero)
    return {};
  if (combined == 1.0f)
    return inner.getInput();
  // In-place fold: the inner scale stays if something else still uses it.
  getInputMutable().assign(inner.getInput());
  setScaleAttr(Builder(getContext()).getF32FloatAttr(combined));
  return getResult();
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
      failed(checkRank(*this, result, 2, "result")) ||
      failed(verifyWeightLayout(*this, table, "table")))
    return failure();
  if (!dimsAgree(input.getDimSize(1), table.getDimSize(1)))
    return emitOpError() << "input width must equal the table width";
  int64_t rows = static_cast<int64_t>(getRows());
  if (rows <= 0 || rows > table.getDimSize(0))
    return emitOpError() << "rows (" << rows << ") must be in [1, "
                         << table.getDimSize(0) << "]";
  if (!dimsAgree(result.getDimSize(1), rows))
    return emitOpError() << "result width " << result.getDimSize(1)
                         << " must equal rows " << rows;
  return success();
}

//===----------------------------------------------------------------------===//
// Fused ops
//===----------------------------------------------------------------------===//

namespace {

/// A norm weight of a whole row (or of one head, for QK-norm): rank 1, `size`
/// elements.
LogicalResult checkNormWeight(Operation *op, Value norm, int64_t size,
                              StringRef what) {
  auto type = cast<RankedTensorType>(norm.getType());
  if (type.getRank() != 1 || !dimsAgree(type.getDimSize(0), size))
    return op->emitOpError()
           << what << " must be tensor<" << size << "xf32>, got " << type;
  return success();
}

/// A weight of `rows` out-features by `cols` in-features.
LogicalResult checkWeight(Operation *op, Value weight, int64_t rows,
                          int64_t cols, StringRef what) {
  auto type = cast<RankedTensorType>(weight.getType());
  if (type.getRank() != 2 || !dimsAgree(type.getDimSize(0), rows) ||
      !dimsAgree(type.getDimSize(1), cols))
    return op->emitOpError() << what << " must be " << rows << "x" << cols
                             << " (out x in features), got " << type;
  // A quantized weight's columns must fill whole groups.
  return verifyWeightLayout(op, type, what);
}

/// A rank-2 activation with `rows` rows and `width` columns.
LogicalResult checkActivation(Operation *op, Type type, int64_t rows,
                              int64_t width, StringRef what) {
  if (failed(checkRank(op, type, 2, what)))
    return failure();
  auto ranked = cast<RankedTensorType>(type);
  if (!dimsAgree(ranked.getDimSize(0), rows) ||
      !dimsAgree(ranked.getDimSize(1), width))
    return op->emitOpError()
           << what << " must be tensor<"
           << (ShapedType::isDynamic(rows) ? std::string("?")
                                           : std::to_string(rows))
           << "x" << width << "xf32>, got " << type;
  return success();
}

LogicalResult checkNormAttrs(Operation *op, APFloat eps) {
  if (eps.convertToFloat() <= 0.0f)
    return op->emitOpError() << "eps must be positive";
  return success();
}

} // namespace

LogicalResult AddRmsNormOp::verify() {
  auto lhs = getLhs().getType();
  if (getRhs().getType() != lhs || getSum().getType() != lhs ||
      getNormed().getType() != lhs)
    return emitOpError() << "operands and results must all have the type "
                         << lhs;
  if (failed(checkRank(*this, lhs, 2, "lhs")))
    return failure();
  if (failed(checkNormWeight(*this, getWeight(), lhs.getDimSize(1), "weight")))
    return failure();
  return checkNormAttrs(*this, getEps());
}

LogicalResult QkvProjOp::verify() {
  int64_t heads = static_cast<int64_t>(getNumHeads()),
          kvHeads = static_cast<int64_t>(getNumKvHeads()),
          headDim = static_cast<int64_t>(getHeadDim());
  if (heads <= 0 || kvHeads <= 0 || headDim <= 0 || headDim % 2 != 0)
    return emitOpError() << "num_heads, num_kv_heads must be positive and "
                            "head_dim positive and even";
  if (getTheta().convertToFloat() <= 0.0f ||
      getRopeScale().convertToFloat() <= 0.0f)
    return emitOpError() << "theta and rope_scale must be positive";
  if (failed(checkNormAttrs(*this, getEps())))
    return failure();
  auto input = getInput().getType();
  if (failed(checkRank(*this, input, 2, "input")))
    return failure();
  int64_t rows = input.getDimSize(0), width = input.getDimSize(1);
  if (getNorm() && failed(checkNormWeight(*this, getNorm(), width, "norm")))
    return failure();
  if (bool(getQNorm()) != bool(getKNorm()))
    return emitOpError() << "q_norm and k_norm must be given together";
  if (getQNorm() &&
      (failed(checkNormWeight(*this, getQNorm(), headDim, "q_norm")) ||
       failed(checkNormWeight(*this, getKNorm(), headDim, "k_norm"))))
    return failure();
  if (failed(checkWeight(*this, getWq(), heads * headDim, width, "wq")) ||
      failed(checkWeight(*this, getWk(), kvHeads * headDim, width, "wk")) ||
      failed(checkWeight(*this, getWv(), kvHeads * headDim, width, "wv")))
    return failure();
  if (failed(checkActivation(*this, getQ().getType(), rows, heads * headDim,
                             "q")) ||
      failed(checkActivation(*this, getK().getType(), rows, kvHeads * headDim,
                             "k")) ||
      failed(checkActivation(*this, getV().getType(), rows, kvHeads * headDim,
                             "v")))
    return failure();
  return success();
}

LogicalResult GatedMlpOp::verify() {
  if (failed(checkNormAttrs(*this, getEps())))
    return failure();
  auto input = getInput().getType();
  if (failed(checkRank(*this, input, 2, "input")))
    return failure();
  int64_t rows = input.getDimSize(0), width = input.getDimSize(1);
  if (getNorm() && failed(checkNormWeight(*this, getNorm(), width, "norm")))
    return failure();
  auto gate = getWGate().getType();
  if (failed(checkRank(*this, gate, 2, "w_gate")))
    return failure();
  int64_t ff = gate.getDimSize(0);
  if (failed(checkWeight(*this, getWGate(), ff, width, "w_gate")) ||
      failed(checkWeight(*this, getWUp(), ff, width, "w_up")))
    return failure();
  return checkActivation(*this, getType(), rows, ff, "result");
}

LogicalResult FinalHeadOp::verify() {
  if (failed(checkNormAttrs(*this, getEps())))
    return failure();
  if (getSoftcap().convertToFloat() < 0.0f)
    return emitOpError() << "softcap must be non-negative";
  auto input = getInput().getType();
  auto table = getTable().getType();
  if (failed(checkRank(*this, input, 2, "input")) ||
      failed(checkRank(*this, table, 2, "table")) ||
      failed(checkRank(*this, getType(), 2, "result")))
    return failure();
  int64_t width = input.getDimSize(1);
  if (failed(checkNormWeight(*this, getNorm(), width, "norm")))
    return failure();
  if (!dimsAgree(table.getDimSize(1), width))
    return emitOpError() << "table width " << table.getDimSize(1)
                         << " must equal the input width " << width;
  int64_t rows = static_cast<int64_t>(getRows());
  if (rows <= 0 || rows > table.getDimSize(0))
    return emitOpError() << "rows (" << rows << ") must be in [1, "
                         << table.getDimSize(0) << "]";
  // One row per input row, or a single row: the last position's logits.
  int64_t outRows = getType().getDimSize(0);
  if (outRows != 1 && !dimsAgree(outRows, input.getDimSize(0)))
    return emitOpError() << "result rows must equal the input rows, or be 1 "
                            "(the last position only), got "
                         << outRows;
  if (!dimsAgree(getType().getDimSize(1), rows))
    return emitOpError() << "result width " << getType().getDimSize(1)
                         << " must equal rows " << rows;
  return success();
}

#define GET_OP_CLASSES
#include "dialect/GemmaOps.cpp.inc"
