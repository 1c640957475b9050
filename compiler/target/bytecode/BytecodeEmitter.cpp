//===- BytecodeEmitter.cpp - gemma IR -> .gmc module file -----------------===//
//
// The FlatBuffer precedes the weights in the file but holds their checksums,
// so it is built twice: once with placeholder checksums to learn its size
// (ForceDefaults makes the size independent of the scalar values), then again
// with the checksums computed while the weights streamed out. Each weight is
// read once, from the mapped checkpoint file.
//
//===----------------------------------------------------------------------===//

#include "target/bytecode/BytecodeEmitter.h"

#include "dialect/GemmaOps.h"
#include "dialect/GemmaTypes.h"
#include "dialect/WeightClass.h"
#include "target/bytecode/GgmlDequant.h"
#include "target/bytecode/WeightConversion.h"
#include "target/bytecode/WeightQuantization.h"

#include "gemmac/module_format.h"
#include "gemmac/module_generated.h"
#include "gemmac/plugin.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Signals.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

using namespace mlir;
using llvm::StringRef;
namespace fbs = gemmac::schema;

namespace gemmac {
namespace {

constexpr StringRef kArenaOffset = "gemma.arena_offset";
constexpr StringRef kKvDtype = "gemma.kv_dtype";
constexpr StringRef kQuantization = "gemma.quantization";
constexpr StringRef kArenaOffsets = "gemma.arena_offsets";
constexpr StringRef kOperandSegmentSizes = "operandSegmentSizes";
/// An absent optional input (module.fbs, Instruction.inputs).
constexpr uint32_t kNoTensor = 0xFFFFFFFFu;

uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

FailureOr<fbs::DType> dtypeOf(Type element) {
  if (element.isF32())
    return fbs::DType::F32;
  if (element.isBF16())
    return fbs::DType::BF16;
  if (element.isF16())
    return fbs::DType::F16;
  if (element.isInteger(32))
    return fbs::DType::I32;
  if (isa<gemma::Q8CType>(element))
    return fbs::DType::Q8C;
  if (isa<gemma::Q4G32Type>(element))
    return fbs::DType::Q4G32;
  if (isa<gemma::Q4G128Type>(element))
    return fbs::DType::Q4G128;
  if (isa<gemma::Q4G32R8Type>(element))
    return fbs::DType::Q4G32R8;
  return failure();
}

bool isQuantized(fbs::DType d) {
  return d == fbs::DType::Q8C || d == fbs::DType::Q4G32 ||
         d == fbs::DType::Q4G128 || d == fbs::DType::Q4G32R8;
}

/// "q4g32": the spelling of required_features ("dtype:q4g32") and of the
/// summary.
std::string lowerName(fbs::DType d) {
  return StringRef(fbs::EnumNameDType(d)).lower();
}

/// Bytes of one element of an unquantized dtype (arena tensors, KV rows).
uint64_t dtypeBytes(fbs::DType d) {
  switch (d) {
  case fbs::DType::BF16:
  case fbs::DType::F16:
    return 2;
  case fbs::DType::I8:
    return 1;
  default:
    return 4;
  }
}

StringRef dtypeName(fbs::DType d) { return fbs::EnumNameDType(d); }

/// "rms_norm" -> "RmsNorm", the OpCode naming rule of module.fbs.
std::string camelCase(StringRef mnemonic) {
  std::string out;
  bool upper = true;
  for (char ch : mnemonic) {
    if (ch == '_') {
      upper = true;
      continue;
    }
    out.push_back(upper ? llvm::toUpper(ch) : ch);
    upper = false;
  }
  return out;
}

std::optional<fbs::OpCode> opCodeFor(StringRef mnemonic) {
  std::string name = camelCase(mnemonic);
  for (fbs::OpCode code : fbs::EnumValuesOpCode())
    if (name == fbs::EnumNameOpCode(code))
      return code;
  return std::nullopt;
}

std::string locationString(Location loc) {
  std::string s;
  llvm::raw_string_ostream os(s);
  if (auto name = dyn_cast<NameLoc>(loc)) {
    os << name.getName().getValue();
    if (auto file = dyn_cast<FileLineColLoc>(name.getChildLoc()))
      if (file.getLine() != 0)
        os << " (" << file.getFilename().getValue() << ":" << file.getLine()
           << ")";
    return s;
  }
  if (auto file = dyn_cast<FileLineColLoc>(loc)) {
    os << file.getFilename().getValue() << ":" << file.getLine() << ":"
       << file.getColumn();
    return s;
  }
  loc.print(os);
  return s;
}

std::string humanBytes(uint64_t bytes) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return llvm::formatv(u == 0 ? "{0:F0} {1}" : "{0:F2} {1}", v, units[u]).str();
}

struct WeightInfo {
  gemma::WeightOp op; // first op naming it
  uint32_t tensorId = 0;
  uint32_t segment = 0;
  fbs::DType dtype = fbs::DType::F32;
  WeightFormat source = WeightFormat::F32, target = WeightFormat::F32;
  /// A GGUF block format the source rows are stored in (None: `source`).
  GgmlBlockFormat ggml = GgmlBlockFormat::None;
  uint64_t elements = 0;
  uint64_t rows = 0, cols = 0; // the [rows, cols] matrix of a quantized one
  uint64_t bytes = 0;          // in the module
};

class Emitter {
public:
  Emitter(ModuleOp module, const BytecodeOptions &options)
      : module(module), options(options) {}

  LogicalResult collect();
  LogicalResult write(StringRef outputPath);

private:
  LogicalResult collectFunction(func::FuncOp fn);
  FailureOr<uint32_t> weightTensor(gemma::WeightOp op);
  FailureOr<uint32_t> arenaTensor(Value value, StringRef name,
                                  int64_t arenaOffset, uint64_t maxTokens,
                                  Location loc);
  LogicalResult fillModuleInfo();
  std::vector<uint8_t> buildProgram();
  LogicalResult writeWeights(llvm::raw_fd_ostream &os);
  LogicalResult writeQuantized(WeightInfo &w, const unsigned char *src,
                               llvm::raw_fd_ostream &os, uint64_t &hash,
                               uint64_t &done, uint64_t total);
  void progress(uint64_t done, uint64_t total, bool final);
  void printSummary(StringRef path, uint64_t fileSize);

