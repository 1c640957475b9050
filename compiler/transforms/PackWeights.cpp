//===- PackWeights.cpp - weight layouts for the target plugin -------------===//
//
// The `packed` phase: gives each quantized weight the layout its target
// plugin's kernels read, so the runtime maps the module and computes from it
// with no repacking at load. Like gemma-quantize, the decision is a
// `gemma.weight` result type (visible with --compile-to=packed); the
// bytecode emitter writes the bytes.
//
// For the CPU the packed layout is Q4G32R8: 8 rows' blocks side by side, so
// an 8-row kernel reads one contiguous 144-byte run per 32 columns. It only
// pays (and only works) for ops that compute whole groups of output rows;
// embed reads single rows, so a table an embed uses stays row-major.
//
//===----------------------------------------------------------------------===//

#include "dialect/GemmaOps.h"
#include "dialect/GemmaTypes.h"
#include "transforms/Passes.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/MapVector.h"

namespace gemmac {
#define GEN_PASS_DEF_GEMMAPACKWEIGHTS
#include "transforms/Passes.h.inc"
} // namespace gemmac

using namespace mlir;
using namespace gemmac;
using namespace gemmac::gemma;

namespace {

/// Rows the CPU's packed kernels compute together (GEMMAC_DTYPE_Q4G32R8).
constexpr int64_t kCpuRowGroup = 8;

/// Ops whose CPU kernel reads a q4g32r8 weight operand 8 output rows at a
/// time. A weight with any other user (embed's row lookup, or an op added
/// later that this list does not know) keeps its row-major layout.
bool readsPackedOnCpu(Operation *user) {
  return isa<LinearOp, LmHeadOp, FinalHeadOp, QkvProjOp, GatedMlpOp>(user);
}

struct PackWeightsPass : gemmac::impl::GemmaPackWeightsBase<PackWeightsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (target != "cpu" && target != "none") {
      module.emitError() << "gemma-pack-weights: unknown target '" << target
                         << "'; expected cpu or none";
      return signalPassFailure();
    }
    if (target == "none")
      return;

    // One decision per name: every reference to a tensor is one stored copy.
    llvm::MapVector<StringRef, SmallVector<WeightOp>> byName;
    module.walk([&](WeightOp w) { byName[w.getName()].push_back(w); });

    Type packed = Q4G32R8Type::get(&getContext());
    for (auto &[name, ops] : byName) {
      auto type = cast<RankedTensorType>(ops.front().getType());
      if (!isa<Q4G32Type>(type.getElementType()) || type.getRank() != 2)
        continue;
      bool onlyRowGroupUsers = llvm::all_of(ops, [](WeightOp w) {
        return llvm::all_of(w->getUsers(), readsPackedOnCpu);
      });
      if (!onlyRowGroupUsers)
        continue; // an embed table (and so a tied head): stays q4g32
      if (type.getDimSize(0) % kCpuRowGroup != 0) {
        ops.front().emitRemark()
            << "weight '" << name << "' has " << type.getDimSize(0)
            << " rows, not a multiple of " << kCpuRowGroup
            << " (the rows !gemma.q4g32r8 packs together); it stays "
            << type.getElementType();
        continue;
      }
      auto newType = RankedTensorType::get(type.getShape(), packed);
      for (WeightOp w : ops)
        w.getResult().setType(newType);
    }
  }
};

} // namespace
