//===- FuseQkv.cpp - q/k/v projections, QK-norm and RoPE as one op---------===//
//
// The importer writes each projection of an attention block as its own chain:
// linear -> (rms_norm per head) -> rope for q and k, linear for v, all from
// the same normalized input. Fused, one kernel streams the three weights in
// one pass over the input rows and applies QK-norm and RoPE in registers.
//
//===----------------------------------------------------------------------===//

#include "transforms/FusionUtils.h"
#include "transforms/Passes.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace gemmac {
#define GEN_PASS_DEF_GEMMAFUSEQKV
#include "transforms/Passes.h.inc"
} // namespace gemmac

using namespace mlir;
using namespace gemmac;
using namespace gemmac::gemma;

namespace {

/// `rope(rms_norm(linear(x, w), n))` or `rope(linear(x, w))`, each value
/// used once.
struct RopedProjection {
  RopeOp rope;
  RmsNormOp norm; // null without QK-norm
  LinearOp linear;
};

FailureOr<RopedProjection> matchRoped(Value value) {
  RopedProjection p;
  p.rope = singleUseDef<RopeOp>(value);
  if (!p.rope)
    return failure();
  Value inner = p.rope.getInput();
  if ((p.norm = singleUseDef<RmsNormOp>(inner)))
    inner = p.norm.getInput();
  else if (!inner.hasOneUse())
    return failure();
  p.linear = singleUseDef<LinearOp>(inner);
  if (!p.linear)
    return failure();
  return p;
}

struct FuseQkvPattern : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AttentionOp attn,
                                PatternRewriter &rewriter) const override {
    FailureOr<RopedProjection> q = matchRoped(attn.getQuery());
    FailureOr<RopedProjection> k = matchRoped(attn.getKey());
    LinearOp v = singleUseDef<LinearOp>(attn.getValue());
    if (failed(q) || failed(k) || !v)
      return rewriter.notifyMatchFailure(attn, "not a q/k/v projection chain");
    Value x = v.getInput();
    if (q->linear.getInput() != x || k->linear.getInput() != x)
      return rewriter.notifyMatchFailure(attn,
                                         "projections of different inputs");
    RopeOp qr = q->rope, kr = k->rope;
    if (qr.getHeadDim() != kr.getHeadDim() ||
        qr.getHeadDim() != attn.getHeadDim() ||
        !qr.getTheta().bitwiseIsEqual(kr.getTheta()) ||
        !qr.getRopeScale().bitwiseIsEqual(kr.getRopeScale()))
      return rewriter.notifyMatchFailure(attn, "q and k ropes disagree");
    if (bool(q->norm) != bool(k->norm))
      return rewriter.notifyMatchFailure(attn, "QK-norm on only one side");

    Builder b(rewriter.getContext());
    Value qNorm, kNorm;
    FloatAttr eps = b.getF32FloatAttr(1.0e-6f),
              offset = b.getF32FloatAttr(1.0f);
    if (q->norm) {
      RmsNormOp qn = q->norm, kn = k->norm;
      auto width = [](RmsNormOp n) {
        return cast<RankedTensorType>(n.getWeight().getType()).getDimSize(0);
      };
      if (width(qn) != static_cast<int64_t>(attn.getHeadDim()) ||
          width(kn) != static_cast<int64_t>(attn.getHeadDim()))
        return rewriter.notifyMatchFailure(attn, "QK-norm is not per head");
      if (!sameNormAttrs(qn.getEps(), qn.getOffset(), kn.getEps(),
                         kn.getOffset()))
        return rewriter.notifyMatchFailure(attn, "QK-norms disagree");
      qNorm = qn.getWeight();
      kNorm = kn.getWeight();
      eps = qn.getEpsAttr();
      offset = qn.getOffsetAttr();
    }

    SmallVector<Location> locs = {q->linear.getLoc(), k->linear.getLoc(),
                                  v.getLoc(), qr.getLoc(), kr.getLoc()};
    rewriter.setInsertionPoint(attn);
    auto fused = rewriter.create<QkvProjOp>(
        rewriter.getFusedLoc(locs), attn.getQuery().getType(),
        attn.getKey().getType(), attn.getValue().getType(), x,
        /*norm=*/Value(), q->linear.getWeight(), k->linear.getWeight(),
        v.getWeight(), qNorm, kNorm, attn.getHeadDimAttr(),
        attn.getNumHeadsAttr(), attn.getNumKvHeadsAttr(), qr.getThetaAttr(),
        qr.getRopeScaleAttr(), eps, offset);
    rewriter.modifyOpInPlace(attn, [&] {
      attn.getQueryMutable().assign(fused.getQ());
      attn.getKeyMutable().assign(fused.getK());
      attn.getValueMutable().assign(fused.getV());
    });
    // The chain is now unused; erase it users first.
    for (RopedProjection *p : {&*q, &*k}) {
      rewriter.eraseOp(p->rope);
      if (p->norm)
        rewriter.eraseOp(p->norm);
      rewriter.eraseOp(p->linear);
    }
    rewriter.eraseOp(v);
    return success();
  }
};

struct FuseQkvPass : gemmac::impl::GemmaFuseQkvBase<FuseQkvPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseQkvPattern>(&getContext());
    if (failed(
            applyPatternsAndFoldGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
