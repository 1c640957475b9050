//===- FuseAddNorm.cpp - residual add and the following RMSNorm------------===//
//
// Each Gemma block ends with `x = x + f(x)` and the next block starts by
// normalizing x. Fused, one kernel reads both summands once, writes the new
// residual and its normalized copy, instead of writing the sum and reading
// it back for the norm.
//
//===----------------------------------------------------------------------===//

#include "transforms/FusionUtils.h"
#include "transforms/Passes.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace gemmac {
#define GEN_PASS_DEF_GEMMAFUSEADDNORM
#include "transforms/Passes.h.inc"
} // namespace gemmac

using namespace mlir;
using namespace gemmac;
using namespace gemmac::gemma;

namespace {

struct FuseAddNormPattern : OpRewritePattern<RmsNormOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(RmsNormOp norm,
                                PatternRewriter &rewriter) const override {
    auto add = norm.getInput().getDefiningOp<AddOp>();
    if (!add)
      return rewriter.notifyMatchFailure(norm, "input is not an add");
    if (!isRowNorm(norm))
      return rewriter.notifyMatchFailure(norm, "per-head norm");
    if (add->getBlock() != norm->getBlock())
      return rewriter.notifyMatchFailure(norm, "add in another block");
    // The fused op replaces the sum where the norm is, so every other user
    // of the sum must come after the norm.
    for (Operation *user : add->getUsers())
      if (user != norm.getOperation() &&
          (user->getBlock() != norm->getBlock() ||
           !norm->isBeforeInBlock(user)))
        return rewriter.notifyMatchFailure(norm, "sum used before the norm");

    rewriter.setInsertionPoint(norm);
    auto fused = rewriter.create<AddRmsNormOp>(
        rewriter.getFusedLoc({add.getLoc(), norm.getLoc()}), add.getType(),
        norm.getType(), add.getLhs(), add.getRhs(), norm.getWeight(),
        norm.getEpsAttr(), norm.getOffsetAttr());
    rewriter.replaceOp(norm, fused.getNormed());
    rewriter.replaceOp(add, fused.getSum());
    return success();
  }
};

struct FuseAddNormPass : gemmac::impl::GemmaFuseAddNormBase<FuseAddNormPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseAddNormPattern>(&getContext());
    if (failed(
            applyPatternsAndFoldGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
