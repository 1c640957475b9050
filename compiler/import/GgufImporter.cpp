//===- GgufImporter.cpp - GGUF Gemma file -> gemma IR ---------------------===//
//
// Key names and defaults follow llama.cpp (gguf-py constants.py, the
// converters in convert_hf_to_gguf.py and llama-model.cpp's hparams loading);
// where a GGUF file lacks a fact config.json has, the value is derived
// exactly as llama.cpp derives it, and the comment says so.
//
//===----------------------------------------------------------------------===//

#include "import/GgufImporter.h"

#include "dialect/GemmaDialect.h"
#include "dialect/WeightClass.h"
#include "import/Tokenizer.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/StringExtras.h"

#include <cmath>
#include <cstring>
#include <map>
#include <set>

using namespace mlir;
using llvm::StringRef;

namespace gemmac {
namespace {

/// Larger than any Gemma (62 layers), small enough that a hostile count
/// cannot make the importer allocate per-layer state without bound.
constexpr uint64_t kMaxLayers = 4096;
constexpr uint64_t kMaxWidth = 1ull << 24;

/// Typed, checked access to a file's metadata; errors name the key, what was
/// found and what was expected.
class Meta {
public:
  Meta(const GgufFile &file, MLIRContext *context)
      : file(file), context(context) {}

  InFlightDiagnostic error() {
    return emitError(FileLineColLoc::get(context, file.path, 0, 0));
  }

  LogicalResult missing(StringRef key, StringRef expected) {
    return error() << "GGUF key '" << key << "' is missing (expected "
                   << expected << ")";
  }

  LogicalResult wrongType(StringRef key, StringRef expected,
                          const GgufValue &v) {
    InFlightDiagnostic diag = error();
    diag << "GGUF key '" << key << "': expected " << expected << ", got "
         << ggufValueTypeName(v.type);
    if (v.type == GgufValueType::Array)
      diag << " of " << ggufValueTypeName(v.elementType);
    return diag;
  }

  /// An unsigned integer of any width (a signed one if non-negative).
  LogicalResult uintKey(StringRef key, bool required,
                        std::optional<uint64_t> &out) {
    const GgufValue *v = file.find(key);
    if (!v)
      return required ? missing(key, "an unsigned integer") : success();
    if (!v->isInteger() || v->i < 0)
      return wrongType(key, "an unsigned integer", *v);
    out = v->u;
    return success();
  }

  /// A count in [lo, hi]; 0 when absent and not required.
  LogicalResult countKey(StringRef key, bool required, uint64_t lo, uint64_t hi,
                         int64_t &out) {
    std::optional<uint64_t> v;
    if (failed(uintKey(key, required, v)))
      return failure();
    if (!v)
      return success();
    if (*v < lo || *v > hi)
      return error() << "GGUF key '" << key << "': " << *v << ", expected "
                     << lo << " to " << hi;
    out = static_cast<int64_t>(*v);
    return success();
  }

  LogicalResult floatKey(StringRef key, bool required,
                         std::optional<double> &out) {
    const GgufValue *v = file.find(key);
    if (!v)
      return required ? missing(key, "a number (f32)") : success();
    if (!v->isFloat() && !v->isInteger())
      return wrongType(key, "a number (f32)", *v);
    if (!std::isfinite(v->f))
      return error() << "GGUF key '" << key << "': " << v->f
                     << ", expected a finite number";
    out = v->f;
    return success();
  }

  LogicalResult stringKey(StringRef key, bool required,
                          std::optional<std::string> &out) {
    const GgufValue *v = file.find(key);
    if (!v)
      return required ? missing(key, "a string") : success();
    if (v->type != GgufValueType::String)
      return wrongType(key, "a string", *v);
    out = v->str;
    return success();
  }

  LogicalResult boolKey(StringRef key, std::optional<bool> &out) {
    const GgufValue *v = file.find(key);
    if (!v)
      return success();
    if (v->type != GgufValueType::Bool)
      return wrongType(key, "a bool", *v);
    out = v->u != 0;
    return success();
  }

  /// An array of `count` elements (when count >= 0) whose elements are all
  /// of a kind `accepts` allows; null (and success) when absent.
  LogicalResult arrayKey(StringRef key, bool required, StringRef expected,
                         llvm::function_ref<bool(GgufValueType)> accepts,
                         int64_t count, const GgufValue *&out) {
    out = file.find(key);
    if (!out)
      return required ? missing(key, expected) : success();
    if (out->type != GgufValueType::Array || !accepts(out->elementType))
      return wrongType(key, expected, *out);
    if (count >= 0 && out->elements.size() != static_cast<uint64_t>(count))
      return error() << "GGUF key '" << key << "': " << out->elements.size()
                     << " elements, expected " << count;
    return success();
  }

