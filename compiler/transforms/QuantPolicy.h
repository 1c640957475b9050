//===- QuantPolicy.h - the weight quantization policy -----------*- C++ -*-===//
//
// What `gemma-compile --quant SCHEME --keep SPEC --dtype D` asks for, parsed
// once: a scheme for every tensor class (docs/quantization.md). The
// gemma-quantize pass applies it; gemma-compile parses it first so a bad flag
// is refused before anything is imported.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_TRANSFORMS_QUANTPOLICY_H
#define GEMMAC_TRANSFORMS_QUANTPOLICY_H

#include "dialect/WeightClass.h"

#include "mlir/IR/Types.h"
#include "mlir/Support/LogicalResult.h"
#include "llvm/ADT/StringRef.h"

#include <map>
#include <optional>
#include <string>

namespace gemmac {

enum class QuantScheme { F32, BF16, F16, Q8, Q4, Q4Z };

/// "f32", "bf16", "f16", "q8", "q4", "q4z"; nullopt for anything else.
std::optional<QuantScheme> parseQuantScheme(llvm::StringRef text);
llvm::StringRef quantSchemeName(QuantScheme scheme);
inline bool isFloatScheme(QuantScheme s) {
  return s == QuantScheme::F32 || s == QuantScheme::BF16 ||
         s == QuantScheme::F16;
}

struct QuantPolicy {
  /// The scheme of every class without an override; nullopt keeps each
  /// weight's float dtype (or `floatDtype`).
  std::optional<QuantScheme> scheme;
  /// The dtype of weights that stay float (a `--keep` without a scheme, a
  /// matrix that does not fit the group); nullopt keeps each one's own.
  std::optional<QuantScheme> floatDtype;
  /// Per-class schemes from --keep; nullopt means "the float dtype".
  std::map<WeightClass, std::optional<QuantScheme>> overrides;

  /// The scheme for `c`, nullopt for "stays float". Norms always stay.
  std::optional<QuantScheme> schemeFor(WeightClass c) const;
};

/// How the caller spells the three options in messages: the pass's option
/// names, or gemma-compile's flags.
struct QuantOptionNames {
  llvm::StringRef scheme = "scheme", keep = "keep", dtype = "dtype";
};

/// Parses the three options. `keep` is `CLASS[,CLASS...][=SCHEME]`, groups
/// separated by ';' (CLASS: embed, lm_head (= embed), attn, mlp, norm). On
/// error returns failure and sets `error` to a message naming the option
/// (as `names` spells it), what was found and what was expected.
mlir::FailureOr<QuantPolicy>
parseQuantPolicy(llvm::StringRef scheme, llvm::StringRef keep,
                 llvm::StringRef floatDtype, std::string &error,
                 const QuantOptionNames &names = {});

/// The float element type of a float scheme.
mlir::Type floatTypeOf(QuantScheme scheme, mlir::MLIRContext *context);
/// The quantized element type of q8/q4/q4z.
mlir::Type quantTypeOf(QuantScheme scheme, mlir::MLIRContext *context);

} // namespace gemmac

#endif // GEMMAC_TRANSFORMS_QUANTPOLICY_H
