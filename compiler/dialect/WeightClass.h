//===- WeightClass.h - tensor classes of Gemma weight names -----*- C++ -*-===//
//
// The quantization policy (docs/quantization.md) is written per tensor class:
// embed, attn, mlp, norm. A weight's class follows from its Hugging Face
// name, so the quantize pass (which applies the policy) and the bytecode
// emitter (whose summary reports it) read it here, in one place.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_DIALECT_WEIGHTCLASS_H
#define GEMMAC_DIALECT_WEIGHTCLASS_H

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"

namespace gemmac {

enum class WeightClass { Embed, Attn, Mlp, Norm, Other };

/// The class of a weight named like "model.layers.3.self_attn.q_proj.weight":
/// anything ending in "norm.weight" (or "norm") is a norm; a dotted component
/// embed_tokens or lm_head (tied to it) is embed; q/k/v/o_proj attn;
/// gate/up/down_proj mlp; anything else Other.
inline WeightClass weightClassOf(llvm::StringRef name) {
  if (name.ends_with("norm.weight") || name.ends_with("norm"))
    return WeightClass::Norm;
  llvm::SmallVector<llvm::StringRef> parts;
  name.split(parts, '.');
  for (llvm::StringRef p : parts) {
    if (p == "embed_tokens" || p == "lm_head")
      return WeightClass::Embed;
    if (p == "q_proj" || p == "k_proj" || p == "v_proj" || p == "o_proj")
      return WeightClass::Attn;
    if (p == "gate_proj" || p == "up_proj" || p == "down_proj")
      return WeightClass::Mlp;
  }
  return WeightClass::Other;
}

inline llvm::StringRef weightClassName(WeightClass c) {
  switch (c) {
  case WeightClass::Embed:
    return "embed";
  case WeightClass::Attn:
    return "attn";
  case WeightClass::Mlp:
    return "mlp";
  case WeightClass::Norm:
    return "norm";
  case WeightClass::Other:
    break;
  }
  return "other";
}

} // namespace gemmac

#endif // GEMMAC_DIALECT_WEIGHTCLASS_H
