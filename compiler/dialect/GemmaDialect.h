//===- GemmaDialect.h - the gemma dialect ------------------------*- C++-*-===//
//
// The gemma dialect: model-level ops of the Gemma family (docs/ops.md). Tools
// that parse or build gemma IR register it with
// `registry.insert<gemmac::gemma::GemmaDialect>()`.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_DIALECT_GEMMADIALECT_H
#define GEMMAC_DIALECT_GEMMADIALECT_H

#include "mlir/IR/Dialect.h"

#include "dialect/GemmaDialect.h.inc"

#endif // GEMMAC_DIALECT_GEMMADIALECT_H