  ModuleOp module;
  const BytecodeOptions &options;
  fbs::ModuleT program;
  llvm::StringMap<WeightInfo> weights;
  std::vector<std::string> weightOrder;
  std::map<int64_t, fbs::KvLayerT> kvLayers; // by layer index
  std::map<int64_t, Location> kvLayerLoc;
  uint64_t maxTokensAll = 0;
  uint64_t maxContext = 0;
  uint64_t weightsOffset = 0, weightsEnd = 0;
  int lastPercent = -1;
  struct ArenaPlan {
    std::string function;
    uint64_t size = 0, naive = 0, maxTokens = 0;
  };
  std::vector<ArenaPlan> arenaByFunction;
  fbs::DType kvDtype = fbs::DType::F32;
  /// Module.required_features: what a runtime needs beyond module format 1.0.
  std::set<std::string> features;
};

FailureOr<uint32_t> Emitter::weightTensor(gemma::WeightOp op) {
  auto type = cast<RankedTensorType>(op.getType());
  auto it = weights.find(op.getName());
  if (it != weights.end()) {
    gemma::WeightOp first = it->second.op;
    auto firstType = cast<RankedTensorType>(first.getType());
    if (firstType != type || first.getFile() != op.getFile() ||
        first.getOffset() != op.getOffset() ||
        first.getSourceDtype() != op.getSourceDtype()) {
      InFlightDiagnostic diag =
          op.emitOpError() << "weight '" << op.getName()
                           << "' is referenced twice with a "
                           << "different type or source: " << type << " from "
                           << op.getFile() << " at " << op.getOffset() << " ("
                           << op.getSourceDtype() << ") vs " << firstType
                           << " from " << first.getFile() << " at "
                           << first.getOffset() << " ("
                           << first.getSourceDtype() << ")";
      diag.attachNote(first.getLoc()) << "first referenced here";
      return diag;
    }
    return it->second.tensorId;
  }
  FailureOr<fbs::DType> dtype = dtypeOf(type.getElementType());
  if (failed(dtype) || *dtype == fbs::DType::I32)
    return op.emitOpError() << "weight element type must be f32, bf16, f16, "
                               "!gemma.q8c, !gemma.q4g32, !gemma.q4g128 or "
                               "!gemma.q4g32r8, got "
                            << type.getElementType();
  WeightInfo info;
  info.op = op;
  info.dtype = *dtype;
  // A quantized weight is quantized from f32 rows; the format is the
  // intermediate the rows are converted to.
  info.target = *dtype == fbs::DType::BF16  ? WeightFormat::BF16
                : *dtype == fbs::DType::F16 ? WeightFormat::F16
                                            : WeightFormat::F32;
  StringRef src = op.getSourceDtype();
  info.source = src == "F32"    ? WeightFormat::F32
                : src == "BF16" ? WeightFormat::BF16
                                : WeightFormat::F16;
  info.ggml = ggmlBlockFormatOf(src);
  info.elements = type.getNumElements();
  info.bytes = info.elements * dtypeBytes(*dtype);
  if (isQuantized(*dtype)) {
    // The verifiers guarantee a static [rows, cols] that fits the group; the
    // layout's size is the plugin ABI's, so the two cannot disagree.
    if (type.getRank() != 2)
      return op.emitOpError()
             << "quantized weight must be rank 2, got " << type;
    info.rows = type.getDimSize(0);
    info.cols = type.getDimSize(1);
    int64_t bytes =
        gemmac_weight_bytes(static_cast<int32_t>(*dtype), info.rows, info.cols);
    if (bytes < 0)
      return op.emitOpError() << "weight " << type << " does not fit the "
                              << lowerName(*dtype) << " layout";
    info.bytes = static_cast<uint64_t>(bytes);
    features.insert("dtype:" + lowerName(*dtype));
  }
  info.tensorId = program.tensors.size();
  info.segment = program.segments.size();

  auto tensor = std::make_unique<fbs::TensorT>();
  tensor->name = op.getName().str();
  tensor->dtype = *dtype;
  tensor->shape.assign(type.getShape().begin(), type.getShape().end());
  tensor->storage = fbs::StorageKind::Weight;
  tensor->segment = info.segment;
  tensor->offset = 0;
  tensor->size_bytes = info.bytes;
  program.tensors.push_back(std::move(tensor));
  auto segment = std::make_unique<fbs::SegmentT>();
  segment->size = info.bytes;
  program.segments.push_back(std::move(segment));
  weightOrder.push_back(op.getName().str());
  uint32_t id = info.tensorId;
  weights[op.getName()] = info;
  return id;
}

FailureOr<uint32_t> Emitter::arenaTensor(Value value, StringRef name,
                                         int64_t arenaOffset,
                                         uint64_t maxTokens, Location loc) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type)
    return emitError(loc) << "expected a ranked tensor, got "
                          << value.getType();
  FailureOr<fbs::DType> dtype = dtypeOf(type.getElementType());
  if (failed(dtype))
    return emitError(loc) << "element type " << type.getElementType()
                          << " has no bytecode dtype (expected f32, bf16, f16 "
                             "or i32)";
  if (arenaOffset < 0)
    return emitError(loc) << "gemma.arena_offset must be non-negative, got "
                          << arenaOffset;
  auto tensor = std::make_unique<fbs::TensorT>();
  tensor->name = name.str();
  tensor->dtype = *dtype;
  uint64_t elements = 1;
  for (int64_t d : type.getShape()) {
    tensor->shape.push_back(ShapedType::isDynamic(d) ? kTokensDim : d);
    elements *= ShapedType::isDynamic(d) ? maxTokens : static_cast<uint64_t>(d);
  }
  tensor->storage = fbs::StorageKind::Arena;
  tensor->offset = static_cast<uint64_t>(arenaOffset);
  tensor->size_bytes = elements * dtypeBytes(*dtype);
  uint32_t id = program.tensors.size();
  program.tensors.push_back(std::move(tensor));
  return id;
}

/// Reads an i64 attribute the memory planner must have set.
FailureOr<int64_t> plannedInt(Operation *op, Attribute attr, StringRef name) {
  auto i = dyn_cast_or_null<IntegerAttr>(attr);
  if (!i)
    return op->emitOpError() << "has no " << name
                             << " (i64); run the compile pipeline "
                                "(plan-memory) before emitting bytecode";
  return i.getInt();
}

