//===- Quantize.cpp - the weight storage policy----------------------------===//
//
// Decides the stored type of every weight from its tensor class and the
// policy of --quant / --keep / --dtype (docs/quantization.md), and records
// the decision in the IR as the `gemma.weight` result type. Nothing here
// touches weight bytes: the bytecode emitter converts them while it writes
// the module, so the decision stays visible and testable as IR.
//
//===----------------------------------------------------------------------===//

#include "dialect/GemmaOps.h"
#include "dialect/GemmaTypes.h"
#include "dialect/WeightClass.h"
#include "transforms/Passes.h"
#include "transforms/QuantPolicy.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/MapVector.h"

namespace gemmac {
#define GEN_PASS_DEF_GEMMAQUANTIZE
#include "transforms/Passes.h.inc"
} // namespace gemmac

using namespace mlir;
using namespace gemmac;
using namespace gemmac::gemma;

namespace {

constexpr llvm::StringLiteral kQuantization = "gemma.quantization";

/// "f32", "bf16", "f16": the spelling of a float element type, which is also
/// its scheme name.
std::string typeName(Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  t.print(os);
  return s;
}

/// The float type a weight had before (or would have without) quantization:
/// its element type, or the checkpoint's dtype if it is already quantized.
Type floatElementOf(WeightOp op) {
  Type element = cast<RankedTensorType>(op.getType()).getElementType();
  if (!isQuantizedType(element))
    return element;
  Builder b(op.getContext());
  StringRef src = op.getSourceDtype();
  return src == "BF16"  ? b.getBF16Type()
         : src == "F16" ? Type(b.getF16Type())
                        : Type(b.getF32Type());
}

struct QuantizePass : gemmac::impl::GemmaQuantizeBase<QuantizePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *context = &getContext();
    std::string error;
    FailureOr<QuantPolicy> policy =
        parseQuantPolicy(scheme, keep, dtype, error);
    if (failed(policy)) {
      module.emitError() << "gemma-quantize: " << error;
      return signalPassFailure();
    }

    // One decision per name: a tied tensor is one stored copy.
    llvm::MapVector<StringRef, SmallVector<WeightOp>> byName;
    module.walk([&](WeightOp w) { byName[w.getName()].push_back(w); });

    // The float dtype of each class before this pass, for the policy text.
    std::map<WeightClass, Type> floatOfClass;
    for (auto &[name, ops] : byName)
      floatOfClass.try_emplace(weightClassOf(name), floatElementOf(ops[0]));

    for (auto &[name, ops] : byName) {
      WeightOp first = ops.front();
      auto type = cast<RankedTensorType>(first.getType());
      WeightClass cls = weightClassOf(name);
      if (cls == WeightClass::Norm)
        continue; // norm weights are f32 by design, never changed

      Type floatType = policy->floatDtype
                           ? floatTypeOf(*policy->floatDtype, context)
                           : floatElementOf(first);
      std::optional<QuantScheme> s = policy->schemeFor(cls);
      if (cls == WeightClass::Other && policy->scheme &&
          !isFloatScheme(*policy->scheme))
        first.emitRemark() << "weight '" << name
                           << "' has no tensor class (embed, attn, mlp, "
                              "norm); it stays "
                           << floatType;
      Type target = floatType;
      if (s && !isFloatScheme(*s)) {
        Type quant = quantTypeOf(*s, context);
        int64_t group = quantGroupSize(quant);
        if (type.getRank() != 2) {
          first.emitRemark()
              << "weight '" << name << "' of type " << type
              << " is not a [rows, cols] matrix; it stays " << floatType
              << " instead of " << quantSchemeName(*s);
        } else if (group > 0 && type.getDimSize(1) % group != 0) {
          first.emitRemark()
              << "weight '" << name << "' has " << type.getDimSize(1)
              << " cols, not a multiple of " << group << " (the group size of "
              << quantSchemeName(*s) << "); it stays " << floatType;
        } else {
          target = quant;
        }
      } else if (s) {
        target = floatTypeOf(*s, context);
      }
      auto newType = RankedTensorType::get(type.getShape(), target);
      for (WeightOp w : ops)
        w.getResult().setType(newType);
    }

    module->setAttr(kQuantization,
                    StringAttr::get(context, describe(*policy, floatOfClass)));
  }

  /// "q4, embed=q8": the scheme of the classes without an override, then
  /// each override that differs from it, with the float dtype spelled out.
  std::string describe(const QuantPolicy &policy,
                       const std::map<WeightClass, Type> &floatOfClass) {
    auto floatName = [&](WeightClass c) -> std::string {
      if (policy.floatDtype)
        return quantSchemeName(*policy.floatDtype).str();
      auto it = floatOfClass.find(c);
      if (it != floatOfClass.end())
        return typeName(it->second);
      for (WeightClass other :
           {WeightClass::Embed, WeightClass::Attn, WeightClass::Mlp})
        if (floatOfClass.count(other))
          return typeName(floatOfClass.at(other));
      return "f32";
    };
    std::string base = policy.scheme ? quantSchemeName(*policy.scheme).str()
                                     : floatName(WeightClass::Embed);
    std::string text = base;
    for (WeightClass c :
         {WeightClass::Embed, WeightClass::Attn, WeightClass::Mlp}) {
      auto it = policy.overrides.find(c);
      if (it == policy.overrides.end())
        continue;
      std::string value =
          it->second ? quantSchemeName(*it->second).str() : floatName(c);
      if (value != base)
        text += ", " + weightClassName(c).str() + "=" + value;
    }
    return text;
  }
};

} // namespace
