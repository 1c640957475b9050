//===- FuseGatedMlp.cpp - gate/up projections and GeGLU as one op----------===//
//
// Gemma's MLP is gelu_tanh(x wg^T) * (x wu^T): two projections of the same
// input and an elementwise epilogue. Fused, one kernel computes a gate row
// and the matching up row together and never writes either to memory.
//
//===----------------------------------------------------------------------===//

#include "transforms/FusionUtils.h"
#include "transforms/Passes.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace gemmac {
#define GEN_PASS_DEF_GEMMAFUSEGATEDMLP
#include "transforms/Passes.h.inc"
} // namespace gemmac

using namespace mlir;
using namespace gemmac;
using namespace gemmac::gemma;

namespace {

struct FuseGatedMlpPattern : OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MulOp mul,
                                PatternRewriter &rewriter) const override {
    // The mul is commutative: the gelu side is the gate.
    Value gateSide = mul.getLhs(), upSide = mul.getRhs();
    if (!singleUseDef<GeluTanhOp>(gateSide))
      std::swap(gateSide, upSide);
    GeluTanhOp gelu = singleUseDef<GeluTanhOp>(gateSide);
    if (!gelu)
      return rewriter.notifyMatchFailure(mul, "no gelu_tanh operand");
    LinearOp gate = singleUseDef<LinearOp>(gelu.getInput());
    LinearOp up = singleUseDef<LinearOp>(upSide);
    if (!gate || !up)
      return rewriter.notifyMatchFailure(mul, "operands are not projections");
    if (gate.getInput() != up.getInput())
      return rewriter.notifyMatchFailure(mul,
                                         "projections of different inputs");
    if (gate.getWeight().getType() != up.getWeight().getType())
      return rewriter.notifyMatchFailure(mul,
                                         "gate and up weights differ in type");

    rewriter.setInsertionPoint(mul);
    auto fused = rewriter.create<GatedMlpOp>(
        rewriter.getFusedLoc({gate.getLoc(), up.getLoc(), mul.getLoc()}),
        mul.getType(), gate.getInput(), /*norm=*/Value(), gate.getWeight(),
        up.getWeight(), rewriter.getF32FloatAttr(1.0e-6f),
        rewriter.getF32FloatAttr(1.0f));
    rewriter.replaceOp(mul, fused.getResult());
    rewriter.eraseOp(gelu);
    rewriter.eraseOp(gate);
    rewriter.eraseOp(up);
    return success();
  }
};

struct FuseGatedMlpPass
    : gemmac::impl::GemmaFuseGatedMlpBase<FuseGatedMlpPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseGatedMlpPattern>(&getContext());
    if (failed(
            applyPatternsAndFoldGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
