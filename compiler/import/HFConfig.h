//===- HFConfig.h - the text-model config of a HF checkpoint ------*- C++
//-*-===//
//
// Reads a Hugging Face `config.json` into the hyper-parameters of a Gemma
// text decoder of any generation: `model_type: gemma` (Gemma 1 and CodeGemma,
// `GemmaForCausalLM`), `gemma2` (`Gemma2ForCausalLM`), and Gemma 3 in both
// layouts, the flat `Gemma3ForCausalLM` config (`gemma3_text`) and the nested
// `Gemma3ForConditionalGeneration` one (`gemma3`, text part under
// `text_config`). Keys that transformers' GemmaConfig, Gemma2Config or
// Gemma3TextConfig gives a default to may be omitted (the released 4B/12B/27B
// configs rely on that); the sizes of the model (hidden_size,
// intermediate_size, num_hidden_layers) are required. Called by the HF
// importer and by `gemma-compile --describe-config`.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_IMPORT_HFCONFIG_H
#define GEMMAC_IMPORT_HFCONFIG_H

#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/LogicalResult.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <string>

namespace gemmac {

/// The decoder generations the importers know. Gemma 1 (and CodeGemma) has
/// pre-norm blocks; Gemma 2 adds the sandwich norms, soft-caps and alternating
/// local/global layers; Gemma 3 adds QK-norm and dual RoPE theta.
enum class GemmaFamily { Gemma1, Gemma2, Gemma3 };

/// Hyper-parameters of a Gemma text decoder, as config.json (or a GGUF
/// file's metadata) states them, after transformers' defaults are applied.
struct TextConfig {
  GemmaFamily family = GemmaFamily::Gemma3;
  std::string configPath;   // absolute path of config.json
  std::string architecture; // architectures[0], e.g. "Gemma3ForCausalLM"
  std::string modelType;    // top-level model_type: gemma, gemma2, gemma3...
  bool nested = false;      // text part under text_config
  int64_t hiddenSize = 0;
  int64_t intermediateSize = 0;
  int64_t numLayers = 0;
  int64_t numHeads = 8;
  int64_t numKvHeads = 4;
  int64_t headDim = 256;
  int64_t vocabSize = 262208;
  int64_t maxPositionEmbeddings = 131072;
  /// 0 for Gemma 1, which has no sliding-window layers.
  int64_t slidingWindow = 4096;
  /// One entry per layer: true for a sliding-window (local) layer.
  llvm::SmallVector<bool> layerIsSliding;
  /// Where the pattern came from: "layer_types", "sliding_window_pattern N",
  /// "alternating (Gemma 2)" or "none (Gemma 1: every layer global)".
  std::string layerPatternSource;
  double ropeTheta = 1000000.0;
  /// Theta of the sliding layers; Gemma 1/2 have one theta, equal to
  /// ropeTheta.
  double ropeLocalTheta = 10000.0;
  /// Linear RoPE scaling of the global layers; 1 when rope_scaling is null.
  double ropeScalingFactor = 1.0;
  double queryPreAttnScalar = 256.0;
  double rmsNormEps = 1e-6;
  double attnSoftcap = 0.0;  // 0: none (null in config.json)
  double finalSoftcap = 0.0; // 0: none
  std::optional<int64_t> bosTokenId;
  llvm::SmallVector<int64_t> eosTokenIds;
  std::optional<int64_t> padTokenId;
  std::string torchDtype; // informational: "bfloat16", "float32", ...
  /// The stored norm weights already hold `1 + w` (llama.cpp's GGUF files),
  /// so rms_norm multiplies by them with offset 0.
  bool normWeightsIncludeOne = false;
};

/// Parses `path` (a config.json). Errors are emitted on `context` at a
/// location in the file, naming the key, what was found and what was expected.
mlir::FailureOr<TextConfig> parseHFConfig(llvm::StringRef path,
                                          mlir::MLIRContext *context);

/// "gemma1", "gemma2" or "gemma3": the family's name in the module's
/// `gemma.config` and in describeConfig.
llvm::StringRef familyName(GemmaFamily family);

/// Prints the parsed text-model config in the stable, line-per-field form that
/// `gemma-compile --describe-config` shows and the lit tests check.
void describeConfig(const TextConfig &config, llvm::raw_ostream &os);

} // namespace gemmac

#endif // GEMMAC_IMPORT_HFCONFIG_H