  const GgufFile &file;
  MLIRContext *context;
};

bool isIntegerType(GgufValueType t) {
  GgufValue v;
  v.type = t;
  return v.isInteger();
}

/// HF name (relative to "model.") of GGUF tensor `name`, or "" when it is no
/// part of a Gemma text model. GGUF's ffn_norm is the norm before the MLP:
/// HF calls it post_attention_layernorm in Gemma 1 (pre-norm blocks) and
/// pre_feedforward_layernorm in Gemma 2/3, whose post_attention_layernorm is
/// GGUF's post_attention_norm (llama.cpp's tensor_mapping.py).
std::string hfName(StringRef name, GemmaFamily family, int64_t layers) {
  if (name == "token_embd.weight")
    return "embed_tokens.weight";
  if (name == "output_norm.weight")
    return "norm.weight";
  if (!name.consume_front("blk."))
    return "";
  auto [layerText, rest] = name.split('.');
  unsigned layer = 0;
  if (layerText.getAsInteger(10, layer) || layer >= layers ||
      std::to_string(layer) != layerText)
    return "";
  static const std::map<std::string, std::string> common = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},
  };
  std::string prefix = "layers." + std::to_string(layer) + ".";
  auto it = common.find(rest.str());
  if (it != common.end())
    return prefix + it->second;
  if (rest == "ffn_norm.weight")
    return prefix + (family == GemmaFamily::Gemma1
                         ? "post_attention_layernorm.weight"
                         : "pre_feedforward_layernorm.weight");
  if (family == GemmaFamily::Gemma1)
    return "";
  if (rest == "post_attention_norm.weight")
    return prefix + "post_attention_layernorm.weight";
  if (rest == "post_ffw_norm.weight")
    return prefix + "post_feedforward_layernorm.weight";
  if (family == GemmaFamily::Gemma3) {
    if (rest == "attn_q_norm.weight")
      return prefix + "self_attn.q_norm.weight";
    if (rest == "attn_k_norm.weight")
      return prefix + "self_attn.k_norm.weight";
  }
  return "";
}

/// The source_dtype a gemma.weight names for ggml type `type`, or "" when
/// the emitter cannot convert it.
StringRef sourceDtype(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
  case GgmlType::F32:
    return "F32";
  case GgmlType::F16:
    return "F16";
  case GgmlType::BF16:
    return "BF16";
  case GgmlType::Q4_0:
    return "Q4_0";
  case GgmlType::Q8_0:
    return "Q8_0";
  case GgmlType::Q4_K:
    return "Q4_K";
  case GgmlType::Q5_K:
    return "Q5_K";
  case GgmlType::Q6_K:
    return "Q6_K";
  default:
    return "";
  }
}

/// The HF shape ([rows, cols]) of the tensor HF-named `name` in a model of
/// `c`.
llvm::SmallVector<int64_t> expectedShape(const TextConfig &c, StringRef name) {
  const int64_t h = c.hiddenSize, q = c.numHeads * c.headDim,
                kv = c.numKvHeads * c.headDim, ff = c.intermediateSize;
  if (name == "embed_tokens.weight")
    return {c.vocabSize, h};
  if (name.ends_with("q_norm.weight") || name.ends_with("k_norm.weight"))
    return {c.headDim};
  if (name.ends_with("norm.weight") || name.ends_with("layernorm.weight"))
    return {h};
  if (name.ends_with("q_proj.weight"))
    return {q, h};
  if (name.ends_with("k_proj.weight") || name.ends_with("v_proj.weight"))
    return {kv, h};
  if (name.ends_with("o_proj.weight"))
    return {h, q};
  if (name.ends_with("down_proj.weight"))
    return {h, ff};
  return {ff, h}; // gate_proj, up_proj
}

// SentencePiece.Type and TrainerSpec.ModelType (sentencepiece_model.proto);
// llama.cpp's token types use the same numbers for 1..6.
enum PieceType {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};
constexpr int kModelTypeBpe = 2;

/// Protocol-buffer wire format, just what a ModelProto needs.
class ProtoWriter {
public:
  std::string out;
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  }
  void tag(unsigned field, unsigned wire) { varint(field << 3 | wire); }
  void uintField(unsigned field, uint64_t v) {
    tag(field, 0);
    varint(v);
  }
  /// int32 fields encode negatives as 10-byte two's complement varints.
  void intField(unsigned field, int64_t v) {
    tag(field, 0);
    varint(static_cast<uint64_t>(v));
  }
  void floatField(unsigned field, float v) {
    tag(field, 5);
    char bytes[4];
    std::memcpy(bytes, &v, 4);
    out.append(bytes, 4);
  }
  void bytesField(unsigned field, StringRef v) {
    tag(field, 2);
    varint(v.size());
    out.append(v.data(), v.size());
  }
};

} // namespace

