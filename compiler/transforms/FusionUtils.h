//===- FusionUtils.h - helpers shared by the fusion passes ------*- C++-*-===//
//
// Small matchers the Fuse*/Fold* passes use to recognize the chains the
// importer writes. Every fusion must replace exactly the chain it matched,
// so each matcher also checks that the intermediate values have no other
// users.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_TRANSFORMS_FUSIONUTILS_H
#define GEMMAC_TRANSFORMS_FUSIONUTILS_H

#include "dialect/GemmaOps.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/PatternMatch.h"

namespace gemmac {

/// True when `norm` normalizes whole rows (its weight is as wide as its
/// input), not per head.
inline bool isRowNorm(gemma::RmsNormOp norm) {
  auto input = llvm::cast<mlir::RankedTensorType>(norm.getInput().getType());
  auto weight = llvm::cast<mlir::RankedTensorType>(norm.getWeight().getType());
  int64_t width = input.getDimSize(input.getRank() - 1);
  return !mlir::ShapedType::isDynamic(width) && weight.getDimSize(0) == width;
}

/// True when two norms compute with the same eps and offset.
inline bool sameNormAttrs(llvm::APFloat epsA, llvm::APFloat offsetA,
                          llvm::APFloat epsB, llvm::APFloat offsetB) {
  return epsA.bitwiseIsEqual(epsB) && offsetA.bitwiseIsEqual(offsetB);
}

/// The op defining `value` if it is an `OpT` whose result `value` has exactly
/// one user; null otherwise.
template <typename OpT> OpT singleUseDef(mlir::Value value) {
  if (!value || !value.hasOneUse())
    return nullptr;
  return value.getDefiningOp<OpT>();
}

} // namespace gemmac

#endif // GEMMAC_TRANSFORMS_FUSIONUTILS_H
