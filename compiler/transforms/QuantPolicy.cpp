//===- QuantPolicy.cpp - parsing --quant / --keep / --dtype---------------===//

#include "transforms/QuantPolicy.h"

#include "dialect/GemmaTypes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSwitch.h"

using namespace mlir;
using llvm::StringRef;

namespace gemmac {

std::optional<QuantScheme> parseQuantScheme(StringRef text) {
  return llvm::StringSwitch<std::optional<QuantScheme>>(text)
      .Case("f32", QuantScheme::F32)
      .Case("bf16", QuantScheme::BF16)
      .Case("f16", QuantScheme::F16)
      .Case("q8", QuantScheme::Q8)
      .Case("q4", QuantScheme::Q4)
      .Case("q4z", QuantScheme::Q4Z)
      .Default(std::nullopt);
}

StringRef quantSchemeName(QuantScheme scheme) {
  switch (scheme) {
  case QuantScheme::F32:
    return "f32";
  case QuantScheme::BF16:
    return "bf16";
  case QuantScheme::F16:
    return "f16";
  case QuantScheme::Q8:
    return "q8";
  case QuantScheme::Q4:
    return "q4";
  case QuantScheme::Q4Z:
    return "q4z";
  }
  return "?";
}

std::optional<QuantScheme> QuantPolicy::schemeFor(WeightClass c) const {
  if (c == WeightClass::Norm)
    return std::nullopt;
  auto it = overrides.find(c);
  if (it != overrides.end())
    return it->second ? it->second : floatDtype;
  // A weight of no known class follows the float dtype only: the policy is
  // written per class and says nothing about it.
  if (c == WeightClass::Other)
    return floatDtype;
  return scheme ? scheme : floatDtype;
}

static const char kSchemes[] = "f32, bf16, f16, q8, q4 or q4z";

FailureOr<QuantPolicy> parseQuantPolicy(StringRef scheme, StringRef keep,
                                        StringRef floatDtype,
                                        std::string &error,
                                        const QuantOptionNames &names) {
  QuantPolicy policy;
  if (!scheme.empty()) {
    policy.scheme = parseQuantScheme(scheme);
    if (!policy.scheme) {
      error = (names.scheme + ": expected " + llvm::Twine(kSchemes) +
               ", got '" + scheme + "'")
                  .str();
      return failure();
    }
  }
  if (!floatDtype.empty()) {
    policy.floatDtype = parseQuantScheme(floatDtype);
    if (!policy.floatDtype || !isFloatScheme(*policy.floatDtype)) {
      error = (names.dtype + ": expected f32, bf16 or f16, got '" + floatDtype +
               "'")
                  .str();
      return failure();
    }
  }
  // A float scheme is the float dtype; two different ones contradict.
  if (policy.scheme && isFloatScheme(*policy.scheme)) {
    if (policy.floatDtype && *policy.floatDtype != *policy.scheme) {
      error = (names.scheme + " '" + scheme + "' contradicts " + names.dtype +
               " '" + floatDtype +
               "' (a float scheme is the dtype; give one of them)")
                  .str();
      return failure();
    }
    policy.floatDtype = policy.scheme;
  }

  llvm::SmallVector<StringRef> groups;
  keep.split(groups, ';', /*MaxSplit=*/-1, /*KeepEmpty=*/false);
  for (StringRef rawGroup : groups) {
    StringRef group = rawGroup.trim();
    if (group.empty())
      continue;
    auto [classes, schemeText] = group.split('=');
    std::optional<QuantScheme> groupScheme;
    if (group.contains('=')) {
      schemeText = schemeText.trim();
      groupScheme = parseQuantScheme(schemeText);
      if (!groupScheme) {
        error = (names.keep + ": in '" + group + "': expected a scheme (" +
                 kSchemes + ") after '=', got '" + schemeText + "'" +
                 (schemeText.contains(',') || schemeText.contains('=')
                      ? " (separate groups with ';')"
                      : ""))
                    .str();
        return failure();
      }
    }
    llvm::SmallVector<StringRef> classNames;
    classes.split(classNames, ',');
    for (StringRef rawName : classNames) {
      StringRef name = rawName.trim();
      std::optional<WeightClass> c =
          llvm::StringSwitch<std::optional<WeightClass>>(name)
              .Cases("embed", "lm_head", WeightClass::Embed)
              .Case("attn", WeightClass::Attn)
              .Case("mlp", WeightClass::Mlp)
              .Case("norm", WeightClass::Norm)
              .Default(std::nullopt);
      if (!c) {
        error = (names.keep + ": unknown tensor class '" + name + "' in '" +
                 group + "' (expected embed, lm_head, attn, mlp or norm)")
                    .str();
        return failure();
      }
      if (*c == WeightClass::Norm) {
        // Norm weights are f32 by design (docs/quantization.md); only a
        // request that changes nothing is accepted.
        if (groupScheme && *groupScheme != QuantScheme::F32) {
          error = (names.keep + ": '" + group +
                   "': norm weights are always f32 and never quantized")
                      .str();
          return failure();
        }
        continue;
      }
      auto [it, inserted] = policy.overrides.try_emplace(*c, groupScheme);
      if (!inserted && it->second != groupScheme) {
        error = (names.keep + ": tensor class '" + name +
                 "' is given two different schemes")
                    .str();
        return failure();
      }
    }
  }
  return policy;
}

Type floatTypeOf(QuantScheme scheme, MLIRContext *context) {
  Builder b(context);
  switch (scheme) {
  case QuantScheme::F32:
    return b.getF32Type();
  case QuantScheme::BF16:
    return b.getBF16Type();
  case QuantScheme::F16:
    return b.getF16Type();
  default:
    return {};
  }
}

Type quantTypeOf(QuantScheme scheme, MLIRContext *context) {
  switch (scheme) {
  case QuantScheme::Q8:
    return gemma::Q8CType::get(context);
  case QuantScheme::Q4:
    return gemma::Q4G32Type::get(context);
  case QuantScheme::Q4Z:
    return gemma::Q4G128Type::get(context);
  default:
    return {};
  }
}

} // namespace gemmac