LogicalResult Emitter::collectFunction(func::FuncOp fn) {
  auto function = std::make_unique<fbs::FunctionT>();
  function->name = fn.getSymName().str();
  FailureOr<int64_t> maxTokens =
      plannedInt(fn, fn->getAttr("gemma.max_tokens"), "gemma.max_tokens");
  FailureOr<int64_t> arenaSize =
      plannedInt(fn, fn->getAttr("gemma.arena_size"), "gemma.arena_size");
  if (failed(maxTokens) || failed(arenaSize))
    return failure();
  if (*maxTokens < 1 || *maxTokens > UINT32_MAX)
    return fn.emitOpError()
           << "gemma.max_tokens must be in [1, 2^32), got " << *maxTokens;
  if (*arenaSize < 0)
    return fn.emitOpError() << "gemma.arena_size must be non-negative";
  function->max_tokens = static_cast<uint32_t>(*maxTokens);
  function->arena_bytes = static_cast<uint64_t>(*arenaSize);
  maxTokensAll = std::max<uint64_t>(maxTokensAll, *maxTokens);
  ArenaPlan plan;
  plan.function = function->name;
  plan.size = function->arena_bytes;
  plan.maxTokens = function->max_tokens;
  if (auto naive = fn->getAttrOfType<IntegerAttr>("gemma.arena_naive_size"))
    plan.naive = static_cast<uint64_t>(naive.getInt());
  arenaByFunction.push_back(plan);

  if (!fn.getBody().hasOneBlock())
    return fn.emitOpError() << "expects a single-block body";
  Block &body = fn.getBody().front();
  llvm::DenseMap<Value, uint32_t> ids;
  for (BlockArgument arg : body.getArguments()) {
    FailureOr<int64_t> offset = plannedInt(
        fn, fn.getArgAttr(arg.getArgNumber(), kArenaOffset),
        ("argument #" + llvm::Twine(arg.getArgNumber()) + " " + kArenaOffset)
            .str());
    if (failed(offset))
      return failure();
    FailureOr<uint32_t> id = arenaTensor(
        arg, (function->name + ".arg" + llvm::Twine(arg.getArgNumber())).str(),
        *offset, *maxTokens, fn.getLoc());
    if (failed(id))
      return failure();
    ids[arg] = *id;
    function->inputs.push_back(*id);
  }

  unsigned counter = 0;
  for (Operation &op : body) {
    if (auto w = dyn_cast<gemma::WeightOp>(op)) {
      FailureOr<uint32_t> id = weightTensor(w);
      if (failed(id))
        return failure();
      ids[w.getResult()] = *id;
      continue;
    }
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      for (Value v : ret.getOperands())
        function->outputs.push_back(ids.lookup(v));
      continue;
    }
    if (op.getDialect() == nullptr ||
        op.getDialect()->getNamespace() != "gemma")
      return op.emitOpError() << "has no bytecode form (only gemma ops, "
                                 "gemma.weight and func.return are emitted)";
    StringRef mnemonic = op.getName().stripDialect();
    std::optional<fbs::OpCode> code = opCodeFor(mnemonic);
    if (!code)
      return op.emitOpError() << "has no OpCode in module.fbs (looked for '"
                              << camelCase(mnemonic) << "')";
    if (op.getNumResults() == 0)
      return op.emitOpError() << "expects at least one result";

    auto inst = std::make_unique<fbs::InstructionT>();
    inst->op = *code;
    // Ops added after module format 1.0 (the fused ones) are features a
    // runtime must have.
    if (static_cast<int>(*code) > static_cast<int>(fbs::OpCode::LmHead))
      features.insert(("op:" + mnemonic).str());
    // Ops with optional operands (AttrSizedOperandSegments) keep fixed input
    // positions in the bytecode: an absent operand is written as kNoTensor.
    auto segments = op.getAttrOfType<DenseI32ArrayAttr>(kOperandSegmentSizes);
    unsigned next = 0;
    auto pushOperand = [&](Value operand) -> LogicalResult {
      auto it = ids.find(operand);
      if (it == ids.end())
        return op.emitOpError() << "operand is not defined in this function";
      inst->inputs.push_back(it->second);
      return success();
    };
    if (auto mlp = dyn_cast<gemma::GatedMlpOp>(op)) {
      // One optional operand needs no segment sizes in ODS; place it here.
      if (failed(pushOperand(mlp.getInput())))
        return failure();
      if (mlp.getNorm()) {
        if (failed(pushOperand(mlp.getNorm())))
          return failure();
      } else {
        inst->inputs.push_back(kNoTensor);
      }
      if (failed(pushOperand(mlp.getWGate())) ||
          failed(pushOperand(mlp.getWUp())))
        return failure();
    } else if (segments) {
      for (int32_t size : segments.asArrayRef()) {
        if (size == 0)
          inst->inputs.push_back(kNoTensor);
        for (int32_t i = 0; i < size; ++i)
          if (failed(pushOperand(op.getOperand(next++))))
            return failure();
      }
    } else {
      for (Value operand : op.getOperands())
        if (failed(pushOperand(operand)))
          return failure();
    }
    auto attrs = std::make_unique<fbs::OpAttributesT>();
    // One arena offset per result: `gemma.arena_offset` (i64) on a
    // single-result op, `gemma.arena_offsets` (array<i64>) on the others.
    llvm::SmallVector<int64_t> arenaOffsets;
    for (NamedAttribute named : op.getAttrs()) {
      StringRef key = named.getName().getValue();
      Attribute value = named.getValue();
      if (key == kArenaOffset) {
        if (auto i = dyn_cast<IntegerAttr>(value))
          arenaOffsets.assign(1, i.getInt());
        continue;
      }
      if (key == kArenaOffsets) {
        if (auto a = dyn_cast<DenseI64ArrayAttr>(value))
          arenaOffsets.assign(a.asArrayRef().begin(), a.asArrayRef().end());
        continue;
      }
      if (key == kOperandSegmentSizes)
        continue;
      if (key.starts_with("gemma."))
        continue; // other planning annotations
      if (auto f = dyn_cast<FloatAttr>(value)) {
        float v = static_cast<float>(f.getValueAsDouble());
        if (key == "scale")
          attrs->scale = v;
        else if (key == "eps")
          attrs->eps = v;
        else if (key == "offset")
          attrs->offset = v;
        else if (key == "theta")
          attrs->theta = v;
        else if (key == "rope_scale")
          attrs->rope_scale = v;
        else if (key == "softcap")
          attrs->softcap = v;
        else
          return op.emitOpError()
                 << "attribute '" << key << "' has no field in OpAttributes";
        continue;
      }
      if (auto i = dyn_cast<IntegerAttr>(value)) {
        int64_t v = i.getInt();
        if (v < INT32_MIN || v > INT32_MAX)
          return op.emitOpError() << "attribute '" << key << "' = " << v
                                  << " does not fit the bytecode's int32";
        int32_t v32 = static_cast<int32_t>(v);
        if (key == "head_dim")
          attrs->head_dim = v32;
        else if (key == "num_heads")
          attrs->num_heads = v32;
        else if (key == "num_kv_heads")
          attrs->num_kv_heads = v32;
        else if (key == "window")
          attrs->window = v32;
        else if (key == "layer")
          attrs->layer = v32;
        else if (key == "rows")
          attrs->rows = v32;
        else
          return op.emitOpError()
                 << "attribute '" << key << "' has no field in OpAttributes";
        continue;
      }
      return op.emitOpError()
             << "attribute '" << key << "' has no field in OpAttributes";
    }
    // RmsNorm's group size is dim(w); state it so a backend need not look
    // at the weight's shape.
    if (auto norm = dyn_cast<gemma::RmsNormOp>(op))
      attrs->head_dim = static_cast<int32_t>(
          cast<RankedTensorType>(norm.getWeight().getType()).getDimSize(0));
    if (arenaOffsets.size() != op.getNumResults()) {
      InFlightDiagnostic diag = op.emitOpError() << "has no ";
      if (op.getNumResults() == 1)
        diag << kArenaOffset << " (i64)";
      else
        diag << kArenaOffsets << " (one i64 for each of its "
             << op.getNumResults() << " results)";
      return diag << "; run the compile pipeline (plan-memory) before "
                     "emitting bytecode";
    }

    if (auto attn = dyn_cast<gemma::AttentionOp>(op)) {
      int64_t layer = attn.getLayer();
      fbs::KvLayerT kv;
      kv.num_kv_heads = attn.getNumKvHeads();
      kv.head_dim = attn.getHeadDim();
      kv.window = attn.getWindow();
      kv.dtype = kvDtype;
      auto [it, inserted] = kvLayers.try_emplace(layer, kv);
      if (inserted) {
        kvLayerLoc.try_emplace(layer, op.getLoc());
      } else if (it->second.num_kv_heads != kv.num_kv_heads ||
                 it->second.head_dim != kv.head_dim ||
                 it->second.window != kv.window) {
        InFlightDiagnostic diag =
            op.emitOpError()
            << "KV cache layer " << layer
            << " is used with a different num_kv_heads, head_dim or window "
               "than before";
        diag.attachNote(kvLayerLoc.at(layer)) << "first used here";
        return diag;
      }
    }

    std::string name =
        (function->name + "." + llvm::Twine(counter++) + "." + mnemonic).str();
    for (OpResult result : op.getResults()) {
      std::string resultName =
          op.getNumResults() == 1
              ? name
              : (name + "." + llvm::Twine(result.getResultNumber())).str();
      FailureOr<uint32_t> out = arenaTensor(
          result, resultName, arenaOffsets[result.getResultNumber()],
          *maxTokens, op.getLoc());
      if (failed(out))
        return failure();
      ids[result] = *out;
      inst->outputs.push_back(*out);
    }
    inst->attrs = std::move(attrs);
    inst->location = locationString(op.getLoc());
    function->instructions.push_back(std::move(inst));
  }
  program.functions.push_back(std::move(function));
  return success();
}

