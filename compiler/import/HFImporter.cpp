//===- HFImporter.cpp - Hugging Face Gemma checkpoint -> gemma IR ---------===//
//
// The Gemma 3 decoder is written exactly as docs/ops.md "A Gemma 3 decoder
// layer" lists it; Gemma 2 is the same block without QK-norm and with one
// theta, Gemma 1 the pre-norm block (docs/families.md). Both functions get
// the same body, they differ only in gemma.max_tokens. Weight ops are created
// once per function and name the HF tensor, so a diagnostic from any later
// phase points at the tensor.
//
//===----------------------------------------------------------------------===//

#include "import/HFImporter.h"

#include "dialect/GemmaDialect.h"
#include "dialect/GemmaOps.h"
#include "import/HFConfig.h"
#include "import/Safetensors.h"
#include "import/Tokenizer.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <cmath>

using namespace mlir;
using llvm::StringRef;

namespace gemmac {
namespace {

StringRef dtypeName(WeightDtype dtype) {
  switch (dtype) {
  case WeightDtype::F32:
    return "F32";
  case WeightDtype::BF16:
    return "BF16";
  case WeightDtype::F16:
    return "F16";
  }
  return "F32";
}

Type elementType(MLIRContext *context, WeightDtype dtype) {
  switch (dtype) {
  case WeightDtype::F32:
    return Float32Type::get(context);
  case WeightDtype::BF16:
    return BFloat16Type::get(context);
  case WeightDtype::F16:
    return Float16Type::get(context);
  }
  return Float32Type::get(context);
}

/// sqrt(hidden) rounded once, to nearest-even, to the table's dtype: what
/// transformers computes with torch.tensor(hidden**0.5, dtype=table.dtype).
float embedScale(int64_t hidden, WeightDtype dtype) {
  llvm::APFloat value(std::sqrt(static_cast<double>(hidden)));
  bool lost = false;
  const llvm::fltSemantics &sem =
      dtype == WeightDtype::BF16  ? llvm::APFloat::BFloat()
      : dtype == WeightDtype::F16 ? llvm::APFloat::IEEEhalf()
                                  : llvm::APFloat::IEEEsingle();
  value.convert(sem, llvm::APFloat::rmNearestTiesToEven, &lost);
  value.convert(llvm::APFloat::IEEEsingle(), llvm::APFloat::rmNearestTiesToEven,
                &lost);
  return value.convertToFloat();
}

/// Tensors of the multimodal checkpoints that the text model does not use.
bool isNonTextTensor(StringRef name) {
  return name.starts_with("vision_tower.") ||
         name.starts_with("multi_modal_projector.") ||
         name.starts_with("model.vision_tower.") ||
         name.starts_with("model.multi_modal_projector.");
}

struct ExpectedTensor {
  std::string name;
  llvm::SmallVector<int64_t> shape;
  bool isNorm; // stored f32 in the module
};

class Importer {
public:
  Importer(MLIRContext *context, const TextConfig &config,
           const SafetensorsIndex &index, const TokenizerInfo &tokenizer,
           std::string prefix, WeightDtype dtype, int64_t maxChunk)
      : context(context), c(config), index(index), tok(tokenizer),
        prefix(std::move(prefix)), dtype(dtype), maxChunk(maxChunk),
        b(context) {}

  OwningOpRef<ModuleOp> build();

private:
  Location configLoc() {
    return FileLineColLoc::get(context, c.configPath, 0, 0);
  }
  Location nameLoc(const llvm::Twine &name) {
    return NameLoc::get(StringAttr::get(context, name), configLoc());
  }
  RankedTensorType act(int64_t width) {
    return RankedTensorType::get({ShapedType::kDynamic, width}, b.getF32Type());
  }
  Value weight(StringRef shortName, bool isNorm);
  Value rmsNorm(Value x, StringRef weightName, Location loc);
  Value linear(Value x, StringRef weightName, int64_t outFeatures,
               Location loc);
  func::FuncOp buildFunction(StringRef name, int64_t maxTokens);
  DictionaryAttr configAttr();
  DictionaryAttr specialTokensAttr();
  DictionaryAttr chatAttr();

