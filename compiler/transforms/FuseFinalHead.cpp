//===- FuseFinalHead.cpp - final norm, tied head and final soft-cap--------===//
//
// The output head is the largest matrix product of a Gemma step (the whole
// embedding table). Fusing the final norm and soft-cap into it leaves one
// kernel; and since generation needs only the last position's logits, the
// prefill function can skip all other rows (`last-position-logits`), which
// for a 262144-row table is most of the prefill's work on small models.
//
//===----------------------------------------------------------------------===//

#include "transforms/FusionUtils.h"
#include "transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace gemmac {
#define GEN_PASS_DEF_GEMMAFUSEFINALHEAD
#include "transforms/Passes.h.inc"
} // namespace gemmac

using namespace mlir;
using namespace gemmac;
using namespace gemmac::gemma;

namespace {

constexpr llvm::StringLiteral kMaxTokens = "gemma.max_tokens";

struct FuseFinalHeadPattern : OpRewritePattern<LmHeadOp> {
  FuseFinalHeadPattern(MLIRContext *context, bool lastPositionLogits)
      : OpRewritePattern(context), lastPositionLogits(lastPositionLogits) {}

  LogicalResult matchAndRewrite(LmHeadOp head,
                                PatternRewriter &rewriter) const override {
    RmsNormOp norm = singleUseDef<RmsNormOp>(head.getInput());
    if (!norm || !isRowNorm(norm))
      return rewriter.notifyMatchFailure(head, "input is not a row norm");
    Operation *last = head;
    FloatAttr softcap = rewriter.getF32FloatAttr(0.0f);
    if (SoftcapOp cap = head->hasOneUse()
                            ? dyn_cast<SoftcapOp>(*head->getUsers().begin())
                            : nullptr) {
      last = cap;
      softcap = cap.getSoftcapAttr();
    }
    Value logits = last->getResult(0);
    auto type = cast<RankedTensorType>(logits.getType());

    // Only the last position when asked, in a multi-token function, and when
    // the logits go nowhere but out of the function.
    bool lastOnly = false;
    if (lastPositionLogits) {
      auto func = head->getParentOfType<func::FuncOp>();
      auto maxTokens =
          func ? func->getAttrOfType<IntegerAttr>(kMaxTokens) : IntegerAttr();
      lastOnly = maxTokens && maxTokens.getInt() > 1 &&
                 llvm::all_of(logits.getUsers(), [](Operation *user) {
                   return isa<func::ReturnOp>(user);
                 });
    }
    if (lastOnly)
      type =
          RankedTensorType::get({1, type.getDimSize(1)}, type.getElementType());

    rewriter.setInsertionPoint(last);
    auto fused = rewriter.create<FinalHeadOp>(
        rewriter.getFusedLoc({norm.getLoc(), head.getLoc(), last->getLoc()}),
        type, norm.getInput(), norm.getWeight(), head.getTable(),
        head.getRowsAttr(), norm.getEpsAttr(), norm.getOffsetAttr(), softcap);
    if (lastOnly) {
      // The function's result type changes with it.
      for (OpOperand &use : llvm::make_early_inc_range(logits.getUses()))
        rewriter.modifyOpInPlace(use.getOwner(), [&] { use.set(fused); });
      rewriter.eraseOp(last);
    } else {
      rewriter.replaceOp(last, fused.getResult());
    }
    if (last != head.getOperation())
      rewriter.eraseOp(head);
    rewriter.eraseOp(norm);
    return success();
  }

  bool lastPositionLogits;
};

struct FuseFinalHeadPass
    : gemmac::impl::GemmaFuseFinalHeadBase<FuseFinalHeadPass> {
  using GemmaFuseFinalHeadBase::GemmaFuseFinalHeadBase;

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseFinalHeadPattern>(&getContext(), lastPositionLogits);
    if (failed(
            applyPatternsAndFoldGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    // Keep each function's type in step with what it now returns.
    getOperation().walk([](func::FuncOp func) {
      if (func.isExternal())
        return;
      auto ret = cast<func::ReturnOp>(func.getBody().back().getTerminator());
      func.setType(FunctionType::get(func.getContext(), func.getArgumentTypes(),
                                     ret.getOperandTypes()));
    });
  }
};

} // namespace
