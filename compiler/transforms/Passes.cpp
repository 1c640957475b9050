//===- Passes.cpp - registration and the compile pipeline------------------===//

#include "transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace gemmac {
namespace generated {
// The generated registerGemmaPasses() is an inline function with the same
// name as the public one in Passes.h; a nested namespace keeps them apart.
#define GEN_PASS_REGISTRATION
#include "transforms/Passes.h.inc"
} // namespace generated

void registerGemmaPasses() {
  generated::registerGemmaPasses();
  mlir::PassPipelineRegistration<>(
      "gemma-compile-pipeline",
      "The pipeline gemma-compile runs after fusion, gemma-quantize and "
      "gemma-pack-weights (its planned phase): gemma-verify-model, "
      "canonicalize, gemma-plan-memory",
      [](mlir::OpPassManager &pm) { buildCompilePipeline(pm); });
}

void buildCompilePipeline(mlir::OpPassManager &pm) {
  pm.addPass(createGemmaVerifyModel());
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addNestedPass<mlir::func::FuncOp>(createGemmaPlanMemory());
}

} // namespace gemmac