FailureOr<TextConfig> readGgufConfig(const GgufFile &file,
                                     MLIRContext *context) {
  Meta m(file, context);
  std::optional<std::string> arch;
  if (failed(m.stringKey("general.architecture", true, arch)))
    return failure();
  TextConfig c;
  if (*arch == "gemma")
    c.family = GemmaFamily::Gemma1;
  else if (*arch == "gemma2")
    c.family = GemmaFamily::Gemma2;
  else if (*arch == "gemma3")
    c.family = GemmaFamily::Gemma3;
  else {
    m.error() << "GGUF key 'general.architecture': \"" << *arch
              << "\" is not a Gemma text architecture gemma-compile reads "
                 "(expected gemma, gemma2 or gemma3)";
    return failure();
  }
  c.configPath = file.path;
  c.architecture = *arch;
  c.modelType = *arch;
  c.normWeightsIncludeOne = true; // llama.cpp's converters store 1 + w
  const std::string a = *arch + ".";

  if (failed(m.countKey(a + "block_count", true, 1, kMaxLayers, c.numLayers)) ||
      failed(m.countKey(a + "embedding_length", true, 1, kMaxWidth,
                        c.hiddenSize)) ||
      failed(m.countKey(a + "context_length", true, 1, 1ull << 32,
                        c.maxPositionEmbeddings)) ||
      failed(m.countKey(a + "attention.head_count", true, 1, kMaxWidth,
                        c.numHeads)))
    return failure();
  // feed_forward_length may be per layer (an array) in newer converters;
  // the decoder here has one width.
  const std::string ffKey = a + "feed_forward_length";
  if (const GgufValue *ff = file.find(ffKey);
      ff && ff->type == GgufValueType::Array) {
    if (!isIntegerType(ff->elementType) || ff->elements.empty())
      return static_cast<LogicalResult>(
          m.wrongType(ffKey, "an unsigned integer", *ff));
    for (const GgufValue &e : ff->elements)
      if (e.u != ff->elements.front().u || e.i < 0) {
        m.error() << "GGUF key '" << ffKey
                  << "': per-layer widths differ, expected one width for "
                     "every layer";
        return failure();
      }
    c.intermediateSize = static_cast<int64_t>(ff->elements.front().u);
    if (c.intermediateSize < 1 ||
        static_cast<uint64_t>(c.intermediateSize) > kMaxWidth) {
      m.error() << "GGUF key '" << ffKey << "': " << c.intermediateSize
                << ", expected 1 to " << kMaxWidth;
      return failure();
    }
  } else if (failed(
                 m.countKey(ffKey, true, 1, kMaxWidth, c.intermediateSize))) {
    return failure();
  }
  // llama.cpp: head_count_kv defaults to head_count, key_length to
  // embedding_length / head_count.
  c.numKvHeads = c.numHeads;
  c.headDim = c.hiddenSize / c.numHeads;
  if (failed(m.countKey(a + "attention.head_count_kv", false, 1, kMaxWidth,
                        c.numKvHeads)) ||
      failed(m.countKey(a + "attention.key_length", false, 1, kMaxWidth,
                        c.headDim)))
    return failure();
  if (c.numHeads % c.numKvHeads != 0) {
    m.error() << "GGUF key '" << a
              << "attention.head_count_kv': " << c.numKvHeads
              << " does not divide the " << c.numHeads << " query heads (" << a
              << "attention.head_count)";
    return failure();
  }
  if (c.headDim % 2 != 0) {
    m.error() << "GGUF key '" << a << "attention.key_length': " << c.headDim
              << ", expected an even head dimension (RoPE rotates pairs)";
    return failure();
  }
  int64_t valueLength = c.headDim;
  if (failed(m.countKey(a + "attention.value_length", false, 1, kMaxWidth,
                        valueLength)))
    return failure();
  if (valueLength != c.headDim) {
    m.error() << "GGUF key '" << a << "attention.value_length': " << valueLength
              << ", expected the key length " << c.headDim;
    return failure();
  }

  std::optional<double> eps, theta, attnCap, finalCap;
  if (failed(m.floatKey(a + "attention.layer_norm_rms_epsilon", true, eps)) ||
      failed(m.floatKey(a + "rope.freq_base", false, theta)) ||
      failed(m.floatKey(a + "attn_logit_softcapping", false, attnCap)) ||
      failed(m.floatKey(a + "final_logit_softcapping", false, finalCap)))
    return failure();
  c.rmsNormEps = *eps;
  // llama.cpp's default base when the key is absent.
  c.ropeTheta = theta.value_or(10000.0);
  c.ropeLocalTheta = c.ropeTheta;
  c.attnSoftcap = 0.0;
  c.finalSoftcap = 0.0;
  if (c.family == GemmaFamily::Gemma2) {
    // llama.cpp's Gemma 2 defaults when the keys are absent.
    c.attnSoftcap = attnCap.value_or(50.0);
    c.finalSoftcap = finalCap.value_or(30.0);
  } else if (c.family == GemmaFamily::Gemma3) {
    // GGUF has no rope_local_base_freq: llama.cpp fixes the local layers'
    // base at 10000 (rope_freq_base_train_swa) and never scales them.
    c.ropeLocalTheta = 10000.0;
    c.finalSoftcap = finalCap.value_or(0.0);
  }

  // RoPE scaling (global layers only in Gemma 3, as in llama.cpp).
  std::optional<std::string> scalingType;
  std::optional<double> factor, scaleLinear;
  if (failed(m.stringKey(a + "rope.scaling.type", false, scalingType)) ||
      failed(m.floatKey(a + "rope.scaling.factor", false, factor)) ||
      failed(m.floatKey(a + "rope.scale_linear", false, scaleLinear)))
    return failure();
  if (scalingType && *scalingType != "linear" && *scalingType != "none") {
    m.error() << "GGUF key '" << a << "rope.scaling.type': \"" << *scalingType
              << "\", expected \"linear\" or \"none\"";
    return failure();
  }
  if (!scalingType || *scalingType == "linear") {
    double f = factor ? *factor : scaleLinear.value_or(1.0);
    if (f != 0.0) {
      if (!(f >= 1.0)) {
        m.error() << "GGUF key '" << a << "rope.scaling.factor': " << f
                  << ", expected a factor of at least 1";
        return failure();
      }
      c.ropeScalingFactor = f;
    }
  }
  if (c.family != GemmaFamily::Gemma3 && c.ropeScalingFactor != 1.0) {
    m.error() << "GGUF key '" << a
              << "rope.scaling.factor': " << c.ropeScalingFactor << ", but "
              << *arch << " models have no RoPE scaling (expected 1)";
    return failure();
  }

  // Sliding-window layers: llama.cpp's fixed patterns (Gemma 2: every other
  // layer from the first; Gemma 3: five local then one global), or the
  // per-layer bool array a newer converter writes.
  c.layerIsSliding.assign(c.numLayers, false);
  c.slidingWindow = 0;
  if (c.family != GemmaFamily::Gemma1) {
    int64_t window = 0;
    if (failed(m.countKey(a + "attention.sliding_window", false, 0, 1ull << 32,
                          window)))
      return failure();
    const GgufValue *pattern = nullptr;
    if (failed(m.arrayKey(
            a + "attention.sliding_window_pattern", false,
            "an array of bool, one per layer",
            [](GgufValueType t) { return t == GgufValueType::Bool; },
            c.numLayers, pattern)))
      return failure();
    if (window > 0) {
      c.slidingWindow = window;
      for (int64_t i = 0; i < c.numLayers; ++i)
        c.layerIsSliding[i] = pattern ? pattern->elements[i].u != 0
                              : c.family == GemmaFamily::Gemma2
                                  ? i % 2 == 0
                                  : (i + 1) % 6 != 0;
      c.layerPatternSource =
          pattern ? a + "attention.sliding_window_pattern"
          : c.family == GemmaFamily::Gemma2
              ? "alternating (Gemma 2)"
              : "llama.cpp's gemma3 pattern (every 6th layer global)";
    } else if (c.family == GemmaFamily::Gemma2) {
      return static_cast<LogicalResult>(m.missing(
          a + "attention.sliding_window", "the window of the local layers"));
    } else {
      // convert_hf_to_gguf.py omits the window when every layer is global.
      c.layerPatternSource = "none (no attention.sliding_window)";
    }
  } else {
    c.layerPatternSource = "none (Gemma 1: every layer global)";
  }

  // Not in GGUF: llama.cpp scales queries by 1/sqrt(key_length), except for
  // the 27B sizes (Gemma 2: 46 layers, Gemma 3: 62 layers), where it uses
  // 1/sqrt(embedding_length / head_count) (gemma_pytorch's
  // query_pre_attn_scalar 144 and 168).
  bool is27B = (c.family == GemmaFamily::Gemma2 && c.numLayers == 46) ||
               (c.family == GemmaFamily::Gemma3 && c.numLayers == 62);
  c.queryPreAttnScalar = is27B ? static_cast<double>(c.hiddenSize / c.numHeads)
                               : static_cast<double>(c.headDim);

  // The embedding's rows are the vocabulary (converters drop the padding
  // rows of the multimodal checkpoints).
  const GgufTensor *embed = file.findTensor("token_embd.weight");
  if (!embed) {
    m.error() << "missing tensor 'token_embd.weight' (the embedding table, "
                 "expected shape ["
              << c.hiddenSize << ", vocabulary] in ggml order)";
    return failure();
  }
  if (embed->dims.size() != 2 || embed->dims[1] == 0 ||
      embed->dims[1] > (1ull << 31)) {
    m.error() << "tensor 'token_embd.weight': expected 2 dimensions "
                 "[embedding_length, vocabulary] with a vocabulary of 1 to "
              << (1ull << 31) << " rows";
    return failure();
  }
  c.vocabSize = static_cast<int64_t>(embed->dims[1]);

  std::optional<uint64_t> bos, eos, eot, pad;
  if (failed(m.uintKey("tokenizer.ggml.bos_token_id", false, bos)) ||
      failed(m.uintKey("tokenizer.ggml.eos_token_id", false, eos)) ||
      failed(m.uintKey("tokenizer.ggml.eot_token_id", false, eot)) ||
      failed(m.uintKey("tokenizer.ggml.padding_token_id", false, pad)))
    return failure();
  if (bos)
    c.bosTokenId = static_cast<int64_t>(*bos);
  if (pad)
    c.padTokenId = static_cast<int64_t>(*pad);
  if (eos)
    c.eosTokenIds.push_back(static_cast<int64_t>(*eos));
  if (eot && (!eos || *eot != *eos))
    c.eosTokenIds.push_back(static_cast<int64_t>(*eot));
  c.torchDtype = "gguf " + ggmlTypeName(embed->type);
  return c;
}

