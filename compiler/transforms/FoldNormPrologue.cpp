//===- FoldNormPrologue.cpp - RMSNorm into the fused linears' prologue-----===//
//
// A norm whose only consumers are fused projections (qkv_proj, gated_mlp)
// need not be written to memory: each consumer normalizes its input rows as
// it loads them (the row's sum of squares is one cheap pass). Run after the
// projection fusions and after gemma-fuse-add-norm, which claims the norms
// that follow a residual add.
//
//===----------------------------------------------------------------------===//

#include "transforms/FusionUtils.h"
#include "transforms/Passes.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace gemmac {
#define GEN_PASS_DEF_GEMMAFOLDNORMPROLOGUE
#include "transforms/Passes.h.inc"
} // namespace gemmac

using namespace mlir;
using namespace gemmac;
using namespace gemmac::gemma;

namespace {

/// True when `user` can take `norm` as its prologue.
bool canFold(Operation *user, RmsNormOp norm) {
  if (auto qkv = dyn_cast<QkvProjOp>(user)) {
    if (qkv.getNorm() || qkv.getInput() != norm.getResult())
      return false;
    // One eps/offset serves every norm of the op.
    return !qkv.getQNorm() || sameNormAttrs(qkv.getEps(), qkv.getOffset(),
                                            norm.getEps(), norm.getOffset());
  }
  if (auto mlp = dyn_cast<GatedMlpOp>(user))
    return !mlp.getNorm() && mlp.getInput() == norm.getResult();
  return false;
}

struct FoldNormProloguePattern : OpRewritePattern<RmsNormOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(RmsNormOp norm,
                                PatternRewriter &rewriter) const override {
    if (!isRowNorm(norm))
      return rewriter.notifyMatchFailure(norm, "per-head norm");
    if (norm->use_empty() ||
        !llvm::all_of(norm->getUsers(),
                      [&](Operation *user) { return canFold(user, norm); }))
      return rewriter.notifyMatchFailure(norm, "a user cannot take the norm");

    Value x = norm.getInput(), w = norm.getWeight();
    for (Operation *user : llvm::make_early_inc_range(norm->getUsers())) {
      rewriter.setInsertionPoint(user);
      Location loc = rewriter.getFusedLoc({norm.getLoc(), user->getLoc()});
      if (auto qkv = dyn_cast<QkvProjOp>(user)) {
        auto fused = rewriter.create<QkvProjOp>(
            loc, qkv.getQ().getType(), qkv.getK().getType(),
            qkv.getV().getType(), x, w, qkv.getWq(), qkv.getWk(), qkv.getWv(),
            qkv.getQNorm(), qkv.getKNorm(), qkv.getHeadDimAttr(),
            qkv.getNumHeadsAttr(), qkv.getNumKvHeadsAttr(), qkv.getThetaAttr(),
            qkv.getRopeScaleAttr(), norm.getEpsAttr(), norm.getOffsetAttr());
        rewriter.replaceOp(qkv, fused.getResults());
      } else {
        auto mlp = cast<GatedMlpOp>(user);
        auto fused = rewriter.create<GatedMlpOp>(
            loc, mlp.getType(), x, w, mlp.getWGate(), mlp.getWUp(),
            norm.getEpsAttr(), norm.getOffsetAttr());
        rewriter.replaceOp(mlp, fused.getResult());
      }
    }
    rewriter.eraseOp(norm);
    return success();
  }
};

struct FoldNormProloguePass
    : gemmac::impl::GemmaFoldNormPrologueBase<FoldNormProloguePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FoldNormProloguePattern>(&getContext());
    if (failed(
            applyPatternsAndFoldGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
