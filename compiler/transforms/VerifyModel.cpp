//===- VerifyModel.cpp - model-level invariants----------------------------===//
//
// Op verifiers see one op at a time. The runtime also relies on facts that
// span ops and functions: the two entry points and their signatures, one KV
// cache per attention layer shared by prefill and decode, and one stored copy
// per weight name. This pass checks those, with a located error for each.
//
//===----------------------------------------------------------------------===//

#include "dialect/GemmaOps.h"
#include "transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

namespace gemmac {
#define GEN_PASS_DEF_GEMMAVERIFYMODEL
#include "transforms/Passes.h.inc"
} // namespace gemmac

using namespace mlir;
using namespace gemmac::gemma;

namespace {

constexpr llvm::StringLiteral kMaxTokens = "gemma.max_tokens";

/// Checks the signature and `gemma.max_tokens` of an entry point.
/// `requiredMaxTokens` is 0 when any positive value is accepted.
LogicalResult verifyEntry(func::FuncOp func, int64_t requiredMaxTokens) {
  FunctionType type = func.getFunctionType();
  auto isTokens = [](Type t) {
    auto tensor = dyn_cast<RankedTensorType>(t);
    return tensor && tensor.getRank() == 1 && tensor.isDynamicDim(0) &&
           tensor.getElementType().isInteger(32);
  };
  if (type.getNumInputs() != 1 || !isTokens(type.getInput(0)))
    return func.emitError() << "@" << func.getSymName()
                            << " must take exactly one tensor<?xi32> (the "
                               "tokens), got "
                            << type;
  auto result = type.getNumResults() == 1
                    ? dyn_cast<RankedTensorType>(type.getResult(0))
                    : RankedTensorType();
  if (!result || result.getRank() != 2 || !result.getElementType().isF32())
    return func.emitError() << "@" << func.getSymName()
                            << " must return one rank-2 f32 tensor (the "
                               "logits), got "
                            << type;

  auto maxTokens = func->getAttrOfType<IntegerAttr>(kMaxTokens);
  if (!maxTokens || !maxTokens.getType().isInteger(64))
    return func.emitError() << "@" << func.getSymName() << " needs an i64 '"
                            << kMaxTokens << "' attribute";
  int64_t value = maxTokens.getInt();
  if (value <= 0)
    return func.emitError() << "@" << func.getSymName() << " '" << kMaxTokens
                            << "' must be positive, got " << value;
  if (requiredMaxTokens > 0 && value != requiredMaxTokens)
    return func.emitError()
           << "@" << func.getSymName() << " '" << kMaxTokens << "' must be "
           << requiredMaxTokens << ", got " << value;
  return success();
}

/// Collects the attention ops of `func` by layer, checking that the ids are
/// unique and dense from 0.
LogicalResult collectLayers(func::FuncOp func,
                            llvm::SmallVectorImpl<AttentionOp> &layers) {
  llvm::DenseMap<int64_t, AttentionOp> byLayer;
  llvm::SmallVector<AttentionOp> inOrder; // for deterministic diagnostics
  bool unique = true;
  func.walk([&](AttentionOp op) {
    inOrder.push_back(op);
    // The accessor is unsigned; the op verifier has rejected negative ids.
    int64_t layer = static_cast<int64_t>(op.getLayer());
    auto [it, inserted] = byLayer.try_emplace(layer, op);
    if (inserted)
      return;
    InFlightDiagnostic diag =
        op.emitError() << "attention layer " << layer << " appears twice in @"
                       << func.getSymName() << "; each layer owns one KV cache";
    diag.attachNote(it->second.getLoc()) << "first use of layer " << layer;
    unique = false;
  });
  if (!unique)
    return failure();
  int64_t count = byLayer.size();
  layers.assign(count, AttentionOp());
  bool dense = true;
  for (AttentionOp op : inOrder) {
    int64_t layer = static_cast<int64_t>(op.getLayer());
    if (layer >= 0 && layer < count) {
      layers[layer] = op;
      continue;
    }
    op.emitError() << "attention layer ids in @" << func.getSymName()
                   << " must be 0.." << count - 1 << " (there are " << count
                   << " attention ops), got " << layer;
    dense = false;
  }
  return success(dense);
}

/// Prefill writes each layer's KV cache and decode reads it: the cache
/// geometry of every layer must agree between the two.
LogicalResult verifyLayersAgree(func::FuncOp prefill, func::FuncOp decode,
                                llvm::ArrayRef<AttentionOp> prefillLayers,
                                llvm::ArrayRef<AttentionOp> decodeLayers) {
  if (prefillLayers.size() != decodeLayers.size())
    return decode.emitError()
           << "@decode has " << decodeLayers.size()
           << " attention layers but @prefill has " << prefillLayers.size();
  for (size_t i = 0, e = decodeLayers.size(); i != e; ++i) {
    AttentionOp p = prefillLayers[i], d = decodeLayers[i];
    if (p.getNumKvHeads() == d.getNumKvHeads() &&
        p.getHeadDim() == d.getHeadDim() && p.getWindow() == d.getWindow())
      continue;
    InFlightDiagnostic diag = d.emitError()
                              << "attention layer " << d.getLayer()
                              << " differs between @prefill and @decode: "
                                 "(num_kv_heads, head_dim, window) = ("
                              << d.getNumKvHeads() << ", " << d.getHeadDim()
                              << ", " << d.getWindow() << ") here, ("
                              << p.getNumKvHeads() << ", " << p.getHeadDim()
                              << ", " << p.getWindow() << ") in @prefill";
    diag.attachNote(p.getLoc()) << "@prefill's layer " << p.getLayer();
    return diag;
  }
  return success();
}

/// The emitter stores each weight name once, so every reference to a name
/// must describe the same bytes.
LogicalResult verifyWeights(ModuleOp module) {
  llvm::StringMap<WeightOp> first;
  bool ok = true;
  module.walk([&](WeightOp op) {
    auto [it, inserted] = first.try_emplace(op.getName(), op);
    if (inserted)
      return;
    WeightOp other = it->second;
    auto report = [&](StringRef field, auto here, auto there) {
      InFlightDiagnostic diag =
          op.emitError() << "weight \"" << op.getName()
                         << "\" differs from its first use: " << field << " "
                         << here << " here, " << there << " there";
      diag.attachNote(other.getLoc())
          << "first use of \"" << op.getName() << "\"";
      ok = false;
    };
    if (op.getType() != other.getType())
      report("type", op.getType(), other.getType());
    else if (op.getFile() != other.getFile())
      report("file", op.getFileAttr(), other.getFileAttr());
    else if (op.getOffset() != other.getOffset())
      report("offset", op.getOffset(), other.getOffset());
    else if (op.getSourceDtype() != other.getSourceDtype())
      report("source_dtype", op.getSourceDtypeAttr(),
             other.getSourceDtypeAttr());
  });
  return success(ok);
}

struct VerifyModelPass : gemmac::impl::GemmaVerifyModelBase<VerifyModelPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    bool ok = true;
    auto lookup = [&](StringRef name) -> func::FuncOp {
      auto func = module.lookupSymbol<func::FuncOp>(name);
      if (!func || func.isExternal()) {
        module.emitError() << "model needs a func.func @" << name
                           << " with a body";
        ok = false;
        return {};
      }
      return func;
    };
    func::FuncOp prefill = lookup("prefill");
    func::FuncOp decode = lookup("decode");

    llvm::SmallVector<AttentionOp> prefillLayers, decodeLayers;
    bool layersOk = prefill && decode;
    if (prefill) {
      ok &= succeeded(verifyEntry(prefill, /*requiredMaxTokens=*/0));
      layersOk &= succeeded(collectLayers(prefill, prefillLayers));
    }
    if (decode) {
      ok &= succeeded(verifyEntry(decode, /*requiredMaxTokens=*/1));
      layersOk &= succeeded(collectLayers(decode, decodeLayers));
    }
    if (layersOk)
      layersOk = succeeded(
          verifyLayersAgree(prefill, decode, prefillLayers, decodeLayers));
    ok &= layersOk;
    ok &= succeeded(verifyWeights(module));
    if (!ok)
      signalPassFailure();
    markAllAnalysesPreserved();
  }
};

} // namespace
