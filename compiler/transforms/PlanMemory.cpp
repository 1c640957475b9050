//===- PlanMemory.cpp - activation arena by liveness-----------------------===//
//
// The runtime allocates one activation arena per function, sized for the
// function's largest call (`gemma.max_tokens`), and every intermediate tensor
// lives at a fixed offset in it. Values that are never live at the same time
// share bytes, so the arena is much smaller than the sum of all activations.
//
// Placement is greedy first-fit in program order: each value goes to the
// lowest 64-byte-aligned offset whose bytes no already-placed value with an
// overlapping live range occupies. First-fit rather than best-fit because it
// is simple to predict from the IR (the lit tests check exact offsets) and, on
// the straight-line chain of a decoder, it reuses the same few slots.
//
//===----------------------------------------------------------------------===//

#include "dialect/GemmaOps.h"
#include "transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/MathExtras.h"

#include <limits>

namespace gemmac {
#define GEN_PASS_DEF_GEMMAPLANMEMORY
#include "transforms/Passes.h.inc"
} // namespace gemmac

using namespace mlir;
using namespace gemmac::gemma;

namespace {

constexpr llvm::StringLiteral kMaxTokens = "gemma.max_tokens";
constexpr llvm::StringLiteral kArenaOffset = "gemma.arena_offset";
constexpr llvm::StringLiteral kArenaOffsets = "gemma.arena_offsets";
constexpr llvm::StringLiteral kArenaSize = "gemma.arena_size";
constexpr llvm::StringLiteral kArenaNaiveSize = "gemma.arena_naive_size";
constexpr int64_t kAlignment = 64;

/// One planned value: its live range in op indices (inclusive) and its slot.
struct Slot {
  Value value;
  int64_t start;
  int64_t end;
  int64_t size;
  int64_t offset = -1;
};

bool rangesOverlap(const Slot &a, const Slot &b) {
  return a.start <= b.end && b.start <= a.end;
}

/// Bytes of `type` with every dynamic dim bound to `maxTokens`, rounded up to
/// kAlignment; failure (with a diagnostic at `loc`) when the type is not a
/// ranked tensor of whole bytes or the size overflows.
FailureOr<int64_t> slotSize(Location loc, Type type, int64_t maxTokens) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor)
    return emitError(loc) << "cannot plan memory for a value of type " << type
                          << ": expected a ranked tensor";
  unsigned bits = tensor.getElementTypeBitWidth();
  if (bits == 0 || bits % 8 != 0)
    return emitError(loc) << "cannot plan memory for " << type
                          << ": element type is not a whole number of bytes";
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max() / 2;
  int64_t bytes = bits / 8;
  for (int64_t dim : tensor.getShape()) {
    int64_t extent = ShapedType::isDynamic(dim) ? maxTokens : dim;
    if (extent != 0 && bytes > kMax / extent)
      return emitError(loc) << "cannot plan memory for " << type
                            << ": size overflows at max_tokens " << maxTokens;
    bytes *= extent;
  }
  return static_cast<int64_t>(llvm::alignTo(bytes, kAlignment));
}

/// Lowest aligned offset at which `slot` overlaps no placed slot in
/// `conflicts`, which must be sorted by offset.
int64_t firstFit(const Slot &slot, llvm::ArrayRef<const Slot *> conflicts) {
  int64_t offset = 0;
  for (const Slot *other : conflicts) {
    if (offset + slot.size <= other->offset)
      break;
    // Sizes are multiples of kAlignment, so every end is aligned.
    offset = std::max(offset, other->offset + other->size);
  }
  return offset;
}

struct PlanMemoryPass : gemmac::impl::GemmaPlanMemoryBase<PlanMemoryPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    auto maxTokensAttr = func->getAttrOfType<IntegerAttr>(kMaxTokens);
    if (!maxTokensAttr || maxTokensAttr.getInt() <= 0) {
      func.emitError() << "gemma-plan-memory needs a positive integer '"
                       << kMaxTokens << "' on @" << func.getSymName()
                       << " to size the '?' dims";
      return signalPassFailure();
    }
    int64_t maxTokens = maxTokensAttr.getInt();
    if (!func.getBody().hasOneBlock()) {
      func.emitError() << "gemma-plan-memory expects @" << func.getSymName()
                       << " to have a single block";
      return signalPassFailure();
    }
    Block &body = func.getBody().front();

    // Number the ops; arguments are live from before the first op, and a
    // returned value stays live through the terminator, the last op.
    llvm::DenseMap<Operation *, int64_t> index;
    int64_t next = 0;
    for (Operation &op : body)
      index[&op] = next++;

    llvm::SmallVector<Slot> slots;
    auto addSlot = [&](Value value, int64_t start, Location loc) {
      FailureOr<int64_t> size = slotSize(loc, value.getType(), maxTokens);
      if (failed(size))
        return failure();
      int64_t end = start;
      for (Operation *user : value.getUsers()) {
        // A use inside a nested region keeps the value live until the op
        // that holds the region is done.
        Operation *owner = body.findAncestorOpInBlock(*user);
        if (owner)
          end = std::max(end, index.lookup(owner));
      }
      slots.push_back({value, start, end, *size});
      return success();
    };

    for (BlockArgument arg : body.getArguments())
      if (failed(addSlot(arg, /*start=*/-1, func.getLoc())))
        return signalPassFailure();
    for (Operation &op : body) {
      if (isa<WeightOp>(op) || op.getNumResults() == 0)
        continue;
      // Every result of a multi-result op (a fused op) is live from the op
      // on, so its results never share bytes with each other or the inputs.
      for (Value result : op.getResults())
        if (failed(addSlot(result, index[&op], op.getLoc())))
          return signalPassFailure();
    }

    // Place in program order (slots are already in it).
    int64_t arenaSize = 0, naiveSize = 0;
    for (size_t i = 0; i < slots.size(); ++i) {
      Slot &slot = slots[i];
      llvm::SmallVector<const Slot *> conflicts;
      for (size_t j = 0; j < i; ++j)
        if (rangesOverlap(slot, slots[j]))
          conflicts.push_back(&slots[j]);
      llvm::sort(conflicts, [](const Slot *a, const Slot *b) {
        return a->offset < b->offset;
      });
      slot.offset = firstFit(slot, conflicts);
      arenaSize = std::max(arenaSize, slot.offset + slot.size);
      naiveSize += slot.size;
    }

    Builder b(&getContext());
    llvm::DenseMap<Operation *, llvm::SmallVector<int64_t>> multi;
    for (const Slot &slot : slots) {
      IntegerAttr offset = b.getI64IntegerAttr(slot.offset);
      if (auto arg = dyn_cast<BlockArgument>(slot.value)) {
        func.setArgAttr(arg.getArgNumber(), kArenaOffset, offset);
        continue;
      }
      Operation *def = slot.value.getDefiningOp();
      if (def->getNumResults() == 1) {
        def->setAttr(kArenaOffset, offset);
        continue;
      }
      auto &offsets = multi[def];
      offsets.resize(def->getNumResults(), -1);
      offsets[cast<OpResult>(slot.value).getResultNumber()] = slot.offset;
    }
    for (auto &[def, offsets] : multi)
      def->setAttr(kArenaOffsets, b.getDenseI64ArrayAttr(offsets));
    func->setAttr(kArenaSize, b.getI64IntegerAttr(arenaSize));
    func->setAttr(kArenaNaiveSize, b.getI64IntegerAttr(naiveSize));
  }
};

} // namespace
