//===- Passes.h - passes over the gemma dialect ------------------*- C++-*-===//
//
// The passes that take imported gemma IR to the form the bytecode emitter
// expects: model verification, fusion, quantization, target packing,
// canonicalization and memory planning.
// gemma-compile builds its pipeline with buildCompilePipeline(); gemma-opt
// calls registerGemmaPasses() so lit tests can run each pass by name.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_TRANSFORMS_PASSES_H
#define GEMMAC_TRANSFORMS_PASSES_H

#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

#include <memory>

namespace mlir {
class ModuleOp;
namespace func {
class FuncOp;
} // namespace func
} // namespace mlir

namespace gemmac {

#define GEN_PASS_DECL
#include "transforms/Passes.h.inc"

/// Registers every gemma pass and the `gemma-compile-pipeline` pipeline with
/// the global pass registry (for gemma-opt's command line). Call it once from
/// main(); it is not needed to build pipelines in code.
void registerGemmaPasses();

/// Appends the compile pipeline to `pm`, which must run on builtin.module:
/// gemma-verify-model, canonicalize, then gemma-plan-memory on each function.
void buildCompilePipeline(mlir::OpPassManager &pm);

/// Options of the fusion phase (gemma-compile's `fused` phase).
struct FusionOptions {
  /// Prefill computes only the last position's logits (final_head with a
  /// one-row result); decode is unaffected.
  bool lastPositionLogits = false;
};

/// Appends the fusion passes, in order, to `pm` (on builtin.module):
/// gemma-fold-embed-scale, gemma-fuse-final-head, gemma-fuse-qkv,
/// gemma-fuse-gated-mlp, gemma-fuse-add-norm, gemma-fold-norm-prologue,
/// then canonicalize and cse. Defined in Fusion.cpp.
void addFusionPasses(mlir::OpPassManager &pm, const FusionOptions &options);

} // namespace gemmac

#endif // GEMMAC_TRANSFORMS_PASSES_H
