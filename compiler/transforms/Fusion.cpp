//===- Fusion.cpp - the fusion phase of the compile pipeline---------------===//

#include "transforms/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

namespace gemmac {

void addFusionPasses(mlir::OpPassManager &pm, const FusionOptions &options) {
  pm.addPass(createGemmaFoldEmbedScale());
  // The final norm goes to the head before gemma-fuse-add-norm could claim
  // it for the last residual add.
  GemmaFuseFinalHeadOptions head;
  head.lastPositionLogits = options.lastPositionLogits;
  pm.addPass(createGemmaFuseFinalHead(head));
  pm.addPass(createGemmaFuseQkv());
  pm.addPass(createGemmaFuseGatedMlp());
  // Add+norm before the prologue fold: fusing the add saves a kernel and a
  // pass over the residual, folding the norm only the norm's write.
  pm.addPass(createGemmaFuseAddNorm());
  pm.addPass(createGemmaFoldNormPrologue());
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(mlir::createCSEPass());
}

} // namespace gemmac