LogicalResult Emitter::fillModuleInfo() {
  Operation *m = module.getOperation();
  auto config = m->getAttrOfType<DictionaryAttr>("gemma.config");
  if (!config)
    return module.emitError() << "missing module attribute gemma.config "
                                 "(set by the importer)";
  auto cfg = std::make_unique<fbs::ModelConfigT>();
  auto getInt = [&](StringRef key, uint32_t &out) -> LogicalResult {
    auto i = config.getAs<IntegerAttr>(key);
    if (!i || i.getInt() < 0 || i.getInt() > UINT32_MAX)
      return module.emitError()
             << "gemma.config." << key << ": expected a non-negative i64";
    out = static_cast<uint32_t>(i.getInt());
    return success();
  };
  auto getFloat = [&](StringRef key, float &out) -> LogicalResult {
    auto f = config.getAs<FloatAttr>(key);
    if (!f)
      return module.emitError()
             << "gemma.config." << key << ": expected a float";
    out = static_cast<float>(f.getValueAsDouble());
    return success();
  };
  auto family = config.getAs<StringAttr>("family");
  if (!family ||
      (family.getValue() != "gemma1" && family.getValue() != "gemma2" &&
       family.getValue() != "gemma3"))
    return module.emitError()
           << "gemma.config.family: expected \"gemma1\", \"gemma2\" or "
              "\"gemma3\"";
  cfg->family = family.getValue() == "gemma1"   ? fbs::ModelFamily::Gemma1
                : family.getValue() == "gemma2" ? fbs::ModelFamily::Gemma2
                                                : fbs::ModelFamily::Gemma3;
  if (auto arch = config.getAs<StringAttr>("architecture"))
    cfg->architecture = arch.getValue().str();
  uint32_t pieces = 0;
  if (failed(getInt("hidden_size", cfg->hidden_size)) ||
      failed(getInt("intermediate_size", cfg->intermediate_size)) ||
      failed(getInt("num_layers", cfg->num_layers)) ||
      failed(getInt("num_heads", cfg->num_heads)) ||
      failed(getInt("num_kv_heads", cfg->num_kv_heads)) ||
      failed(getInt("head_dim", cfg->head_dim)) ||
      failed(getInt("vocab_size", cfg->vocab_size)) ||
      failed(getInt("max_context", cfg->max_context)) ||
      failed(getInt("sliding_window", cfg->sliding_window)) ||
      failed(getInt("tokenizer_pieces", pieces)) ||
      failed(getFloat("rope_theta", cfg->rope_theta)) ||
      failed(getFloat("rope_local_theta", cfg->rope_local_theta)) ||
      failed(getFloat("rope_scaling_factor", cfg->rope_scaling_factor)) ||
      failed(getFloat("rms_norm_eps", cfg->rms_norm_eps)) ||
      failed(getFloat("query_pre_attn_scalar", cfg->query_pre_attn_scalar)) ||
      failed(getFloat("attn_softcap", cfg->attn_softcap)) ||
      failed(getFloat("final_softcap", cfg->final_softcap)))
    return failure();
  if (auto sliding = config.getAs<DenseBoolArrayAttr>("layer_is_sliding"))
    cfg->layer_is_sliding.assign(sliding.asArrayRef().begin(),
                                 sliding.asArrayRef().end());
  maxContext = cfg->max_context;
  uint64_t params = 0;
  for (const auto &entry : weights)
    params += entry.second.elements;
  cfg->parameter_count = params;
  program.config = std::move(cfg);
  program.tokenizer_vocab_size = pieces;

  // Tokenizer bytes: a model the importer built (GGUF), or tokenizer.model.
  if (auto model = m->getAttrOfType<StringAttr>("gemma.tokenizer_model")) {
    program.tokenizer.assign(model.getValue().bytes_begin(),
                             model.getValue().bytes_end());
  } else {
    auto tokPath = m->getAttrOfType<StringAttr>("gemma.tokenizer");
    if (!tokPath)
      return module.emitError() << "missing module attribute gemma.tokenizer "
                                   "(path of tokenizer.model) or "
                                   "gemma.tokenizer_model (its bytes)";
    auto tokBuf = llvm::MemoryBuffer::getFile(tokPath.getValue(),
                                              /*IsText=*/false);
    if (!tokBuf)
      return module.emitError()
             << "cannot read tokenizer " << tokPath.getValue() << ": "
             << tokBuf.getError().message();
    StringRef tokBytes = (*tokBuf)->getBuffer();
    program.tokenizer.assign(tokBytes.bytes_begin(), tokBytes.bytes_end());
  }

  auto special = m->getAttrOfType<DictionaryAttr>("gemma.special_tokens");
  if (!special)
    return module.emitError()
           << "missing module attribute gemma.special_tokens";
  auto st = std::make_unique<fbs::SpecialTokensT>();
  auto id = [&](StringRef key) -> int32_t {
    auto i = special.getAs<IntegerAttr>(key);
    return i ? static_cast<int32_t>(i.getInt()) : -1;
  };
  st->pad = id("pad");
  st->eos = id("eos");
  st->bos = id("bos");
  st->unk = id("unk");
  st->start_of_turn = id("start_of_turn");
  st->end_of_turn = id("end_of_turn");
  if (auto stop = special.getAs<DenseI64ArrayAttr>("stop"))
    for (int64_t s : stop.asArrayRef())
      st->stop.push_back(static_cast<int32_t>(s));
  program.special_tokens = std::move(st);

  auto chat = std::make_unique<fbs::ChatFormatT>();
  chat->turn_start = "<start_of_turn>";
  chat->turn_end = "<end_of_turn>";
  chat->user_role = "user";
  chat->model_role = "model";
  chat->system = fbs::SystemPrompt::FoldIntoFirstUser;
  if (auto dict = m->getAttrOfType<DictionaryAttr>("gemma.chat")) {
    auto str = [&](StringRef key, std::string &out) {
      if (auto s = dict.getAs<StringAttr>(key))
        out = s.getValue().str();
    };
    str("turn_start", chat->turn_start);
    str("turn_end", chat->turn_end);
    str("user_role", chat->user_role);
    str("model_role", chat->model_role);
    if (auto s = dict.getAs<StringAttr>("system"))
      if (s.getValue() == "reject")
        chat->system = fbs::SystemPrompt::Reject;
  }
  program.chat = std::move(chat);
  program.producer = options.producer;

  // KV layers, indexed 0..n-1 by the attention ops' `layer`.
  int64_t expected = 0;
  for (auto &[layer, kv] : kvLayers) {
    if (layer != expected)
      return emitError(kvLayerLoc.at(layer))
             << "KV cache layers must be numbered 0.." << kvLayers.size() - 1
             << " without gaps; layer " << expected << " is missing";
    ++expected;
    auto entry = std::make_unique<fbs::KvLayerT>(kv);
    if (kv.window > 0) {
      uint64_t capacity = static_cast<uint64_t>(kv.window) + maxTokensAll;
      if (maxContext > 0)
        capacity = std::min<uint64_t>(capacity, maxContext);
      entry->capacity = static_cast<uint32_t>(capacity);
    }
    program.kv_layers.push_back(std::move(entry));
  }
  return success();
}