FailureOr<std::string> buildGgufTokenizerModel(const GgufFile &file,
                                               MLIRContext *context) {
  Meta m(file, context);
  std::optional<std::string> model;
  if (failed(m.stringKey("tokenizer.ggml.model", true, model)))
    return failure();
  // Gemma's vocabulary is a sentencepiece BPE model, which llama.cpp calls
  // "llama" (its SPM tokenizer merges by score exactly as sentencepiece's
  // BPE does).
  if (*model != "llama") {
    m.error() << "GGUF key 'tokenizer.ggml.model': \"" << *model
              << "\", expected \"llama\" (the sentencepiece vocabulary of "
                 "Gemma models)";
    return failure();
  }
  const GgufValue *tokens = nullptr, *scores = nullptr, *types = nullptr;
  if (failed(m.arrayKey(
          "tokenizer.ggml.tokens", true, "an array of string",
          [](GgufValueType t) { return t == GgufValueType::String; }, -1,
          tokens)))
    return failure();
  int64_t n = static_cast<int64_t>(tokens->elements.size());
  if (n == 0) {
    m.error() << "GGUF key 'tokenizer.ggml.tokens': the vocabulary is empty";
    return failure();
  }
  if (failed(m.arrayKey(
          "tokenizer.ggml.scores", false, "an array of f32",
          [](GgufValueType t) {
            return t == GgufValueType::F32 || t == GgufValueType::F64;
          },
          n, scores)) ||
      failed(m.arrayKey("tokenizer.ggml.token_type", false, "an array of i32",
                        isIntegerType, n, types)))
    return failure();

  std::optional<uint64_t> unk, bos, eos, pad;
  if (failed(m.uintKey("tokenizer.ggml.unknown_token_id", false, unk)) ||
      failed(m.uintKey("tokenizer.ggml.bos_token_id", false, bos)) ||
      failed(m.uintKey("tokenizer.ggml.eos_token_id", false, eos)) ||
      failed(m.uintKey("tokenizer.ggml.padding_token_id", false, pad)))
    return failure();
  for (auto [key, id] : {std::make_pair("unknown_token_id", unk),
                         std::make_pair("bos_token_id", bos),
                         std::make_pair("eos_token_id", eos),
                         std::make_pair("padding_token_id", pad)})
    if (id && *id >= static_cast<uint64_t>(n)) {
      m.error() << "GGUF key 'tokenizer.ggml." << key << "': id " << *id
                << " is outside the vocabulary of " << n << " tokens";
      return failure();
    }
  std::optional<bool> addSpacePrefix, removeExtraWhitespaces;
  if (failed(m.boolKey("tokenizer.ggml.add_space_prefix", addSpacePrefix)) ||
      failed(m.boolKey("tokenizer.ggml.remove_extra_whitespaces",
                       removeExtraWhitespaces)))
    return failure();

  std::vector<int> pieceTypes(n, kNormal);
  bool byteFallback = false;
  int64_t unknownId = -1;
  for (int64_t i = 0; i < n; ++i) {
    int64_t t = types ? types->elements[i].i : kNormal;
    if (t == 0) // llama.cpp's UNDEFINED
      t = kNormal;
    if (t < kNormal || t > kByte) {
      m.error() << "GGUF key 'tokenizer.ggml.token_type': token " << i
                << " has type " << t << ", expected 1 to 6";
      return failure();
    }
    // A control token other than the reserved ones (Gemma's turn and image
    // markers, which tokenizer_config.json marks special) is matched in text
    // by llama.cpp's special-token parsing and, in Gemma's own
    // tokenizer.model, is a user-defined piece: make it one, so that text
    // naming it gives its id in both paths.
    bool reserved = (bos && *bos == static_cast<uint64_t>(i)) ||
                    (eos && *eos == static_cast<uint64_t>(i)) ||
                    (pad && *pad == static_cast<uint64_t>(i)) ||
                    (unk && *unk == static_cast<uint64_t>(i));
    if (t == kControl && !reserved)
      t = kUserDefined;
    if (t == kUnknown) {
      if (unknownId >= 0) {
        m.error() << "GGUF key 'tokenizer.ggml.token_type': tokens "
                  << unknownId << " and " << i
                  << " are both unknown tokens, expected one";
        return failure();
      }
      unknownId = i;
    }
    byteFallback |= t == kByte;
    pieceTypes[i] = static_cast<int>(t);
  }
  if (unk && unknownId < 0) {
    unknownId = static_cast<int64_t>(*unk);
    pieceTypes[unknownId] = kUnknown;
  }
  if (unknownId < 0) {
    m.error() << "GGUF key 'tokenizer.ggml.token_type': no unknown token "
                 "(type 2), which a sentencepiece vocabulary needs";
    return failure();
  }
  std::set<std::string> seen;
  for (int64_t i = 0; i < n; ++i) {
    const std::string &piece = tokens->elements[i].str;
    if (piece.empty() || !seen.insert(piece).second) {
      m.error() << "GGUF key 'tokenizer.ggml.tokens': token " << i << " \""
                << llvm::StringRef(piece).take_front(40) << "\" is "
                << (piece.empty() ? "empty" : "a duplicate")
                << ", expected distinct non-empty pieces";
      return failure();
    }
  }

  ProtoWriter proto;
  for (int64_t i = 0; i < n; ++i) {
    ProtoWriter piece;
    piece.bytesField(1, tokens->elements[i].str);
    piece.floatField(2,
                     scores ? static_cast<float>(scores->elements[i].f) : 0.0f);
    piece.uintField(3, static_cast<uint64_t>(pieceTypes[i]));
    proto.bytesField(1, piece.out);
  }
  auto pieceOf = [&](std::optional<uint64_t> id) -> std::string {
    return id ? tokens->elements[*id].str : std::string();
  };
  ProtoWriter trainer;
  trainer.uintField(3, kModelTypeBpe);
  trainer.uintField(4, static_cast<uint64_t>(n));
  trainer.uintField(35, byteFallback ? 1 : 0);
  trainer.intField(40, unknownId);
  trainer.intField(41, bos ? static_cast<int64_t>(*bos) : -1);
  trainer.intField(42, eos ? static_cast<int64_t>(*eos) : -1);
  trainer.intField(43, pad ? static_cast<int64_t>(*pad) : -1);
  trainer.bytesField(45, tokens->elements[unknownId].str);
  if (bos)
    trainer.bytesField(46, pieceOf(bos));
  if (eos)
    trainer.bytesField(47, pieceOf(eos));
  if (pad)
    trainer.bytesField(48, pieceOf(pad));
  proto.bytesField(2, trainer.out);
  // Gemma's normalizer: none ("identity"), spaces escaped as U+2581, and a
  // leading space only where the file asks for it (llama.cpp's SPM default
  // is true; Gemma's converters write false).
  ProtoWriter normalizer;
  normalizer.bytesField(1, "identity");
  normalizer.uintField(3, addSpacePrefix.value_or(true) ? 1 : 0);
  normalizer.uintField(4, removeExtraWhitespaces.value_or(false) ? 1 : 0);
  normalizer.uintField(5, 1);
  proto.bytesField(3, normalizer.out);
  return proto.out;
}

