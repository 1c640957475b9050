//===- HFConfig.cpp - parse a Hugging Face Gemma config.json --------------===//
//
// Defaults are those of transformers' GemmaConfig (Gemma 1, CodeGemma),
// Gemma2Config and Gemma3TextConfig, because that is what every consumer of
// these checkpoints applies; without them the released multimodal configs
// (which omit heads, head_dim, vocab_size, ...) would not parse.
//
//===----------------------------------------------------------------------===//

#include "import/HFConfig.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <cmath>

using namespace mlir;
using llvm::StringRef;

namespace gemmac {
namespace {

StringRef kindName(const llvm::json::Value &value) {
  switch (value.kind()) {
  case llvm::json::Value::Null:
    return "null";
  case llvm::json::Value::Boolean:
    return "a boolean";
  case llvm::json::Value::Number:
    return value.getAsInteger() ? "an integer" : "a number";
  case llvm::json::Value::String:
    return "a string";
  case llvm::json::Value::Array:
    return "an array";
  case llvm::json::Value::Object:
    return "an object";
  }
  return "a value";
}

/// Reads keys of one JSON object of config.json and reports errors at the
/// line of the key (found textually: llvm::json keeps no positions).
class ConfigReader {
public:
  ConfigReader(StringRef path, StringRef text, MLIRContext *context)
      : path(path), text(text), context(context) {}

  Location locOf(StringRef key) const {
    unsigned line = 1, col = 1;
    if (!key.empty()) {
      size_t pos = text.find(("\"" + key + "\"").str());
      if (pos != StringRef::npos) {
        StringRef before = text.take_front(pos);
        line = 1 + before.count('\n');
        size_t lastNl = before.rfind('\n');
        col = 1 + (lastNl == StringRef::npos ? pos : pos - lastNl - 1);
      }
    }
    return FileLineColLoc::get(context, path, line, col);
  }

  InFlightDiagnostic error(StringRef key) const {
    return emitError(locOf(key));
  }

  /// `scope` is "" or "text_config." to name nested keys fully.
  LogicalResult getInt(const llvm::json::Object &obj, StringRef scope,
                       StringRef key, int64_t &out, bool required,
                       int64_t min = 1) const {
    const llvm::json::Value *value = obj.get(key);
    if (!value) {
      if (!required)
        return success();
      return error("") << "missing required key '" << scope << key
                       << "': expected an integer";
    }
    std::optional<int64_t> i = value->getAsInteger();
    if (!i)
      return error(key) << "key '" << scope << key
                        << "': expected an integer, found " << kindName(*value);
    if (*i < min)
      return error(key) << "key '" << scope << key
                        << "': expected an integer >= " << min << ", found "
                        << *i;
    out = *i;
    return success();
  }

  /// A number; `nullAllowed` keys set `out` to 0 for null.
  LogicalResult getNumber(const llvm::json::Object &obj, StringRef scope,
                          StringRef key, double &out, bool nullAllowed) const {
    const llvm::json::Value *value = obj.get(key);
    if (!value)
      return success();
    if (nullAllowed && value->getAsNull()) {
      out = 0.0;
      return success();
    }
    std::optional<double> d = value->getAsNumber();
    if (!d)
      return error(key) << "key '" << scope << key << "': expected a number"
                        << (nullAllowed ? " or null" : "") << ", found "
                        << kindName(*value);
    if (!(*d > 0.0) || !std::isfinite(*d))
      return error(key) << "key '" << scope << key
                        << "': expected a positive number, found " << *d;
    out = *d;
    return success();
  }

  LogicalResult getString(const llvm::json::Object &obj, StringRef scope,
                          StringRef key, std::string &out) const {
    const llvm::json::Value *value = obj.get(key);
    if (!value)
      return success();
    std::optional<StringRef> s = value->getAsString();
    if (!s)
      return error(key) << "key '" << scope << key
                        << "': expected a string, found " << kindName(*value);
    out = s->str();
    return success();
  }