LogicalResult Emitter::collect() {
  // The KV cache dtype applies to every layer, so it is known before the
  // attention ops are read.
  if (Attribute attr = module->getAttr(kKvDtype)) {
    auto name = dyn_cast<StringAttr>(attr);
    if (!name || (name.getValue() != "f32" && name.getValue() != "i8"))
      return module.emitError() << "module attribute " << kKvDtype
                                << " must be \"f32\" or \"i8\", got " << attr;
    if (name.getValue() == "i8") {
      kvDtype = fbs::DType::I8;
      features.insert("kv:i8");
    }
  }
  for (Operation &op : module.getBody()->getOperations()) {
    auto fn = dyn_cast<func::FuncOp>(op);
    if (!fn)
      return op.emitOpError() << "unexpected at module level (only func.func)";
    if (failed(collectFunction(fn)))
      return failure();
  }
  if (program.functions.empty())
    return module.emitError() << "the module has no functions";
  if (Attribute attr = module->getAttr(kQuantization)) {
    auto text = dyn_cast<StringAttr>(attr);
    if (!text)
      return module.emitError() << "module attribute " << kQuantization
                                << " must be a string, got " << attr;
    program.quantization = text.getValue().str();
  }
  program.required_features.assign(features.begin(), features.end());
  return fillModuleInfo();
}

std::vector<uint8_t> Emitter::buildProgram() {
  flatbuffers::FlatBufferBuilder fbb(1 << 20);
  fbb.ForceDefaults(true);
  fbb.Finish(fbs::Module::Pack(fbb, &program), fbs::ModuleIdentifier());
  return std::vector<uint8_t>(fbb.GetBufferPointer(),
                              fbb.GetBufferPointer() + fbb.GetSize());
}

void Emitter::progress(uint64_t done, uint64_t total, bool final) {
  if (!options.log)
    return;
  int percent = total ? static_cast<int>(done * 100 / total) : 100;
  if (options.interactive) {
    if (percent == lastPercent && !final)
      return;
    lastPercent = percent;
    const int width = 40;
    int filled = percent * width / 100;
    *options.log << "\rwriting weights [" << std::string(filled, '#')
                 << std::string(width - filled, ' ') << "] "
                 << llvm::format("%3d%%", percent) << " " << humanBytes(done)
                 << " / " << humanBytes(total);
    if (final)
      *options.log << "\n";
    options.log->flush();
    return;
  }
  // Not a terminal: a handful of plain lines (0, 25, 50, 75, 100 %).
  int step = final ? 4 : percent / 25;
  if (step <= lastPercent)
    return;
  lastPercent = step;
  *options.log << "writing weights: " << step * 25 << "% (" << humanBytes(done)
               << " / " << humanBytes(total) << ")\n";
}

/// Non-finite values among `n` stored elements of `format`, and the index
/// (plus `base`) of the first; an f16 overflow to infinity counts too.
static uint64_t countNonFinite(const unsigned char *p, WeightFormat format,
                               uint64_t n, uint64_t base, uint64_t &first) {
  uint64_t count = 0;
  for (uint64_t i = 0; i < n; ++i) {
    bool bad;
    if (format == WeightFormat::F32) {
      uint32_t u;
      std::memcpy(&u, p + 4 * i, 4);
      bad = (u & 0x7f800000u) == 0x7f800000u;
    } else {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      uint16_t exp = format == WeightFormat::BF16 ? 0x7f80u : 0x7c00u;
      bad = (h & exp) == exp;
    }
    if (bad && count++ == 0)
      first = base + i;
  }
  return count;
}