  MLIRContext *context;
  const TextConfig &c;
  const SafetensorsIndex &index;
  const TokenizerInfo &tok;
  std::string prefix;
  WeightDtype dtype;
  int64_t maxChunk;
  OpBuilder b;
  llvm::StringMap<Value> weightsInFunction;
};

Value Importer::weight(StringRef shortName, bool isNorm) {
  std::string name = prefix + shortName.str();
  if (Value existing = weightsInFunction.lookup(name))
    return existing;
  const SafetensorsTensor &t = index.find(name)->second;
  Type element = isNorm ? b.getF32Type() : elementType(context, dtype);
  auto type = RankedTensorType::get(t.shape, element);
  Location loc = NameLoc::get(b.getStringAttr(name),
                              FileLineColLoc::get(context, t.file, 0, 0));
  Value value = b.create<gemma::WeightOp>(
      loc, type, b.getStringAttr(name), b.getStringAttr(t.file),
      b.getI64IntegerAttr(t.offset), b.getStringAttr(t.dtype));
  weightsInFunction[name] = value;
  return value;
}

Value Importer::rmsNorm(Value x, StringRef weightName, Location loc) {
  Value w = weight(weightName, /*isNorm=*/true);
  return b.create<gemma::RmsNormOp>(
      loc, x.getType(), x, w,
      b.getF32FloatAttr(static_cast<float>(c.rmsNormEps)),
      b.getF32FloatAttr(c.normWeightsIncludeOne ? 0.0f : 1.0f));
}

Value Importer::linear(Value x, StringRef weightName, int64_t outFeatures,
                       Location loc) {
  Value w = weight(weightName, /*isNorm=*/false);
  return b.create<gemma::LinearOp>(loc, act(outFeatures), x, w);
}

func::FuncOp Importer::buildFunction(StringRef name, int64_t maxTokens) {
  weightsInFunction.clear();
  auto tokensType =
      RankedTensorType::get({ShapedType::kDynamic}, b.getI32Type());
  auto logitsType = act(tok.pieces);
  auto fnType = b.getFunctionType({tokensType}, {logitsType});
  auto fn = b.create<func::FuncOp>(nameLoc(name), name, fnType);
  fn->setAttr("gemma.max_tokens", b.getI64IntegerAttr(maxTokens));
  Block *entry = fn.addEntryBlock();
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(entry);

  const int64_t hidden = c.hiddenSize, q = c.numHeads * c.headDim,
                kv = c.numKvHeads * c.headDim;
  Value table = weight("embed_tokens.weight", /*isNorm=*/false);
  Value x = b.create<gemma::EmbedOp>(
      nameLoc(prefix + "embed_tokens"), act(hidden), entry->getArgument(0),
      table, b.getF32FloatAttr(embedScale(hidden, dtype)));

  const float attnScale =
      static_cast<float>(1.0 / std::sqrt(c.queryPreAttnScalar));
  const bool gemma1 = c.family == GemmaFamily::Gemma1;
  const bool qkNorm = c.family == GemmaFamily::Gemma3;
  for (int64_t i = 0; i < c.numLayers; ++i) {
    const std::string l = "layers." + std::to_string(i) + ".";
    const bool sliding = c.layerIsSliding[i];
    Location attnLoc = nameLoc(prefix + l + "self_attn");
    Location mlpLoc = nameLoc(prefix + l + "mlp");
    // Only Gemma 3 has a second theta (local layers) and scales RoPE on its
    // global layers; Gemma 1/2 use rope_theta everywhere.
    const float theta =
        static_cast<float>(qkNorm && sliding ? c.ropeLocalTheta : c.ropeTheta);
    const float ropeScale =
        static_cast<float>(qkNorm && !sliding ? c.ropeScalingFactor : 1.0);

    Value h = rmsNorm(x, l + "input_layernorm.weight",
                      nameLoc(prefix + l + "input_layernorm"));
    auto projectRope = [&](StringRef which, int64_t width) {
      Value p = linear(h, (l + "self_attn." + which + "_proj.weight").str(),
                       width, attnLoc);
      if (qkNorm)
        p = rmsNorm(p, (l + "self_attn." + which + "_norm.weight").str(),
                    attnLoc);
      return b
          .create<gemma::RopeOp>(
              attnLoc, p.getType(), p, b.getI64IntegerAttr(c.headDim),
              b.getF32FloatAttr(theta), b.getF32FloatAttr(ropeScale))
          .getResult();
    };
    Value qv = projectRope("q", q);
    Value kvv = projectRope("k", kv);
    Value vv = linear(h, l + "self_attn.v_proj.weight", kv, attnLoc);
    Value a = b.create<gemma::AttentionOp>(
        attnLoc, act(q), qv, kvv, vv, b.getI64IntegerAttr(i),
        b.getI64IntegerAttr(c.numHeads), b.getI64IntegerAttr(c.numKvHeads),
        b.getI64IntegerAttr(c.headDim), b.getF32FloatAttr(attnScale),
        b.getI64IntegerAttr(sliding ? c.slidingWindow : 0),
        b.getF32FloatAttr(static_cast<float>(c.attnSoftcap)));
    a = linear(a, l + "self_attn.o_proj.weight", hidden, attnLoc);
    // Gemma 1 is pre-norm only: its post_attention_layernorm is the norm in
    // front of the MLP. Gemma 2/3 norm each branch's output too (sandwich).
    if (!gemma1)
      a = rmsNorm(a, l + "post_attention_layernorm.weight", attnLoc);
    x = b.create<gemma::AddOp>(attnLoc, x, a);

    h = rmsNorm(x,
                l + (gemma1 ? "post_attention_layernorm.weight"
                            : "pre_feedforward_layernorm.weight"),
                mlpLoc);
    Value gate =
        linear(h, l + "mlp.gate_proj.weight", c.intermediateSize, mlpLoc);
    gate = b.create<gemma::GeluTanhOp>(mlpLoc, gate);
    Value up = linear(h, l + "mlp.up_proj.weight", c.intermediateSize, mlpLoc);
    Value m = b.create<gemma::MulOp>(mlpLoc, gate, up);
    m = linear(m, l + "mlp.down_proj.weight", hidden, mlpLoc);
    if (!gemma1)
      m = rmsNorm(m, l + "post_feedforward_layernorm.weight", mlpLoc);
    x = b.create<gemma::AddOp>(mlpLoc, x, m);
  }

  Location headLoc = nameLoc(prefix + "norm");
  x = rmsNorm(x, "norm.weight", headLoc);
  Value logits = b.create<gemma::LmHeadOp>(headLoc, logitsType, x, table,
                                           b.getI64IntegerAttr(tok.pieces));
  if (c.finalSoftcap > 0.0)
    logits = b.create<gemma::SoftcapOp>(
        headLoc, logits, b.getF32FloatAttr(static_cast<float>(c.finalSoftcap)));
  b.create<func::ReturnOp>(headLoc, logits);
  return fn;
}

DictionaryAttr Importer::configAttr() {
  auto f32 = [&](double v) { return b.getF32FloatAttr(static_cast<float>(v)); };
  auto i64 = [&](int64_t v) { return b.getI64IntegerAttr(v); };
  NamedAttrList attrs;
  attrs.append("family", b.getStringAttr(familyName(c.family)));
  attrs.append("architecture", b.getStringAttr(c.architecture));
  attrs.append("hidden_size", i64(c.hiddenSize));
  attrs.append("intermediate_size", i64(c.intermediateSize));
  attrs.append("num_layers", i64(c.numLayers));
  attrs.append("num_heads", i64(c.numHeads));
  attrs.append("num_kv_heads", i64(c.numKvHeads));
  attrs.append("head_dim", i64(c.headDim));
  attrs.append("vocab_size", i64(c.vocabSize));
  attrs.append("max_context", i64(c.maxPositionEmbeddings));
  attrs.append("sliding_window", i64(c.slidingWindow));
  attrs.append("rope_theta", f32(c.ropeTheta));
  attrs.append("rope_local_theta", f32(c.ropeLocalTheta));
  attrs.append("rope_scaling_factor", f32(c.ropeScalingFactor));
  attrs.append("rms_norm_eps", f32(c.rmsNormEps));
  attrs.append("query_pre_attn_scalar", f32(c.queryPreAttnScalar));
  attrs.append("attn_softcap", f32(c.attnSoftcap));
  attrs.append("final_softcap", f32(c.finalSoftcap));
  attrs.append("layer_is_sliding", b.getDenseBoolArrayAttr(c.layerIsSliding));
  attrs.append("tokenizer_pieces", i64(tok.pieces));
  attrs.append("dtype", b.getStringAttr(dtypeName(dtype)));
  return attrs.getDictionary(context);
}

DictionaryAttr Importer::specialTokensAttr() {
  auto i64 = [&](int64_t v) { return b.getI64IntegerAttr(v); };
  llvm::SmallVector<int64_t> eos(c.eosTokenIds.begin(), c.eosTokenIds.end());
  if (eos.empty() && tok.eos >= 0)
    eos.push_back(tok.eos);
  llvm::SmallVector<int64_t> stop = eos;
  if (tok.endOfTurn >= 0 && !llvm::is_contained(stop, tok.endOfTurn))
    stop.push_back(tok.endOfTurn);
  NamedAttrList attrs;
  attrs.append("pad", i64(c.padTokenId.value_or(tok.pad)));
  attrs.append("eos", i64(eos.empty() ? -1 : eos.front()));
  attrs.append("bos", i64(c.bosTokenId.value_or(tok.bos)));
  attrs.append("unk", i64(tok.unk));
  attrs.append("start_of_turn", i64(tok.startOfTurn));
  attrs.append("end_of_turn", i64(tok.endOfTurn));
  attrs.append("eos_ids", b.getDenseI64ArrayAttr(eos));
  attrs.append("stop", b.getDenseI64ArrayAttr(stop));
  return attrs.getDictionary(context);
}

DictionaryAttr Importer::chatAttr() {
  NamedAttrList attrs;
  attrs.append("turn_start", b.getStringAttr("<start_of_turn>"));
  attrs.append("turn_end", b.getStringAttr("<end_of_turn>"));
  attrs.append("user_role", b.getStringAttr("user"));
  attrs.append("model_role", b.getStringAttr("model"));
  // Gemma 3's chat template prepends a system message to the first user
  // turn; Gemma 1/2's raise "System role not supported", and so do we.
  attrs.append("system", b.getStringAttr(c.family == GemmaFamily::Gemma3
                                             ? "fold_into_first_user"
                                             : "reject"));
  return attrs.getDictionary(context);
}

OwningOpRef<ModuleOp> Importer::build() {
  OwningOpRef<ModuleOp> module = ModuleOp::create(configLoc());
  module->getOperation()->setAttr("gemma.config", configAttr());
  module->getOperation()->setAttr("gemma.tokenizer", b.getStringAttr(tok.path));
  module->getOperation()->setAttr("gemma.special_tokens", specialTokensAttr());
  module->getOperation()->setAttr("gemma.chat", chatAttr());
  b.setInsertionPointToEnd(module->getBody());
  buildFunction("prefill", maxChunk);
  buildFunction("decode", 1);
  return module;
}

/// The text tensors a decoder of `c` needs, with their HF shapes, relative to
/// the text prefix. Gemma 1 has only the two pre-norms per layer; Gemma 2 adds
/// the post-norms of the sandwich; Gemma 3 adds QK-norm.
llvm::SmallVector<ExpectedTensor> expectedTensors(const TextConfig &c) {
  const int64_t h = c.hiddenSize, q = c.numHeads * c.headDim,
                kv = c.numKvHeads * c.headDim, ff = c.intermediateSize,
                d = c.headDim;
  llvm::SmallVector<ExpectedTensor> out;
  out.push_back({"embed_tokens.weight", {c.vocabSize, h}, false});
  for (int64_t i = 0; i < c.numLayers; ++i) {
    std::string l = "layers." + std::to_string(i) + ".";
    out.push_back({l + "input_layernorm.weight", {h}, true});
    out.push_back({l + "self_attn.q_proj.weight", {q, h}, false});
    out.push_back({l + "self_attn.k_proj.weight", {kv, h}, false});
    out.push_back({l + "self_attn.v_proj.weight", {kv, h}, false});
    out.push_back({l + "self_attn.o_proj.weight", {h, q}, false});
    if (c.family == GemmaFamily::Gemma3) {
      out.push_back({l + "self_attn.q_norm.weight", {d}, true});
      out.push_back({l + "self_attn.k_norm.weight", {d}, true});
    }
    out.push_back({l + "post_attention_layernorm.weight", {h}, true});
    if (c.family != GemmaFamily::Gemma1) {
      out.push_back({l + "pre_feedforward_layernorm.weight", {h}, true});
      out.push_back({l + "post_feedforward_layernorm.weight", {h}, true});
    }
    out.push_back({l + "mlp.gate_proj.weight", {ff, h}, false});
    out.push_back({l + "mlp.up_proj.weight", {ff, h}, false});
    out.push_back({l + "mlp.down_proj.weight", {h, ff}, false});
  }
  out.push_back({"norm.weight", {h}, true});
  return out;
}

std::string shapeString(llvm::ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (auto [i, d] : llvm::enumerate(shape))
    s += (i ? ", " : "") + std::to_string(d);
  return s + "]";
}

} // namespace

OwningOpRef<ModuleOp> importHFCheckpoint(StringRef dir,
                                         const HFImportOptions &opts,
                                         MLIRContext *context) {
  context->loadDialect<gemma::GemmaDialect, func::FuncDialect>();
  llvm::SmallString<256> absDir(dir);
  llvm::sys::fs::make_absolute(absDir);
  llvm::sys::path::remove_dots(absDir, /*remove_dot_dot=*/true);
  Location dirLoc = FileLineColLoc::get(context, absDir, 0, 0);
  if (!llvm::sys::fs::is_directory(absDir)) {
    emitError(dirLoc) << "not a checkpoint directory (expected a directory "
                         "holding config.json, safetensors and "
                         "tokenizer.model)";
    return nullptr;
  }
  if (opts.maxChunk < 1) {
    emitError(dirLoc) << "--max-chunk must be at least 1, got "
                      << opts.maxChunk;
    return nullptr;
  }

  llvm::SmallString<256> configPath(absDir);
  llvm::sys::path::append(configPath, "config.json");
  FailureOr<TextConfig> config = parseHFConfig(configPath, context);
  if (failed(config))
    return nullptr;

  FailureOr<SafetensorsIndex> index =
      readSafetensorsIndex(absDir, context, isNonTextTensor);
  if (failed(index))
    return nullptr;

  // Where the text model's tensors live.
  std::string prefix = "model.";
  if (config->nested) {
    if (index->count("language_model.model.embed_tokens.weight"))
      prefix = "language_model.model.";
    else if (index->count("model.language_model.embed_tokens.weight"))
      prefix = "model.language_model.";
    else {
      emitError(dirLoc)
          << "missing tensor 'language_model.model.embed_tokens.weight' (or "
             "'model.language_model.embed_tokens.weight'): a Gemma3ForCondi"
             "tionalGeneration checkpoint keeps its text model under one of "
             "these prefixes";
      return nullptr;
    }
  }

  if (failed(checkTextTensors(*config, *index, prefix, dirLoc)))
    return nullptr;
  llvm::StringSet<> expectedNames;
  for (const ExpectedTensor &e : expectedTensors(*config))
    expectedNames.insert(prefix + e.name);
  // Anything else must be non-text or the tied head; report the first
  // unexpected name in sorted order so the message is deterministic.
  llvm::SmallVector<StringRef> extras;
  const std::string tiedHead = config->nested
                                   ? (prefix == "model.language_model."
                                          ? "lm_head.weight"
                                          : "language_model.lm_head.weight")
                                   : "lm_head.weight";
  for (const auto &entry : *index) {
    StringRef name = entry.first();
    if (expectedNames.contains(name) || isNonTextTensor(name))
      continue;
    if (name == tiedHead || name == "lm_head.weight") {
      const SafetensorsTensor &embed =
          index->find(prefix + "embed_tokens.weight")->second;
      if (entry.second.shape == embed.shape)
        continue; // the tied output head: the importer uses embed_tokens
    }
    extras.push_back(name);
  }
  if (!extras.empty()) {
    llvm::sort(extras);
    const SafetensorsTensor &t = index->find(extras.front())->second;
    emitError(FileLineColLoc::get(context, t.file, 0, 0))
        << "unexpected tensor '" << extras.front() << "' (" << extras.size()
        << " tensor(s) not part of a "
        << (config->family == GemmaFamily::Gemma1   ? "Gemma 1"
            : config->family == GemmaFamily::Gemma2 ? "Gemma 2"
                                                    : "Gemma 3")
        << " text model with " << config->numLayers << " layers)";
    return nullptr;
  }

  llvm::SmallString<256> tokPath(absDir);
  llvm::sys::path::append(tokPath, "tokenizer.model");
  FailureOr<TokenizerInfo> tokenizer = loadTokenizerInfo(tokPath, context);
  if (failed(tokenizer))
    return nullptr;
  if (tokenizer->pieces > config->vocabSize) {
    emitError(FileLineColLoc::get(context, tokPath, 0, 0))
        << "the tokenizer has " << tokenizer->pieces
        << " pieces, more than the " << config->vocabSize
        << " embedding rows (vocab_size in " << configPath << ")";
    return nullptr;
  }
  for (int64_t id : config->eosTokenIds)
    if (id >= tokenizer->pieces) {
      emitError(FileLineColLoc::get(context, configPath, 0, 0))
          << "key 'eos_token_id': id " << id << " is outside the tokenizer's "
          << tokenizer->pieces << " pieces";
      return nullptr;
    }
  for (auto [key, id] : {std::make_pair("bos_token_id", config->bosTokenId),
                         std::make_pair("pad_token_id", config->padTokenId)})
    if (id && *id >= tokenizer->pieces) {
      emitError(FileLineColLoc::get(context, configPath, 0, 0))
          << "key '" << key << "': id " << *id << " is outside the tokenizer's "
          << tokenizer->pieces << " pieces";
      return nullptr;
    }

  WeightDtype dtype = WeightDtype::F32;
  if (opts.dtype) {
    dtype = *opts.dtype;
  } else {
    StringRef source =
        index->find(prefix + "embed_tokens.weight")->second.dtype;
    dtype = source == "BF16"  ? WeightDtype::BF16
            : source == "F16" ? WeightDtype::F16
                              : WeightDtype::F32;
  }

  return buildGemmaModule(*config, *index, prefix, *tokenizer, dtype,
                          opts.maxChunk, context);
}

LogicalResult checkTextTensors(const TextConfig &config,
                               const SafetensorsIndex &index, StringRef prefix,
                               Location where) {
  for (const ExpectedTensor &e : expectedTensors(config)) {
    std::string name = prefix.str() + e.name;
    auto it = index.find(name);
    if (it == index.end())
      return emitError(where)
             << "missing tensor '" << name << "' (expected shape "
             << shapeString(e.shape) << ")";
    if (llvm::ArrayRef<int64_t>(it->second.shape) !=
        llvm::ArrayRef<int64_t>(e.shape))
      return emitError(
                 FileLineColLoc::get(where.getContext(), it->second.file, 0, 0))
             << "tensor '" << name << "': shape "
             << shapeString(it->second.shape) << " does not match "
             << llvm::sys::path::filename(config.configPath) << ", expected "
             << shapeString(e.shape);
  }
  return success();
}

OwningOpRef<ModuleOp>
buildGemmaModule(const TextConfig &config, const SafetensorsIndex &index,
                 StringRef prefix, const TokenizerInfo &tokenizer,
                 WeightDtype dtype, int64_t maxChunk, MLIRContext *context) {
  context->loadDialect<gemma::GemmaDialect, func::FuncDialect>();
  Importer importer(context, config, index, tokenizer, prefix.str(), dtype,
                    maxChunk);
  OwningOpRef<ModuleOp> module = importer.build();
  if (failed(verify(*module)))
    return nullptr;
  return module;
}

} // namespace gemmac