OwningOpRef<ModuleOp> importGgufFile(StringRef path,
                                     const GgufImportOptions &opts,
                                     MLIRContext *context,
                                     GgufQuantDefault *quantDefault) {
  context->loadDialect<gemma::GemmaDialect, func::FuncDialect>();
  FailureOr<GgufFile> file = readGgufFile(path, context);
  if (failed(file))
    return nullptr;
  Location loc = FileLineColLoc::get(context, file->path, 0, 0);
  if (opts.maxChunk < 1) {
    emitError(loc) << "--max-chunk must be at least 1, got " << opts.maxChunk;
    return nullptr;
  }
  FailureOr<TextConfig> config = readGgufConfig(*file, context);
  if (failed(config))
    return nullptr;

  // The tensors under the HF names the shared builder expects, shapes in HF
  // order ([rows, cols]: ggml's dims reversed; the bytes are the same).
  const std::string prefix = "model.";
  SafetensorsIndex index;
  std::map<WeightClass, std::set<uint32_t>> typesOfClass;
  for (const GgufTensor &t : file->tensors) {
    std::string name = hfName(t.name, config->family, config->numLayers);
    if (name.empty()) {
      emitError(loc) << "unexpected tensor '" << t.name << "' (not part of a "
                     << config->architecture << " text model with "
                     << config->numLayers << " layers"
                     << (t.name == "output.weight"
                             ? "; Gemma ties the output head to token_embd"
                             : "")
                     << ")";
      return nullptr;
    }
    StringRef dtype = sourceDtype(t.type);
    if (dtype.empty()) {
      emitError(loc) << "tensor '" << t.name << "' is stored as "
                     << ggmlTypeName(t.type)
                     << ", which gemma-compile does not read (expected F32, "
                        "F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K or Q6_K)";
      return nullptr;
    }
    SafetensorsTensor entry;
    entry.file = file->path;
    entry.dtype = dtype.str();
    for (uint64_t d : llvm::reverse(t.dims)) {
      if (d > static_cast<uint64_t>(INT64_MAX)) {
        emitError(loc) << "tensor '" << t.name << "': dimension " << d
                       << " is too large";
        return nullptr;
      }
      entry.shape.push_back(static_cast<int64_t>(d));
    }
    entry.offset = t.offset;
    entry.size = t.size;
    WeightClass cls = weightClassOf(prefix + name);
    if (cls != WeightClass::Norm)
      typesOfClass[cls].insert(t.type);
    index[prefix + name] = std::move(entry);
  }
  // Every tensor the family has, by its GGUF name.
  {
    llvm::SmallVector<std::string> names = {"token_embd.weight",
                                            "output_norm.weight"};
    for (int64_t i = 0; i < config->numLayers; ++i) {
      llvm::SmallVector<StringRef> parts = {
          "attn_norm", "attn_q",   "attn_k", "attn_v",  "attn_output",
          "ffn_norm",  "ffn_gate", "ffn_up", "ffn_down"};
      if (config->family != GemmaFamily::Gemma1)
        parts.append({"post_attention_norm", "post_ffw_norm"});
      if (config->family == GemmaFamily::Gemma3)
        parts.append({"attn_q_norm", "attn_k_norm"});
      for (StringRef part : parts)
        names.push_back("blk." + std::to_string(i) + "." + part.str() +
                        ".weight");
    }
    for (const std::string &name : names) {
      if (file->findTensor(name))
        continue;
      llvm::SmallVector<int64_t> shape = expectedShape(
          *config, hfName(name, config->family, config->numLayers));
      std::string dims = "[";
      for (auto [i, d] : llvm::enumerate(llvm::reverse(shape)))
        dims += (i ? ", " : "") + std::to_string(d);
      emitError(loc) << "missing tensor '" << name << "' (expected dims "
                     << dims << "] in ggml order)";
      return nullptr;
    }
  }
  // Shapes first with the GGUF names (in ggml order, as the file has them);
  // checkTextTensors then finds what is missing.
  for (const GgufTensor &t : file->tensors) {
    llvm::SmallVector<int64_t> expected = expectedShape(
        *config, hfName(t.name, config->family, config->numLayers));
    llvm::SmallVector<int64_t> found =
        index[prefix + hfName(t.name, config->family, config->numLayers)].shape;
    if (found != expected) {
      auto ggml = [](llvm::ArrayRef<int64_t> shape) {
        std::string s = "[";
        for (auto [i, d] : llvm::enumerate(llvm::reverse(shape)))
          s += (i ? ", " : "") + std::to_string(d);
        return s + "]";
      };
      emitError(loc) << "tensor '" << t.name << "': dims " << ggml(found)
                     << " (ggml order) do not match the "
                     << config->architecture << " metadata, expected "
                     << ggml(expected);
      return nullptr;
    }
  }
  if (failed(checkTextTensors(*config, index, prefix, loc)))
    return nullptr;

  FailureOr<std::string> tokenizerBytes =
      buildGgufTokenizerModel(*file, context);
  if (failed(tokenizerBytes))
    return nullptr;
  FailureOr<TokenizerInfo> tokenizer = loadTokenizerInfoFromBytes(
      std::move(*tokenizerBytes), file->path + " (tokenizer.ggml.*)", context);
  if (failed(tokenizer))
    return nullptr;
  if (tokenizer->pieces > config->vocabSize) {
    emitError(loc) << "the tokenizer has " << tokenizer->pieces
                   << " tokens (tokenizer.ggml.tokens), more than the "
                   << config->vocabSize << " rows of token_embd.weight";
    return nullptr;
  }
  for (int64_t id : config->eosTokenIds)
    if (id >= tokenizer->pieces) {
      emitError(loc) << "GGUF key 'tokenizer.ggml.eos_token_id': id " << id
                     << " is outside the tokenizer's " << tokenizer->pieces
                     << " tokens";
      return nullptr;
    }

  uint32_t embedType = file->findTensor("token_embd.weight")->type;
  WeightDtype dtype =
      opts.dtype                                           ? *opts.dtype
      : embedType == static_cast<uint32_t>(GgmlType::BF16) ? WeightDtype::BF16
      : embedType == static_cast<uint32_t>(GgmlType::F16)  ? WeightDtype::F16
                                                           : WeightDtype::F32;
  OwningOpRef<ModuleOp> module = buildGemmaModule(
      *config, index, prefix, *tokenizer, dtype, opts.maxChunk, context);
  if (!module)
    return nullptr;
  // The tokenizer lives in the GGUF's metadata, not in a file of its own:
  // the module carries the rebuilt model's bytes instead of a path.
  Operation *op = module->getOperation();
  op->removeAttr("gemma.tokenizer");
  op->setAttr("gemma.tokenizer_model",
              StringAttr::get(context, tokenizer->bytes));

  if (quantDefault) {
    // Each class stored as the file stores it; a class of several types
    // takes the widest, and K-quants (no kernel here) become q8.
    auto schemeOf = [](uint32_t type) -> std::pair<int, std::string> {
      switch (static_cast<GgmlType>(type)) {
      case GgmlType::F32:
        return {4, "f32"};
      case GgmlType::BF16:
        return {3, "bf16"};
      case GgmlType::F16:
        return {3, "f16"};
      case GgmlType::Q4_0:
        return {1, "q4"};
      default:
        return {2, "q8"};
      }
    };
    std::map<WeightClass, std::string> schemeOfClass;
    bool anyQuantized = false, anyKQuant = false;
    for (auto &[cls, types] : typesOfClass) {
      std::pair<int, std::string> best{0, ""};
      for (uint32_t t : types) {
        best = std::max(best, schemeOf(t));
        anyQuantized |= schemeOf(t).first <= 2;
        anyKQuant |= t != static_cast<uint32_t>(GgmlType::Q4_0) &&
                     t != static_cast<uint32_t>(GgmlType::Q8_0) &&
                     schemeOf(t).first <= 2;
      }
      schemeOfClass[cls] = best.second;
    }
    if (anyQuantized) {
      WeightClass base = schemeOfClass.count(WeightClass::Mlp)
                             ? WeightClass::Mlp
                             : schemeOfClass.begin()->first;
      quantDefault->scheme = schemeOfClass[base];
      llvm::SmallVector<std::string> groups;
      for (auto &[cls, scheme] : schemeOfClass)
        if (scheme != quantDefault->scheme && cls != WeightClass::Other)
          groups.push_back(weightClassName(cls).str() + "=" + scheme);
      quantDefault->keep = llvm::join(groups, ";");
      quantDefault->summary =
          "keeping the GGUF file's quantization: --quant " +
          quantDefault->scheme +
          (quantDefault->keep.empty()
               ? ""
               : " --keep '" + quantDefault->keep + "'") +
          (anyKQuant ? " (K-quant tensors are requantized to q8)" : "");
    }
  }
  return module;
}

} // namespace gemmac