LogicalResult Emitter::writeWeights(llvm::raw_fd_ostream &os) {
  uint64_t total = 0;
  for (const std::string &name : weightOrder)
    total += weights[name].bytes;
  uint64_t done = 0;
  progress(0, total, false);
  std::vector<unsigned char> buffer;
  const uint64_t chunkElements = 1 << 20;
  uint64_t pos = weightsOffset;
  for (const std::string &name : weightOrder) {
    WeightInfo &w = weights[name];
    fbs::SegmentT &segment = *program.segments[w.segment];
    // Zero padding up to the segment's 4 KiB boundary.
    uint64_t start = alignUp(pos, kSegmentAlignment);
    static const char zeros[4096] = {};
    os.write(zeros, start - pos);
    segment.offset = start;

    StringRef file = w.op.getFile();
    // A GGUF block format is read a row (the last dimension) at a time.
    const uint64_t srcCols =
        w.ggml == GgmlBlockFormat::None
            ? 0
            : static_cast<uint64_t>(
                  cast<RankedTensorType>(w.op.getType()).getShape().back());
    uint64_t srcBytes =
        w.ggml == GgmlBlockFormat::None
            ? w.elements * weightFormatBytes(w.source)
            : w.elements / srcCols * ggmlRowBytes(w.ggml, srcCols);
    uint64_t fileSize = 0;
    if (std::error_code ec = llvm::sys::fs::file_size(file, fileSize))
      return w.op.emitOpError()
             << "cannot read " << file << ": " << ec.message();
    uint64_t offset = w.op.getOffset();
    if (offset > fileSize || srcBytes > fileSize - offset)
      return w.op.emitOpError()
             << "bytes [" << offset << ", " << offset + srcBytes << ") of '"
             << name << "' lie outside " << file << " (" << fileSize
             << " bytes)";
    auto mapped = llvm::MemoryBuffer::getFileSlice(file, srcBytes, offset,
                                                   /*IsVolatile=*/false);
    if (!mapped)
      return w.op.emitOpError()
             << "cannot map " << file << ": " << mapped.getError().message();
    const unsigned char *src =
        reinterpret_cast<const unsigned char *>((*mapped)->getBufferStart());
    uint64_t hash = 0xcbf29ce484222325ull;
    if (isQuantized(w.dtype)) {
      if (failed(writeQuantized(w, src, os, hash, done, total)))
        return failure();
      segment.checksum = hash;
      pos = start + w.bytes;
      if (os.has_error())
        return module.emitError() << "write error: " << os.error().message();
      continue;
    }
    size_t outElem = weightFormatBytes(w.target);
    size_t inElem = weightFormatBytes(w.source);
    if (w.ggml != GgmlBlockFormat::None) {
      // Decoded to f32 exactly, then stored as the float dtype.
      std::vector<float> row(srcCols);
      buffer.resize(srcCols * outElem);
      const uint64_t rowBytes = ggmlRowBytes(w.ggml, srcCols);
      for (uint64_t r = 0; r < w.elements / srcCols; ++r) {
        dequantizeRowGgml(w.ggml, src + r * rowBytes, srcCols, row.data());
        convertWeights(row.data(), WeightFormat::F32, buffer.data(), w.target,
                       srcCols);
        hash = Fnv1a64(buffer.data(), srcCols * outElem, hash);
        os.write(reinterpret_cast<const char *>(buffer.data()),
                 srcCols * outElem);
        done += srcCols * outElem;
        progress(done, total, false);
      }
      segment.checksum = hash;
      pos = start + w.bytes;
      if (os.has_error())
        return module.emitError() << "write error: " << os.error().message();
      continue;
    }
    // A NaN or Inf weight is stored as is, with a warning: it may sit where
    // nothing reads it (a padding row), and refusing would leave no module.
    uint64_t nonFinite = 0, firstNonFinite = 0;
    for (uint64_t first = 0; first < w.elements; first += chunkElements) {
      uint64_t n = std::min(chunkElements, w.elements - first);
      const unsigned char *out = src + first * inElem;
      if (w.source != w.target) {
        buffer.resize(n * outElem);
        convertWeights(src + first * inElem, w.source, buffer.data(), w.target,
                       n);
        out = buffer.data();
      }
      nonFinite += countNonFinite(out, w.target, n, first, firstNonFinite);
      hash = Fnv1a64(out, n * outElem, hash);
      os.write(reinterpret_cast<const char *>(out), n * outElem);
      done += n * outElem;
      progress(done, total, false);
    }
    if (nonFinite != 0)
      w.op.emitWarning() << "weight '" << name << "' has " << nonFinite
                         << " non-finite value(s) (NaN or Inf) as "
                         << lowerName(w.dtype) << ", the first at element "
                         << firstNonFinite
                         << "; stored as is, expected finite weights";
    segment.checksum = hash;
    pos = start + w.bytes;
    if (os.has_error())
      return module.emitError() << "write error: " << os.error().message();
  }
  weightsEnd = pos;
  progress(total, total, true);
  return success();
}

