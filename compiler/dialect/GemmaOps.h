//===- GemmaOps.h - ops of the gemma dialect ---------------------*- C++-*-===//
//
// Op classes generated from GemmaOps.td, for the importer, the passes and the
// bytecode emitter.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_DIALECT_GEMMAOPS_H
#define GEMMAC_DIALECT_GEMMAOPS_H

#include "dialect/GemmaDialect.h"
#include "dialect/GemmaTypes.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace gemmac::gemma {

/// The KV cache that attention ops read and append to.
struct KVCacheResource
    : public mlir::SideEffects::Resource::Base<KVCacheResource> {
  llvm::StringRef getName() final { return "gemma.kv_cache"; }
};

} // namespace gemmac::gemma

#define GET_OP_CLASSES
#include "dialect/GemmaOps.h.inc"

#endif // GEMMAC_DIALECT_GEMMAOPS_H
