//===- GemmaTypes.h - quantized weight types --------------------*- C++ -*-===//
//
// `!gemma.q8c`, `!gemma.q4g32`, `!gemma.q4g128` and the packed
// `!gemma.q4g32r8`: the element types of quantized weight tensors
// (docs/quantization.md). The quantize and pack passes give them to
// `gemma.weight` results, the op verifiers check their shape rules with
// verifyWeightLayout(), and the bytecode emitter maps them to DTypes.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_DIALECT_GEMMATYPES_H
#define GEMMAC_DIALECT_GEMMATYPES_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"
#include "mlir/IR/Types.h"

#define GET_TYPEDEF_CLASSES
#include "dialect/GemmaTypes.h.inc"

namespace gemmac::gemma {

/// True for the quantized weight element types.
bool isQuantizedType(mlir::Type element);

/// Elements of one row that share a scale: 32 (q4g32, q4g32r8), 128
/// (q4g128), 0 for q8c (the whole row, any length) and for every
/// unquantized type.
int64_t quantGroupSize(mlir::Type element);

/// Rows a packed layout interleaves: 8 for q4g32r8, 1 for every other type.
/// A weight's rows must be a multiple of it.
int64_t packedRowGroup(mlir::Type element);

/// Checks the shape rules of a weight tensor type used by `op` as `what`
/// ("table", "weight", "result"): a quantized element type needs a rank-2
/// `[rows, cols]` tensor whose cols are static and a multiple of the group
/// size (and, packed, whose rows are a multiple of the row group).
/// Unquantized types always pass.
mlir::LogicalResult verifyWeightLayout(mlir::Operation *op, mlir::Type type,
                                       llvm::StringRef what);

} // namespace gemmac::gemma

#endif // GEMMAC_DIALECT_GEMMATYPES_H