/// Quantizes `w` from its mapped source bytes while writing it, a batch of
/// rows at a time: the tensor is never held whole, in f32 or in its module
/// form. Q8C's scales follow all its rows, so they are kept (4 bytes a row)
/// and written last. Q4G32R8 rows are quantized exactly as Q4G32 and each
/// group of 8 is then interleaved (batches are whole groups; the layout has
/// the same size, so rowBytes is the Q4G32 one).
LogicalResult Emitter::writeQuantized(WeightInfo &w, const unsigned char *src,
                                      llvm::raw_fd_ostream &os, uint64_t &hash,
                                      uint64_t &done, uint64_t total) {
  StringRef name = w.op.getName();
  const uint64_t rows = w.rows, cols = w.cols;
  const size_t inElem = weightFormatBytes(w.source);
  const bool packed = w.dtype == fbs::DType::Q4G32R8;
  const bool q4g32 = w.dtype == fbs::DType::Q4G32 || packed;
  const uint64_t rowBytes = w.dtype == fbs::DType::Q8C ? cols
                            : q4g32 ? cols / kQ4G32Block * kQ4G32BlockBytes
                                    : cols / kQ4G128Block * kQ4G128BlockBytes;
  uint64_t batch = std::max<uint64_t>(1, (1u << 20) / cols);
  // rows % 8 == 0 (gemmac_weight_bytes refused anything else), so batches
  // of whole groups leave a last batch of whole groups too.
  if (packed)
    batch = alignUp(batch, kQ4G32R8Rows);
  std::vector<float> row(cols);
  std::vector<unsigned char> out(std::min(batch, rows) * rowBytes);
  std::vector<unsigned char> interleaved(packed ? out.size() : 0);
  std::vector<float> scales;
  if (w.dtype == fbs::DType::Q8C)
    scales.reserve(rows);
  // A GGUF source: Q4_0 into Q4G32 is the same bytes, copied; anything else
  // is decoded and requantized, and what that cost is measured and reported.
  const bool ggml = w.ggml != GgmlBlockFormat::None;
  const bool copyQ4 = w.ggml == GgmlBlockFormat::Q4_0 && q4g32;
  const uint64_t ggmlRow = ggml ? ggmlRowBytes(w.ggml, cols) : 0;
  std::vector<float> back(ggml && !copyQ4 ? cols : 0);
  float maxError = 0.0f, maxAbs = 0.0f;
  for (uint64_t first = 0; first < rows; first += batch) {
    uint64_t n = std::min(batch, rows - first);
    for (uint64_t r = 0; r < n; ++r) {
      uint64_t index = first + r;
      const unsigned char *in = src + index * cols * inElem;
      if (copyQ4) {
        std::memcpy(out.data() + r * rowBytes, src + index * ggmlRow, rowBytes);
        continue;
      }
      if (ggml) {
        dequantizeRowGgml(w.ggml, src + index * ggmlRow, cols, row.data());
      } else if (w.source == WeightFormat::BF16) {
        // The common checkpoint dtype: a shift, in a loop that vectorizes.
        for (uint64_t j = 0; j < cols; ++j) {
          uint16_t h;
          std::memcpy(&h, in + 2 * j, 2);
          uint32_t u = static_cast<uint32_t>(h) << 16;
          std::memcpy(&row[j], &u, 4);
        }
      } else {
        convertWeights(in, w.source, row.data(), WeightFormat::F32, cols);
      }
      bool finite = true;
      for (uint64_t j = 0; j < cols; ++j)
        finite &= std::isfinite(row[j]);
      for (uint64_t j = 0; !finite && j < cols; ++j)
        if (!std::isfinite(row[j]))
          return w.op.emitOpError()
                 << "weight '" << name << "' has a non-finite value (" << row[j]
                 << ") at [" << index << ", " << j << "]; it "
                 << "cannot be stored as " << lowerName(w.dtype);
      unsigned char *dst = out.data() + r * rowBytes;
      bool ok = true;
      if (w.dtype == fbs::DType::Q8C)
        scales.push_back(
            quantizeRowQ8C(row.data(), cols, reinterpret_cast<int8_t *>(dst)));
      else if (q4g32)
        ok = quantizeRowQ4G32(row.data(), cols, dst);
      else
        ok = quantizeRowQ4G128(row.data(), cols, dst);
      if (!ok)
        return w.op.emitOpError()
               << "weight '" << name << "' row " << index << " has values "
               << "too large for the f16 scale of " << lowerName(w.dtype)
               << " (the largest f16 is 65504); store it as q8 or a float "
                  "dtype instead";
      if (ggml) {
        if (w.dtype == fbs::DType::Q8C)
          dequantizeRowQ8C(reinterpret_cast<const int8_t *>(dst), scales.back(),
                           cols, back.data());
        else if (q4g32)
          dequantizeRowQ4G32(dst, cols, back.data());
        else
          dequantizeRowQ4G128(dst, cols, back.data());
        for (uint64_t j = 0; j < cols; ++j) {
          maxError = std::max(maxError, std::fabs(back[j] - row[j]));
          maxAbs = std::max(maxAbs, std::fabs(row[j]));
        }
      }
    }
    const unsigned char *bytes = out.data();
    if (packed) {
      for (uint64_t g = 0; g < n; g += kQ4G32R8Rows)
        packQ4G32R8(out.data() + g * rowBytes, cols,
                    interleaved.data() + g * rowBytes);
      bytes = interleaved.data();
    }
    hash = Fnv1a64(bytes, n * rowBytes, hash);
    os.write(reinterpret_cast<const char *>(bytes), n * rowBytes);
    done += n * rowBytes;
    progress(done, total, false);
  }
  if (w.dtype == fbs::DType::Q8C) {
    // Little-endian f32, like every number in the file.
    const unsigned char *bytes =
        reinterpret_cast<const unsigned char *>(scales.data());
    hash = Fnv1a64(bytes, scales.size() * 4, hash);
    os.write(reinterpret_cast<const char *>(bytes), scales.size() * 4);
    done += scales.size() * 4;
    progress(done, total, false);
  }
  if (ggml && !copyQ4) {
    char measured[96];
    std::snprintf(measured, sizeof(measured),
                  "max abs error %.3g (largest |w| %.3g)", maxError, maxAbs);
    w.op.emitWarning() << "weight '" << name << "' is " << w.op.getSourceDtype()
                       << " in the GGUF file, which has no identical "
                          "module format: requantized to "
                       << lowerName(w.dtype) << ", " << measured;
  }
  return success();
}

