//===- FoldEmbedScale.cpp - an embedding's scale into the embed op---------===//
//
// Gemma scales embeddings by sqrt(hidden). When that scale reaches the IR as
// a separate `scale` op (an importer of another format, or a hand-written
// module), folding it into the lookup saves a pass over the activations. The
// fold must not change a single bit: (x * a) * b equals x * (a * b) for every
// x only if one factor is a power of two (scaling by it is exact) and a * b
// is itself exact, so only those cases fold.
//
//===----------------------------------------------------------------------===//

#include "transforms/Passes.h"

#include "dialect/GemmaOps.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

namespace gemmac {
#define GEN_PASS_DEF_GEMMAFOLDEMBEDSCALE
#include "transforms/Passes.h.inc"
} // namespace gemmac

using namespace mlir;
using namespace gemmac::gemma;

namespace {

bool isPowerOfTwo(float v) {
  int exponent;
  return std::isnormal(v) && std::frexp(std::fabs(v), &exponent) == 0.5f;
}

struct FoldEmbedScalePattern : OpRewritePattern<ScaleOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ScaleOp scale,
                                PatternRewriter &rewriter) const override {
    auto embed = scale.getInput().getDefiningOp<EmbedOp>();
    if (!embed || !embed->hasOneUse())
      return rewriter.notifyMatchFailure(scale, "not a single-use embed");
    float a = embed.getScale().convertToFloat();
    float b = scale.getScale().convertToFloat();
    double exact = static_cast<double>(a) * static_cast<double>(b);
    float product = a * b;
    if (!(isPowerOfTwo(a) || isPowerOfTwo(b)) || !std::isnormal(product) ||
        static_cast<double>(product) != exact)
      return rewriter.notifyMatchFailure(scale, "the fold would round");
    rewriter.modifyOpInPlace(
        embed, [&] { embed.setScaleAttr(rewriter.getF32FloatAttr(product)); });
    rewriter.replaceOp(scale, embed.getResult());
    return success();
  }
};

struct FoldEmbedScalePass
    : gemmac::impl::GemmaFoldEmbedScaleBase<FoldEmbedScalePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FoldEmbedScalePattern>(&getContext());
    if (failed(
            applyPatternsAndFoldGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
