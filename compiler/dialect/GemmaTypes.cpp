//===- GemmaTypes.cpp - quantized weight types of the gemma dialect--------===//

#include "dialect/GemmaTypes.h"
#include "dialect/GemmaDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace gemmac::gemma;

#define GET_TYPEDEF_CLASSES
#include "dialect/GemmaTypes.cpp.inc"

namespace {

/// The quantized types have no parameters: nothing may follow the mnemonic.
LogicalResult parseNoParameters(AsmParser &parser, StringRef mnemonic) {
  if (succeeded(parser.parseOptionalLess()))
    return parser.emitError(parser.getCurrentLocation(), "!gemma.")
           << mnemonic << " takes no parameters";
  return success();
}

} // namespace

Type Q8CType::parse(AsmParser &parser) {
  if (failed(parseNoParameters(parser, getMnemonic())))
    return {};
  return get(parser.getContext());
}
void Q8CType::print(AsmPrinter &) const {}

Type Q4G32Type::parse(AsmParser &parser) {
  if (failed(parseNoParameters(parser, getMnemonic())))
    return {};
  return get(parser.getContext());
}
void Q4G32Type::print(AsmPrinter &) const {}

Type Q4G128Type::parse(AsmParser &parser) {
  if (failed(parseNoParameters(parser, getMnemonic())))
    return {};
  return get(parser.getContext());
}
void Q4G128Type::print(AsmPrinter &) const {}

Type Q4G32R8Type::parse(AsmParser &parser) {
  if (failed(parseNoParameters(parser, getMnemonic())))
    return {};
  return get(parser.getContext());
}
void Q4G32R8Type::print(AsmPrinter &) const {}

namespace gemmac::gemma {

bool isQuantizedType(Type element) {
  return isa<Q8CType, Q4G32Type, Q4G128Type, Q4G32R8Type>(element);
}

int64_t quantGroupSize(Type element) {
  if (isa<Q4G32Type, Q4G32R8Type>(element))
    return 32;
  if (isa<Q4G128Type>(element))
    return 128;
  return 0;
}

int64_t packedRowGroup(Type element) {
  return isa<Q4G32R8Type>(element) ? 8 : 1;
}

LogicalResult verifyWeightLayout(Operation *op, Type type, StringRef what) {
  auto ranked = dyn_cast<RankedTensorType>(type);
  if (!ranked || !isQuantizedType(ranked.getElementType()))
    return success();
  if (ranked.getRank() != 2)
    return op->emitOpError()
           << what << " of quantized type " << ranked.getElementType()
           << " must be a rank-2 [rows, cols] tensor, got " << type;
  int64_t cols = ranked.getDimSize(1);
  if (ShapedType::isDynamic(cols) ||
      ShapedType::isDynamic(ranked.getDimSize(0)))
    return op->emitOpError()
           << what << " of quantized type " << ranked.getElementType()
           << " must have a static shape, got " << type;
  int64_t group = quantGroupSize(ranked.getElementType());
  if (group > 0 && cols % group != 0)
    return op->emitOpError()
           << what << " " << type << " has " << cols
           << " cols, which is not a multiple of " << group
           << " (the group size of " << ranked.getElementType() << ")";
  int64_t rowGroup = packedRowGroup(ranked.getElementType());
  if (ranked.getDimSize(0) % rowGroup != 0)
    return op->emitOpError()
           << what << " " << type << " has " << ranked.getDimSize(0)
           << " rows, which is not a multiple of " << rowGroup << " (the rows "
           << ranked.getElementType() << " packs together)";
  return success();
}

} // namespace gemmac::gemma