void Emitter::printSummary(StringRef path, uint64_t fileSize) {
  if (!options.log)
    return;
  llvm::raw_ostream &os = *options.log;
  const fbs::ModelConfigT &cfg = *program.config;
  unsigned local = 0;
  for (bool s : cfg.layer_is_sliding)
    local += s;
  std::map<std::string, uint64_t> byDtype;
  // Tensor class -> stored dtype -> number of tensors.
  std::map<WeightClass, std::map<std::string, unsigned>> byClass;
  uint64_t weightBytes = 0, params = 0;
  for (const auto &entry : weights) {
    const WeightInfo &w = entry.second;
    byDtype[dtypeName(w.dtype).str()] += w.bytes;
    byClass[weightClassOf(entry.first())][lowerName(w.dtype)] += 1;
    weightBytes += w.bytes;
    params += w.elements;
  }

  os << "wrote " << path << "\n";
  os << "  model       " << cfg.architecture << " ("
     << fbs::EnumNameModelFamily(cfg.family) << "), hidden " << cfg.hidden_size
     << ", " << cfg.num_heads << " heads / " << cfg.num_kv_heads
     << " KV heads x " << cfg.head_dim << "\n";
  os << "  layers      " << cfg.num_layers << " (" << local << " local, window "
     << cfg.sliding_window << "; " << cfg.num_layers - local << " global)\n";
  os << "  parameters  " << cfg.parameter_count << "\n";
  os << "  module      " << humanBytes(fileSize) << " (" << fileSize
     << " bytes)\n";
  os << "  weights    ";
  for (const auto &[dtype, bytes] : byDtype)
    os << " " << dtype << " " << humanBytes(bytes) << ";";
  os << " "
     << llvm::format("%.2f",
                     params ? 8.0 * static_cast<double>(weightBytes) / params
                            : 0.0)
     << " bits per weight\n";
  // The scheme each class ended up with; a class with several dtypes (a
  // matrix that did not fit the group) lists each with its tensor count.
  os << "  quant       "
     << (program.quantization.empty() ? std::string("(no policy recorded)")
                                      : program.quantization)
     << ":";
  for (const auto &[cls, dtypes] : byClass) {
    os << " " << weightClassName(cls);
    bool firstDtype = true;
    for (const auto &[dtype, count] : dtypes) {
      os << (firstDtype ? " " : " + ") << dtype;
      if (dtypes.size() > 1)
        os << " x" << count;
      firstDtype = false;
    }
    os << ";";
  }
  os << "\n";
  os << "  arena      ";
  for (const ArenaPlan &plan : arenaByFunction) {
    os << " " << plan.function << " " << humanBytes(plan.size);
    if (plan.naive)
      os << " (naive " << humanBytes(plan.naive) << ")";
    os << " for " << plan.maxTokens
       << (plan.maxTokens == 1 ? " token;" : " tokens;");
  }
  os << "\n";
  // Per layer kind: sliding layers hold a ring of `capacity` positions,
  // global ones grow with the context. Bytes per position count K and V
  // (and their f32 scales for an i8 cache).
  std::map<std::tuple<bool, uint64_t, uint64_t>, unsigned> kvGroups;
  for (const auto &kv : program.kv_layers) {
    uint64_t perPosition =
        2ull * kv->num_kv_heads * kv->head_dim * dtypeBytes(kv->dtype);
    if (kv->dtype == fbs::DType::I8)
      perPosition += 2ull * kv->num_kv_heads * 4;
    kvGroups[{kv->window == 0, kv->window ? kv->capacity : 0, perPosition}] +=
        1;
  }
  os << "  KV cache    " << lowerName(kvDtype) << ",";
  for (const auto &[key, layers] : kvGroups) {
    auto [global, capacity, perPosition] = key;
    if (global)
      os << " " << layers << " global layer" << (layers == 1 ? "" : "s") << ": "
         << humanBytes(perPosition) << " per token each;";
    else
      os << " " << layers << " sliding layer" << (layers == 1 ? "" : "s")
         << ": ring of " << capacity << " positions x "
         << humanBytes(perPosition) << " = "
         << humanBytes(capacity * perPosition) << " each;";
  }
  os << "\n";
  os << "  tokenizer   " << program.tokenizer_vocab_size << " pieces ("
     << humanBytes(program.tokenizer.size()) << ")\n";
}

/// Removes the temporary file unless the write committed.
struct TempFile {
  llvm::SmallString<256> path;
  bool committed = false;
  ~TempFile() {
    if (!committed && !path.empty()) {
      llvm::sys::fs::remove(path);
      llvm::sys::DontRemoveFileOnSignal(path);
    }
  }
};

LogicalResult Emitter::write(StringRef outputPath) {
  llvm::SmallString<256> absOut(outputPath);
  llvm::sys::fs::make_absolute(absOut);
  StringRef dir = llvm::sys::path::parent_path(absOut);
  if (!llvm::sys::fs::is_directory(dir))
    return module.emitError() << "cannot write " << absOut << ": directory "
                              << dir << " does not exist";

  std::vector<uint8_t> placeholder = buildProgram();
  const uint64_t programOffset = sizeof(ModuleHeader);
  weightsOffset =
      alignUp(programOffset + placeholder.size(), kSegmentAlignment);

  TempFile temp;
  int fd = -1;
  llvm::SmallString<256> model(absOut);
  model += ".tmp-%%%%%%%%";
  if (std::error_code ec =
          llvm::sys::fs::createUniqueFile(model, fd, temp.path))
    return module.emitError() << "cannot create a temporary file next to "
                              << absOut << ": " << ec.message();
  llvm::sys::RemoveFileOnSignal(temp.path);
  llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
  uint64_t fileSize = 0;
  auto writeAll = [&]() -> LogicalResult {
    // Reserve header + program + padding; rewritten once checksums are known.
    std::vector<char> zeros(weightsOffset, 0);
    os.write(zeros.data(), zeros.size());
    if (failed(writeWeights(os)))
      return failure();
    if (weightOrder.empty())
      weightsEnd = weightsOffset;
    fileSize = weightsEnd;

    std::vector<uint8_t> finalProgram = buildProgram();
    if (finalProgram.size() != placeholder.size())
      return module.emitError()
             << "internal error: the program changed size once checksums "
                "were filled in ("
             << placeholder.size() << " -> " << finalProgram.size() << ")";
    ModuleHeader header = {};
    std::memcpy(header.magic, kModuleMagic, sizeof(header.magic));
    header.version_major = kModuleVersionMajor;
    header.version_minor = kModuleVersionMinor;
    header.program_offset = programOffset;
    header.program_size = finalProgram.size();
    header.weights_offset = weightsOffset;
    header.weights_size = weightsEnd - weightsOffset;
    header.file_size = fileSize;
    os.seek(0);
    // The header is little-endian on disk; every supported host is too.
    os.write(reinterpret_cast<const char *>(&header), sizeof(header));
    os.write(reinterpret_cast<const char *>(finalProgram.data()),
             finalProgram.size());
    os.close();
    if (os.has_error())
      return module.emitError()
             << "cannot write " << temp.path << ": " << os.error().message();
    return success();
  };
  if (failed(writeAll())) {
    // raw_fd_ostream aborts on destruction with a pending error.
    os.clear_error();
    return failure();
  }
  if (std::error_code ec = llvm::sys::fs::rename(temp.path, absOut))
    return module.emitError() << "cannot rename " << temp.path << " to "
                              << absOut << ": " << ec.message();
  temp.committed = true;
  llvm::sys::DontRemoveFileOnSignal(temp.path);
  printSummary(absOut, fileSize);
  return success();
}

} // namespace

LogicalResult emitModuleFile(ModuleOp module, StringRef outputPath,
                             const BytecodeOptions &options) {
  Emitter emitter(module, options);
  if (failed(emitter.collect()))
    return failure();
  return emitter.write(outputPath);
}

} // namespace gemmac