  /// A token id (integer or null) or, for eos, also a list of ids.
  LogicalResult getTokenIds(const llvm::json::Object &obj, StringRef scope,
                            StringRef key, llvm::SmallVectorImpl<int64_t> &out,
                            bool listAllowed) const {
    const llvm::json::Value *value = obj.get(key);
    if (!value || value->getAsNull())
      return success();
    auto bad = [&]() {
      return error(key) << "key '" << scope << key << "': expected a token id"
                        << (listAllowed ? " or a list of token ids" : "")
                        << ", found " << kindName(*value);
    };
    if (std::optional<int64_t> i = value->getAsInteger()) {
      if (*i < 0)
        return bad();
      out.assign(1, *i);
      return success();
    }
    const llvm::json::Array *array = value->getAsArray();
    if (!array || !listAllowed)
      return bad();
    out.clear();
    for (const llvm::json::Value &element : *array) {
      std::optional<int64_t> i = element.getAsInteger();
      if (!i || *i < 0)
        return error(key)
               << "key '" << scope << key
               << "': expected a list of token ids, found an element "
                  "that is "
               << kindName(element);
      out.push_back(*i);
    }
    return success();
  }

private:
  std::string path;
  StringRef text;
  MLIRContext *context;
};

/// bos/eos/pad ids, when the object states them (absent keeps what `c` has).
LogicalResult parseTokenIds(const ConfigReader &r,
                            const llvm::json::Object &obj, StringRef scope,
                            TextConfig &c) {
  llvm::SmallVector<int64_t> ids;
  if (failed(r.getTokenIds(obj, scope, "bos_token_id", ids, false)))
    return failure();
  if (!ids.empty())
    c.bosTokenId = ids.front();
  ids.clear();
  if (failed(r.getTokenIds(obj, scope, "pad_token_id", ids, false)))
    return failure();
  if (!ids.empty())
    c.padTokenId = ids.front();
  ids.clear();
  if (failed(r.getTokenIds(obj, scope, "eos_token_id", ids, true)))
    return failure();
  if (!ids.empty())
    c.eosTokenIds = ids;
  return success();
}

/// transformers' defaults of the keys a config may omit, per family. Gemma 3's
/// are the TextConfig member initializers.
void applyFamilyDefaults(TextConfig &c) {
  switch (c.family) {
  case GemmaFamily::Gemma1: // GemmaConfig
    c.numHeads = 16;
    c.numKvHeads = 16;
    c.headDim = 256;
    c.vocabSize = 256000;
    c.maxPositionEmbeddings = 8192;
    c.slidingWindow = 0;
    c.ropeTheta = 10000.0;
    break;
  case GemmaFamily::Gemma2: // Gemma2Config
    c.numHeads = 8;
    c.numKvHeads = 4;
    c.headDim = 256;
    c.vocabSize = 256000;
    c.maxPositionEmbeddings = 8192;
    c.slidingWindow = 4096;
    c.ropeTheta = 10000.0;
    c.queryPreAttnScalar = 256.0;
    c.attnSoftcap = 50.0;
    c.finalSoftcap = 30.0;
    break;
  case GemmaFamily::Gemma3:
    break;
  }
}

/// The MLP activation. transformers' Gemma MLPs read `hidden_activation`;
/// GemmaMLP replaces an absent (or null) one by gelu_pytorch_tanh and ignores
/// `hidden_act`, which is why the first Gemma 1 configs, written with
/// `"hidden_act": "gelu"`, run the tanh approximation everywhere.
LogicalResult checkActivation(const ConfigReader &r,
                              const llvm::json::Object &obj, StringRef scope) {
  const llvm::json::Value *value = obj.get("hidden_activation");
  if (!value || value->getAsNull())
    return success();
  std::optional<StringRef> act = value->getAsString();
  if (!act)
    return r.error("hidden_activation")
           << "key '" << scope
           << "hidden_activation': expected a string, found "
           << kindName(*value);
  if (*act != "gelu_pytorch_tanh")
    return r.error("hidden_activation")
           << "key '" << scope << "hidden_activation': expected "
           << "\"gelu_pytorch_tanh\" (the GELU tanh approximation of every "
              "Gemma), found \""
           << *act << "\"";
  return success();
}

LogicalResult parseTextKeys(const ConfigReader &r,
                            const llvm::json::Object &obj, StringRef scope,
                            TextConfig &c) {
  applyFamilyDefaults(c);
  const bool gemma1 = c.family == GemmaFamily::Gemma1;
  const bool gemma3 = c.family == GemmaFamily::Gemma3;
  if (failed(r.getInt(obj, scope, "hidden_size", c.hiddenSize, true)) ||
      failed(r.getInt(obj, scope, "intermediate_size", c.intermediateSize,
                      true)) ||
      failed(r.getInt(obj, scope, "num_hidden_layers", c.numLayers, true)) ||
      failed(r.getInt(obj, scope, "num_attention_heads", c.numHeads, false)) ||
      failed(
          r.getInt(obj, scope, "num_key_value_heads", c.numKvHeads, false)) ||
      failed(r.getInt(obj, scope, "head_dim", c.headDim, false)) ||
      failed(r.getInt(obj, scope, "vocab_size", c.vocabSize, false)) ||
      failed(r.getInt(obj, scope, "max_position_embeddings",
                      c.maxPositionEmbeddings, false)) ||
      failed(r.getNumber(obj, scope, "rope_theta", c.ropeTheta, false)) ||
      failed(r.getNumber(obj, scope, "rms_norm_eps", c.rmsNormEps, false)) ||
      failed(checkActivation(r, obj, scope)))
    return failure();
  // The layer list below is sized by this: a hand-edited count must be an
  // error, not an endless loop (the GGUF reader has the same bound).
  if (c.numLayers > 4096)
    return r.error("num_hidden_layers")
           << "key '" << scope << "num_hidden_layers': expected at most "
           << "4096, found " << c.numLayers;
  // Gemma 1 has no window, no soft-caps and scales the scores by
  // head_dim^-1/2 (GemmaAttention); keys of later generations are ignored,
  // as transformers ignores them.
  if (gemma1) {
    c.queryPreAttnScalar = static_cast<double>(c.headDim);
  } else if (failed(r.getInt(obj, scope, "sliding_window", c.slidingWindow,
                             false)) ||
             failed(r.getNumber(obj, scope, "query_pre_attn_scalar",
                                c.queryPreAttnScalar, false)) ||
             failed(r.getNumber(obj, scope, "attn_logit_softcapping",
                                c.attnSoftcap, true)) ||
             failed(r.getNumber(obj, scope, "final_logit_softcapping",
                                c.finalSoftcap, true))) {
    return failure();
  }
  // Gemma 1 and 2 have one theta for every layer.
  if (!gemma3)
    c.ropeLocalTheta = c.ropeTheta;
  else if (failed(r.getNumber(obj, scope, "rope_local_base_freq",
                              c.ropeLocalTheta, false)))
    return failure();

  if (c.numHeads % c.numKvHeads != 0)
    return r.error("num_key_value_heads")
           << "key '" << scope << "num_key_value_heads': expected a divisor of "
           << "num_attention_heads (" << c.numHeads << "), found "
           << c.numKvHeads;
  if (c.headDim % 2 != 0)
    return r.error("head_dim") << "key '" << scope
                               << "head_dim': expected an even number (RoPE "
                                  "pairs dimensions), found "
                               << c.headDim;

  // rope_scaling: null/absent, or (Gemma 3) {rope_type: linear, factor} for
  // the global layers. No Gemma 1/2 checkpoint scales RoPE.
  if (const llvm::json::Value *rs = obj.get("rope_scaling");
      rs && !rs->getAsNull()) {
    if (!gemma3)
      return r.error("rope_scaling")
             << "key '" << scope << "rope_scaling': expected null for model "
             << "type \"" << c.modelType << "\", found " << kindName(*rs);
    const llvm::json::Object *scaling = rs->getAsObject();
    if (!scaling)
      return r.error("rope_scaling")
             << "key '" << scope
             << "rope_scaling': expected an object or null, "
             << "found " << kindName(*rs);
    std::optional<StringRef> type = scaling->getString("rope_type");
    if (!type)
      type = scaling->getString("type");
    if (!type || *type != "linear")
      return r.error("rope_scaling")
             << "key '" << scope << "rope_scaling.rope_type': expected "
             << "\"linear\", found "
             << (type ? ("\"" + *type + "\"").str() : std::string("nothing"));
    std::optional<double> factor = scaling->getNumber("factor");
    if (!factor || !(*factor > 0.0))
      return r.error("rope_scaling")
             << "key '" << scope
             << "rope_scaling.factor': expected a positive number";
    c.ropeScalingFactor = *factor;
  }

  // The layer pattern: Gemma 1 has only global layers; Gemma 2/3 read
  // layer_types when present, else their family's rule.
  c.layerIsSliding.clear();
  if (gemma1) {
    c.layerIsSliding.assign(c.numLayers, false);
    c.layerPatternSource = "none (Gemma 1: every layer global)";
  } else if (const llvm::json::Value *lt = obj.get("layer_types");
             lt && !lt->getAsNull()) {
    const llvm::json::Array *types = lt->getAsArray();
    if (!types)
      return r.error("layer_types")
             << "key '" << scope << "layer_types': expected an array, found "
             << kindName(*lt);
    if (static_cast<int64_t>(types->size()) != c.numLayers)
      return r.error("layer_types")
             << "key '" << scope << "layer_types': expected " << c.numLayers
             << " entries (num_hidden_layers), found " << types->size();
    for (auto [i, element] : llvm::enumerate(*types)) {
      std::optional<StringRef> s = element.getAsString();
      if (s && *s == "sliding_attention")
        c.layerIsSliding.push_back(true);
      else if (s && *s == "full_attention")
        c.layerIsSliding.push_back(false);
      else
        return r.error("layer_types")
               << "key '" << scope << "layer_types[" << i
               << "]': expected \"sliding_attention\" or \"full_attention\", "
               << "found "
               << (s ? ("\"" + *s + "\"").str() : kindName(element).str());
    }
    c.layerPatternSource = "layer_types";
  } else if (!gemma3) {
    // Gemma2Config: layer i is sliding when (i + 1) % 2 != 0.
    for (int64_t i = 0; i < c.numLayers; ++i)
      c.layerIsSliding.push_back(i % 2 == 0);
    c.layerPatternSource = "alternating (Gemma 2)";
  } else {
    int64_t pattern = 6;
    if (failed(r.getInt(obj, scope, "sliding_window_pattern", pattern, false)))
      return failure();
    for (int64_t i = 0; i < c.numLayers; ++i)
      c.layerIsSliding.push_back((i + 1) % pattern != 0);
    c.layerPatternSource = "sliding_window_pattern " + std::to_string(pattern);
  }

  return parseTokenIds(r, obj, scope, c);
}

} // namespace

FailureOr<TextConfig> parseHFConfig(StringRef path, MLIRContext *context) {
  llvm::SmallString<256> absPath(path);
  llvm::sys::fs::make_absolute(absPath);
  auto buffer = llvm::MemoryBuffer::getFile(absPath, /*IsText=*/true);
  if (!buffer) {
    emitError(FileLineColLoc::get(context, absPath, 0, 0))
        << "cannot read config.json: " << buffer.getError().message();
    return failure();
  }
  StringRef text = (*buffer)->getBuffer();
  ConfigReader r(absPath, text, context);
  llvm::Expected<llvm::json::Value> json = llvm::json::parse(text);
  if (!json) {
    r.error("") << "invalid JSON: " << llvm::toString(json.takeError());
    return failure();
  }
  const llvm::json::Object *root = json->getAsObject();
  if (!root) {
    r.error("") << "expected a JSON object at the top level, found "
                << kindName(*json);
    return failure();
  }

  TextConfig c;
  c.configPath = absPath.str().str();
  if (const llvm::json::Array *archs = root->getArray("architectures"))
    if (!archs->empty())
      if (std::optional<StringRef> a = (*archs)[0].getAsString())
        c.architecture = a->str();

  const llvm::json::Value *modelType = root->get("model_type");
  static constexpr const char *kKnownTypes =
      "\"gemma\", \"gemma2\", \"gemma3_text\" or \"gemma3\"";
  if (!modelType) {
    r.error("") << "missing required key 'model_type': expected "
                << kKnownTypes;
    return failure();
  }
  std::optional<StringRef> type = modelType->getAsString();
  if (!type) {
    r.error("model_type") << "key 'model_type': expected a string, found "
                          << kindName(*modelType);
    return failure();
  }
  c.modelType = type->str();
  if (*type == "gemma3n" || *type == "gemma3n_text") {
    r.error("model_type")
        << "key 'model_type': \"" << *type
        << "\" (Gemma 3n) is not supported: its decoder adds per-layer "
           "embeddings, AltUp, LAuReL and KV sharing to Gemma 3 (expected "
        << kKnownTypes << ")";
    return failure();
  }
  if (*type == "gemma") {
    c.family = GemmaFamily::Gemma1;
  } else if (*type == "gemma2") {
    c.family = GemmaFamily::Gemma2;
  } else if (*type == "gemma3_text" || *type == "gemma3") {
    c.family = GemmaFamily::Gemma3;
  } else {
    r.error("model_type") << "key 'model_type': unknown model type \"" << *type
                          << "\" (expected " << kKnownTypes << ")";
    return failure();
  }
  if (failed(r.getString(*root, "", "torch_dtype", c.torchDtype)))
    return failure();

  if (*type != "gemma3") {
    if (c.architecture.empty())
      c.architecture = c.family == GemmaFamily::Gemma1   ? "GemmaForCausalLM"
                       : c.family == GemmaFamily::Gemma2 ? "Gemma2ForCausalLM"
                                                         : "Gemma3ForCausalLM";
    if (failed(parseTextKeys(r, *root, "", c)))
      return failure();
    return c;
  }

  c.nested = true;
  if (c.architecture.empty())
    c.architecture = "Gemma3ForConditionalGeneration";
  const llvm::json::Value *textValue = root->get("text_config");
  if (!textValue) {
    r.error("") << "missing required key 'text_config': expected an object "
                   "(model_type \"gemma3\" nests the text model)";
    return failure();
  }
  const llvm::json::Object *textConfig = textValue->getAsObject();
  if (!textConfig) {
    r.error("text_config") << "key 'text_config': expected an object, found "
                           << kindName(*textValue);
    return failure();
  }
  if (const llvm::json::Value *inner = textConfig->get("model_type")) {
    std::optional<StringRef> innerType = inner->getAsString();
    if (!innerType || *innerType != "gemma3_text") {
      r.error("text_config") << "key 'text_config.model_type': expected "
                                "\"gemma3_text\", found "
                             << (innerType ? ("\"" + *innerType + "\"").str()
                                           : kindName(*inner).str());
      return failure();
    }
  }
  // Token ids of the multimodal configs live at the top level (eos_token_id
  // [1, 106]); the text_config's own, when present, take precedence.
  if (failed(parseTokenIds(r, *root, "", c)) ||
      failed(parseTextKeys(r, *textConfig, "text_config.", c)))
    return failure();
  return c;
}

StringRef familyName(GemmaFamily family) {
  switch (family) {
  case GemmaFamily::Gemma1:
    return "gemma1";
  case GemmaFamily::Gemma2:
    return "gemma2";
  case GemmaFamily::Gemma3:
    return "gemma3";
  }
  return "gemma3";
}

void describeConfig(const TextConfig &c, llvm::raw_ostream &os) {
  os << "config: " << c.configPath << "\n";
  os << "family: " << familyName(c.family) << "\n";
  os << "architecture: " << c.architecture << "\n";
  os << "model_type: " << c.modelType
     << (c.nested ? " (nested text_config)" : "") << "\n";
  os << "layers: " << c.numLayers << "\n";
  os << "hidden: " << c.hiddenSize << "\n";
  os << "intermediate: " << c.intermediateSize << "\n";
  os << "heads: " << c.numHeads << "\n";
  os << "kv_heads: " << c.numKvHeads << "\n";
  os << "head_dim: " << c.headDim << "\n";
  if (c.slidingWindow > 0 && llvm::is_contained(c.layerIsSliding, true))
    os << "window: " << c.slidingWindow << "\n";
  else
    os << "window: none\n";
  os << "layer_pattern_source: " << c.layerPatternSource << "\n";
  os << "layer_pattern: ";
  for (bool sliding : c.layerIsSliding)
    os << (sliding ? 'L' : 'G');
  os << "\n";
  os << "global_layers:";
  for (auto [i, sliding] : llvm::enumerate(c.layerIsSliding))
    if (!sliding)
      os << " " << i;
  os << "\n";
  os << llvm::format("rope_theta_global: %g\n", c.ropeTheta);
  os << llvm::format("rope_theta_local: %g\n", c.ropeLocalTheta);
  if (c.ropeScalingFactor == 1.0)
    os << "rope_scaling: none\n";
  else
    os << llvm::format("rope_scaling: linear, factor %g (global layers)\n",
                       c.ropeScalingFactor);
  os << llvm::format("query_pre_attn_scalar: %g\n", c.queryPreAttnScalar);
  os << llvm::format("rms_norm_eps: %g\n", c.rmsNormEps);
  os << llvm::format("attn_softcap: %g\n", c.attnSoftcap);
  os << llvm::format("final_softcap: %g\n", c.finalSoftcap);
  os << "vocab_rows: " << c.vocabSize << "\n";
  os << "max_context: " << c.maxPositionEmbeddings << "\n";
  // Unset ids are taken from tokenizer.model when a checkpoint is imported.
  os << "bos: " << (c.bosTokenId ? std::to_string(*c.bosTokenId) : "-") << "\n";
  os << "eos:";
  for (int64_t id : c.eosTokenIds)
    os << " " << id;
  os << "\n";
  os << "pad: " << (c.padTokenId ? std::to_string(*c.padTokenId) : "-") << "\n";
}

} // namespace gemmac
