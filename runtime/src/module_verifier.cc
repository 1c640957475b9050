// Semantic checks of a module program, after the FlatBuffers Verifier has
// made every field safe to read. After these pass, the VM may index tensors,
// compute weight pointers and launch kernels without checking again: every
// id is in range, every byte range lies in the file or the arena, and every
// instruction's operands match its op's rules in docs/ops.md.
#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "gemmac/plugin.h"
#include "module.h"

namespace gemmac {
namespace {

using Shape = std::vector<int64_t>;
constexpr int64_t kT = kTokensDim;
constexpr int64_t kMaxDim = int64_t(1) << 40;

std::string ShapeStr(const Shape &s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i)
      r += ",";
    r += s[i] == kT ? "T" : std::to_string(s[i]);
  }
  return r + "]";
}

class Checker {
public:
  Checker(const std::string &file, const ModuleHeader &h, uint64_t file_size,
          const schema::Module &m)
      : file_(file), header_(h), file_size_(file_size), m_(m) {}

  Status Run();

private:
  Status Err(const std::string &msg) const {
    return Status(StatusCode::kDataLoss, file_ + ": " + msg);
  }
  std::string TensorName(uint32_t id) const {
    const schema::Tensor *t = m_.tensors()->Get(id);
    std::string n = t->name() ? t->name()->str() : std::string();
    return "tensor " + std::to_string(id) + (n.empty() ? "" : " '" + n + "'");
  }
  Shape ShapeOf(uint32_t id) const {
    const auto *s = m_.tensors()->Get(id)->shape();
    return s ? Shape(s->begin(), s->end()) : Shape();
  }
  schema::DType DTypeOf(uint32_t id) const {
    return m_.tensors()->Get(id)->dtype();
  }

  Status CheckFeatures();
  Status CheckSegments();
  Status CheckTensors();
  Status CheckSpecialTokens();
  Status CheckKvLayers();
  Status CheckFunction(const schema::Function &f);
  Status CheckArenaTensor(const schema::Function &f, const std::string &fname,
                          uint32_t id);
  Status CheckInstruction(const schema::Function &f, const std::string &where,
                          const schema::Instruction &ins);

  const std::string &file_;
  const ModuleHeader &header_;
  uint64_t file_size_;
  const schema::Module &m_;
  uint32_t max_tokens_any_ = 1;
};

Status Checker::Run() {
  // First, so that a module made for a newer runtime is refused for what it
  // needs, not for the first unknown dtype or op it happens to contain.
  GEMMAC_RETURN_IF_ERROR(CheckFeatures());
  if (m_.config() == nullptr)
    return Err("Module.config is missing");
  if (m_.tokenizer() == nullptr || m_.tokenizer()->size() == 0)
    return Err("Module.tokenizer is missing or empty; expected the "
               "sentencepiece model bytes");
  if (m_.tensors() == nullptr || m_.tensors()->size() == 0)
    return Err("Module.tensors is missing or empty");
  if (m_.functions() == nullptr)
    return Err("Module.functions is missing; expected \"prefill\" and "
               "\"decode\"");
  if (m_.tokenizer_vocab_size() == 0 ||
      m_.tokenizer_vocab_size() > m_.config()->vocab_size())
    return Err("Module.tokenizer_vocab_size is " +
               std::to_string(m_.tokenizer_vocab_size()) +
               "; expected 1..config.vocab_size (" +
               std::to_string(m_.config()->vocab_size()) + ")");
  for (const schema::Function *f : *m_.functions())
    max_tokens_any_ = std::max(max_tokens_any_, f->max_tokens());
  GEMMAC_RETURN_IF_ERROR(CheckSegments());
  GEMMAC_RETURN_IF_ERROR(CheckTensors());
  GEMMAC_RETURN_IF_ERROR(CheckSpecialTokens());
  GEMMAC_RETURN_IF_ERROR(CheckKvLayers());
  std::set<std::string> names;
  for (uint32_t i = 0; i < m_.functions()->size(); ++i) {
    const schema::Function *f = m_.functions()->Get(i);
    if (f->name() == nullptr || f->name()->size() == 0)
      return Err("function " + std::to_string(i) + " has no name");
    if (!names.insert(f->name()->str()).second)
      return Err("function name '" + f->name()->str() + "' appears twice");
    GEMMAC_RETURN_IF_ERROR(CheckFunction(*f));
  }
  for (const char *required : {"prefill", "decode"})
    if (!names.count(required))
      return Err(std::string("function \"") + required +
                 "\" is missing; a module needs \"prefill\" and \"decode\"");
  return Status::Ok();
}

Status Checker::CheckSegments() {
  if (m_.segments() == nullptr)
    return Status::Ok();
  uint64_t program_end = header_.program_offset + header_.program_size;
  for (uint32_t i = 0; i < m_.segments()->size(); ++i) {
    const schema::Segment *s = m_.segments()->Get(i);
    std::string where = "segment " + std::to_string(i);
    if (s->offset() % kSegmentAlignment != 0)
      return Err(where + ": offset " + std::to_string(s->offset()) +
                 " is not 4096-aligned");
    if (s->offset() < program_end)
      return Err(where + ": offset " + std::to_string(s->offset()) +
                 " overlaps the header or program (which end at " +
                 std::to_string(program_end) + ")");
    if (s->offset() > file_size_ || s->size() > file_size_ - s->offset())
      return Err(where + ": bytes [" + std::to_string(s->offset()) + ", +" +
                 std::to_string(s->size()) + ") lie outside the " +
                 std::to_string(file_size_) + "-byte file");
  }
  return Status::Ok();
}

Status Checker::CheckTensors() {
  uint32_t nsegs = m_.segments() ? m_.segments()->size() : 0;
  for (uint32_t id = 0; id < m_.tensors()->size(); ++id) {
    const schema::Tensor *t = m_.tensors()->Get(id);
    std::string where = TensorName(id);
    schema::DType dtype = t->dtype();
    if (DTypeSize(dtype) == 0 && !IsQuantizedDType(dtype))
      return Err(where + ": unknown dtype " +
                 std::to_string(static_cast<int>(dtype)) +
                 "; this runtime knows f32, bf16, f16, i32, i8, q8c, q4g32, "
                 "q4g128 and q4g32r8");
    // The FlatBuffers Verifier checks a vector's length prefix for 4-byte
    // alignment, not its 8-byte elements; the builder aligns them, so a
    // misaligned one is corrupt (and reading it would be undefined).
    if (const auto *sv = t->shape();
        sv != nullptr &&
        reinterpret_cast<uintptr_t>(sv->data()) % alignof(int64_t) != 0)
      return Err(where +
                 ": shape vector is not 8-byte aligned (its int64 elements "
                 "must be; corrupt FlatBuffer)");
    Shape s = ShapeOf(id);
    if (s.empty() || s.size() > 4)
      return Err(where + ": rank " + std::to_string(s.size()) +
                 "; expected 1..4");
    uint64_t elems = 1;
    bool symbolic = false;
    for (int64_t d : s) {
      if (d < kT || d > kMaxDim)
        return Err(where + ": shape " + ShapeStr(s) +
                   " has a dimension outside [-1 (T), 2^40]");
      if (d == kT)
        symbolic = true;
      else
        elems *= static_cast<uint64_t>(d);
      if (elems > (uint64_t(1) << 50))
        return Err(where + ": shape " + ShapeStr(s) + " is too large");
    }
    if (t->storage() == schema::StorageKind::Weight) {
      if (symbolic)
        return Err(where + ": weight with symbolic shape " + ShapeStr(s) +
                   "; weights have static shapes");
      if (!IsWeightDType(dtype))
        return Err(where + ": a weight of dtype " + DTypeName(dtype) +
                   "; i8 is a KV cache dtype, weights are f32, bf16, f16, "
                   "i32, q8c, q4g32, q4g128 or q4g32r8");
      if (t->segment() >= nsegs)
        return Err(where + ": segment " + std::to_string(t->segment()) +
                   " out of range; the module has " + std::to_string(nsegs) +
                   " segments");
      // The bytes the layout needs (docs/quantization.md): dense dtypes are
      // elements x element size; block formats are a [rows, cols] matrix
      // whose cols fill whole groups (and, packed, whose rows fill whole
      // row groups).
      uint64_t need = elems * DTypeSize(dtype);
      uint64_t align = DTypeSize(dtype);
      if (IsQuantizedDType(dtype)) {
        if (s.size() != 2 || s[0] <= 0 || s[1] <= 0)
          return Err(where + ": " + DTypeName(dtype) + ShapeStr(s) +
                     "; a quantized weight is a [rows, cols] matrix");
        int64_t bytes =
            gemmac_weight_bytes(static_cast<int32_t>(dtype), s[0], s[1]);
        if (bytes < 0 && dtype == schema::DType::Q4G32R8 && s[0] % 8 != 0)
          return Err(where + ": " + DTypeName(dtype) + ShapeStr(s) + ": rows " +
                     std::to_string(s[0]) +
                     " is not a multiple of 8 (the rows q4g32r8 packs "
                     "together)");
        if (bytes < 0)
          return Err(where + ": " + DTypeName(dtype) + ShapeStr(s) + ": cols " +
                     std::to_string(s[1]) + " is not a multiple of the " +
                     (dtype == schema::DType::Q4G128 ? "128" : "32") +
                     "-element group of " + DTypeName(dtype));
        need = static_cast<uint64_t>(bytes);
        // Q8C ends in f32 scales; the q4 blocks start with f16 scales.
        align = dtype == schema::DType::Q8C ? 4 : 2;
      }
      if (t->size_bytes() != need)
        return Err(where + ": size_bytes " + std::to_string(t->size_bytes()) +
                   " but " + ShapeStr(s) + " " + DTypeName(dtype) + " needs " +
                   std::to_string(need));
      if (t->offset() % align != 0)
        return Err(where + ": offset " + std::to_string(t->offset()) +
                   " is not a multiple of " + std::to_string(align) +
                   " (the alignment of " + DTypeName(dtype) + ")");
      uint64_t seg_size = m_.segments()->Get(t->segment())->size();
      if (t->offset() > seg_size || t->size_bytes() > seg_size - t->offset())
        return Err(where + ": bytes [" + std::to_string(t->offset()) + ", +" +
                   std::to_string(t->size_bytes()) +
                   ") lie past the end of "
                   "segment " +
                   std::to_string(t->segment()) + " (" +
                   std::to_string(seg_size) + " bytes)");
    } else if (t->storage() == schema::StorageKind::Arena) {
      if (IsQuantizedDType(dtype) || dtype == schema::DType::I8)
        return Err(where + ": an arena tensor of dtype " + DTypeName(dtype) +
                   "; activations are f32, bf16, f16 or i32");
    } else {
      return Err(where + ": unknown storage kind " +
                 std::to_string(static_cast<int>(t->storage())));
    }
  }
  return Status::Ok();
}

Status Checker::CheckFeatures() {
  const auto *req = m_.required_features();
  if (req == nullptr)
    return Status::Ok();
  const std::vector<std::string> &known = KnownFeatures();
  std::string unknown;
  size_t count = 0;
  for (const flatbuffers::String *f : *req) {
    std::string name = f ? f->str() : std::string();
    if (std::find(known.begin(), known.end(), name) != known.end())
      continue;
    unknown += (count++ ? ", \"" : "\"") + name + "\"";
  }
  if (count == 0)
    return Status::Ok();
  return Status(StatusCode::kUnimplemented,
                file_ + ": Module.required_features names " +
                    (count == 1 ? "a feature" : "features") +
                    " this runtime does not know: " + unknown + "; this is " +
                    RuntimeVersionString() +
                    ". Run the module on a newer runtime, or recompile it "
                    "without the options that need " +
                    (count == 1 ? "it" : "them"));
}

Status Checker::CheckSpecialTokens() {
  const schema::SpecialTokens *st = m_.special_tokens();
  if (st == nullptr)
    return Status::Ok();
  int64_t vocab = m_.tokenizer_vocab_size();
  const std::pair<const char *, int32_t> ids[] = {
      {"pad", st->pad()},
      {"eos", st->eos()},
      {"bos", st->bos()},
      {"unk", st->unk()},
      {"start_of_turn", st->start_of_turn()},
      {"end_of_turn", st->end_of_turn()}};
  for (const auto &[name, id] : ids)
    if (id < -1 || id >= vocab)
      return Err(std::string("special_tokens.") + name + " is " +
                 std::to_string(id) +
                 "; expected -1 (none) or an id below "
                 "the tokenizer vocabulary (" +
                 std::to_string(vocab) + ")");
  if (st->stop())
    for (uint32_t i = 0; i < st->stop()->size(); ++i) {
      int32_t id = st->stop()->Get(i);
      if (id < 0 || id >= vocab)
        return Err("special_tokens.stop[" + std::to_string(i) + "] is " +
                   std::to_string(id) + "; expected an id in [0, " +
                   std::to_string(vocab) + ")");
    }
  return Status::Ok();
}

Status Checker::CheckKvLayers() {
  if (m_.kv_layers() == nullptr)
    return Status::Ok();
  for (uint32_t i = 0; i < m_.kv_layers()->size(); ++i) {
    const schema::KvLayer *kv = m_.kv_layers()->Get(i);
    std::string where = "kv_layers[" + std::to_string(i) + "]";
    if (kv->num_kv_heads() == 0 || kv->head_dim() == 0 ||
        kv->num_kv_heads() > 4096 || kv->head_dim() > 65536)
      return Err(where + ": num_kv_heads " +
                 std::to_string(kv->num_kv_heads()) + ", head_dim " +
                 std::to_string(kv->head_dim()) + "; expected positive sizes");
    if (kv->dtype() != schema::DType::F32 && kv->dtype() != schema::DType::I8)
      return Err(where + ": dtype " + DTypeName(kv->dtype()) + " (" +
                 std::to_string(static_cast<int>(kv->dtype())) +
                 "); a KV cache is f32 or i8");
    if (kv->window() > 0) {
      uint64_t need = uint64_t(kv->window()) + max_tokens_any_ - 1;
      if (kv->capacity() < need)
        return Err(where + ": ring capacity " + std::to_string(kv->capacity()) +
                   " is below window (" + std::to_string(kv->window()) +
                   ") + largest chunk (" + std::to_string(max_tokens_any_) +
                   ") - 1 = " + std::to_string(need));
    }
    if (kv->capacity() > (1u << 24))
      return Err(where + ": capacity " + std::to_string(kv->capacity()) +
                 " is implausibly large (max 2^24)");
  }
  return Status::Ok();
}

Status Checker::CheckArenaTensor(const schema::Function &f,
                                 const std::string &fname, uint32_t id) {
  const schema::Tensor *t = m_.tensors()->Get(id);
  if (t->storage() != schema::StorageKind::Arena)
    return Status::Ok();
  uint64_t elems = 1;
  for (int64_t d : ShapeOf(id))
    elems *= d == kT ? f.max_tokens() : static_cast<uint64_t>(d);
  uint64_t need = elems * DTypeSize(t->dtype());
  if (t->size_bytes() < need)
    return Err(fname + ": " + TensorName(id) + ": size_bytes " +
               std::to_string(t->size_bytes()) + " but " +
               ShapeStr(ShapeOf(id)) +
               " at T=" + std::to_string(f.max_tokens()) + " needs " +
               std::to_string(need));
  if (t->offset() > f.arena_bytes() ||
      t->size_bytes() > f.arena_bytes() - t->offset())
    return Err(fname + ": " + TensorName(id) + ": arena bytes [" +
               std::to_string(t->offset()) + ", +" +
               std::to_string(t->size_bytes()) + ") exceed arena_bytes " +
               std::to_string(f.arena_bytes()));
  return Status::Ok();
}

Status Checker::CheckFunction(const schema::Function &f) {
  std::string fname = "function '" + f.name()->str() + "'";
  uint32_t ntensors = m_.tensors()->size();
  if (f.max_tokens() == 0 || f.max_tokens() > (1u << 20))
    return Err(fname + ": max_tokens " + std::to_string(f.max_tokens()) +
               "; expected 1..2^20");
  if (f.inputs() == nullptr || f.inputs()->size() != 1 ||
      f.inputs()->Get(0) >= ntensors)
    return Err(fname + ": inputs must be one tensor id (tokens i32[T])");
  if (f.outputs() == nullptr || f.outputs()->size() != 1 ||
      f.outputs()->Get(0) >= ntensors)
    return Err(fname + ": outputs must be one tensor id (logits f32[T,R])");
  uint32_t in = f.inputs()->Get(0), out = f.outputs()->Get(0);
  if (m_.tensors()->Get(in)->storage() != schema::StorageKind::Arena ||
      DTypeOf(in) != schema::DType::I32 || ShapeOf(in) != Shape{kT})
    return Err(fname + ": input " + TensorName(in) + " is " +
               DTypeName(DTypeOf(in)) + ShapeStr(ShapeOf(in)) +
               "; expected an arena tensor i32[T]");
  // [T,R]: the logits of every position; [1,R]: only the last position's
  // (a prefill compiled with --prefill-logits=last).
  Shape os = ShapeOf(out);
  if (m_.tensors()->Get(out)->storage() != schema::StorageKind::Arena ||
      DTypeOf(out) != schema::DType::F32 || os.size() != 2 ||
      (os[0] != kT && os[0] != 1) || os[1] <= 0)
    return Err(fname + ": output " + TensorName(out) + " is " +
               DTypeName(DTypeOf(out)) + ShapeStr(os) +
               "; expected an arena tensor f32[T,R] (every position) or "
               "f32[1,R] (the last position)");
  GEMMAC_RETURN_IF_ERROR(CheckArenaTensor(f, fname, in));
  GEMMAC_RETURN_IF_ERROR(CheckArenaTensor(f, fname, out));
  if (f.instructions() == nullptr || f.instructions()->size() == 0)
    return Err(fname + ": no instructions");
  for (uint32_t i = 0; i < f.instructions()->size(); ++i) {
    const schema::Instruction *ins = f.instructions()->Get(i);
    std::string where = fname + " instruction " + std::to_string(i);
    if (OpMnemonic(ins->op()) == nullptr)
      return Err(where + ": unknown op code " +
                 std::to_string(static_cast<int>(ins->op())));
    where += std::string(" (") + schema::EnumNameOpCode(ins->op());
    if (ins->location() && ins->location()->size())
      where += " at " + ins->location()->str();
    where += ")";
    if (ins->inputs() == nullptr || ins->outputs() == nullptr)
      return Err(where + ": missing inputs or outputs");
    // Inputs, then outputs. Told apart by the pass, not by comparing the
    // vectors: a FlatBuffer may point both fields at one vector.
    for (const bool inputs : {true, false}) {
      const auto *ids = inputs ? ins->inputs() : ins->outputs();
      for (uint32_t j = 0; j < ids->size(); ++j) {
        uint32_t id = ids->Get(j);
        // An absent optional input; whether this slot may be absent is the
        // op's rule (CheckInstruction). Outputs are never absent.
        if (id == kNoTensor && inputs)
          continue;
        if (id >= ntensors)
          return Err(where + ": tensor id " + std::to_string(id) +
                     " out of range; the module has " +
                     std::to_string(ntensors) + " tensors" +
                     (id == kNoTensor ? " (0xFFFFFFFF marks an absent input "
                                        "and cannot be an output)"
                                      : ""));
        GEMMAC_RETURN_IF_ERROR(CheckArenaTensor(f, fname, id));
      }
    }
    for (uint32_t id : *ins->outputs())
      if (m_.tensors()->Get(id)->storage() != schema::StorageKind::Arena)
        return Err(where + ": output " + TensorName(id) +
                   " is a weight; outputs must be arena tensors");
    GEMMAC_RETURN_IF_ERROR(CheckInstruction(f, where, *ins));
  }
  return Status::Ok();
}

// What each operand slot of an op holds (docs/ops.md).
enum class Slot {
  kAct,    // f32 activation
  kTokens, // i32 token ids
  kWeight, // any weight dtype: f32, bf16, f16, q8c, q4g32, q4g128, q4g32r8
  kNorm,   // a norm weight: f32 (never quantized)
};

struct SlotSpec {
  const char *name;
  Slot kind;
  bool optional;
};

struct OpSignature {
  std::vector<SlotSpec> inputs;
  std::vector<const char *> outputs;
};

const OpSignature &SignatureOf(schema::OpCode op) {
  using schema::OpCode;
  static const OpSignature kUnary{{{"x", Slot::kAct, false}}, {"y"}};
  static const OpSignature kBinary{
      {{"a", Slot::kAct, false}, {"b", Slot::kAct, false}}, {"y"}};
  static const OpSignature kEmbed{
      {{"tokens", Slot::kTokens, false}, {"table", Slot::kWeight, false}},
      {"y"}};
  static const OpSignature kRmsNorm{
      {{"x", Slot::kAct, false}, {"w", Slot::kNorm, false}}, {"y"}};
  static const OpSignature kLinear{
      {{"x", Slot::kAct, false}, {"w", Slot::kWeight, false}}, {"y"}};
  static const OpSignature kAttention{{{"q", Slot::kAct, false},
                                       {"k", Slot::kAct, false},
                                       {"v", Slot::kAct, false}},
                                      {"y"}};
  static const OpSignature kLmHead{
      {{"x", Slot::kAct, false}, {"table", Slot::kWeight, false}}, {"y"}};
  static const OpSignature kAddRmsNorm{{{"x", Slot::kAct, false},
                                        {"y", Slot::kAct, false},
                                        {"w", Slot::kNorm, false}},
                                       {"s", "h"}};
  static const OpSignature kQkvProj{{{"x", Slot::kAct, false},
                                     {"norm", Slot::kNorm, true},
                                     {"wq", Slot::kWeight, false},
                                     {"wk", Slot::kWeight, false},
                                     {"wv", Slot::kWeight, false},
                                     {"q_norm", Slot::kNorm, true},
                                     {"k_norm", Slot::kNorm, true}},
                                    {"q", "k", "v"}};
  static const OpSignature kGatedMlp{{{"x", Slot::kAct, false},
                                      {"norm", Slot::kNorm, true},
                                      {"w_gate", Slot::kWeight, false},
                                      {"w_up", Slot::kWeight, false}},
                                     {"y"}};
  static const OpSignature kFinalHead{{{"x", Slot::kAct, false},
                                       {"norm", Slot::kNorm, false},
                                       {"table", Slot::kWeight, false}},
                                      {"y"}};
  switch (op) {
  case OpCode::Embed:
    return kEmbed;
  case OpCode::RmsNorm:
    return kRmsNorm;
  case OpCode::Linear:
    return kLinear;
  case OpCode::Attention:
    return kAttention;
  case OpCode::Mul:
  case OpCode::Add:
    return kBinary;
  case OpCode::LmHead:
    return kLmHead;
  case OpCode::AddRmsNorm:
    return kAddRmsNorm;
  case OpCode::QkvProj:
    return kQkvProj;
  case OpCode::GatedMlp:
    return kGatedMlp;
  case OpCode::FinalHead:
    return kFinalHead;
  case OpCode::Rope:
  case OpCode::GeluTanh:
  case OpCode::Softcap:
  case OpCode::Scale:
    break;
  }
  return kUnary;
}

Status Checker::CheckInstruction(const schema::Function &f,
                                 const std::string &where,
                                 const schema::Instruction &ins) {
  (void)f;
  using schema::DType;
  using schema::OpCode;
  const auto &in = *ins.inputs();
  const auto &out = *ins.outputs();
  schema::OpAttributesT defaults;
  const schema::OpAttributes *a = ins.attrs();
  auto attr_i = [&](int32_t (schema::OpAttributes::*get)() const, int32_t def) {
    return a ? (a->*get)() : def;
  };
  auto attr_f = [&](float (schema::OpAttributes::*get)() const, float def) {
    return a ? (a->*get)() : def;
  };

  const OpSignature &sig = SignatureOf(ins.op());
  if (in.size() != sig.inputs.size() || out.size() != sig.outputs.size()) {
    size_t optional = 0;
    for (const SlotSpec &slot : sig.inputs)
      optional += slot.optional;
    auto plural = [](size_t n, const char *word) {
      return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
    };
    return Err(
        where + ": " + plural(in.size(), "input") + " and " +
        plural(out.size(), "output") + "; expected " +
        plural(sig.inputs.size(), "input") +
        (optional ? " (absent optional ones written as 0xFFFFFFFF)" : "") +
        " and " + plural(sig.outputs.size(), "output"));
  }
  auto present = [&](uint32_t j) { return in.Get(j) != kNoTensor; };

  auto operand = [&](bool is_out, uint32_t j) {
    uint32_t id = is_out ? out.Get(j) : in.Get(j);
    std::string slot = is_out ? sig.outputs[j] : sig.inputs[j].name;
    return (is_out ? "output " : "input ") + std::to_string(j) + " " + slot +
           " (" + TensorName(id) + ", " + DTypeName(DTypeOf(id)) +
           ShapeStr(ShapeOf(id)) + ")";
  };
  auto bad = [&](bool is_out, uint32_t j, const std::string &expected) {
    return Err(where + ": " + operand(is_out, j) + "; expected " + expected);
  };
  for (uint32_t j = 0; j < in.size(); ++j) {
    const SlotSpec &slot = sig.inputs[j];
    if (!present(j)) {
      if (slot.optional)
        continue;
      return Err(where + ": input " + std::to_string(j) + " " + slot.name +
                 " is absent (tensor id 0xFFFFFFFF), but " +
                 schema::EnumNameOpCode(ins.op()) + " requires it");
    }
    DType d = DTypeOf(in.Get(j));
    switch (slot.kind) {
    case Slot::kTokens:
      if (d != DType::I32)
        return bad(false, j, "i32");
      break;
    case Slot::kWeight:
      if (!IsWeightDType(d) || d == DType::I32)
        return bad(false, j,
                   "a weight dtype (f32, bf16, f16, q8c, q4g32, q4g128 or "
                   "q4g32r8)");
      break;
    case Slot::kAct:
    case Slot::kNorm:
      if (d != DType::F32)
        return bad(false, j, "f32");
      break;
    }
  }
  for (uint32_t j = 0; j < out.size(); ++j)
    if (DTypeOf(out.Get(j)) != DType::F32)
      return bad(true, j, "f32");

  Shape x = ShapeOf(in.Get(0)), y = ShapeOf(out.Get(0));
  auto same_as_x = [&](uint32_t j = 0) -> Status {
    if (ShapeOf(out.Get(j)) != x)
      return bad(true, j, "the shape of input 0 " + ShapeStr(x));
    return Status::Ok();
  };
  // A [rows, cols] weight whose cols must be `k`.
  auto weight_k = [&](uint32_t j, int64_t k, const std::string &rows) {
    Shape w = ShapeOf(in.Get(j));
    if (w.size() != 2 || w[1] != k || w[0] <= 0)
      return bad(false, j,
                 "[" + rows + "," + std::to_string(k) + "] ([out, in])");
    return Status::Ok();
  };
  // An optional [n] norm weight.
  auto norm_of = [&](uint32_t j, int64_t n) {
    if (present(j) && ShapeOf(in.Get(j)) != Shape{n})
      return bad(false, j, "[" + std::to_string(n) + "]");
    return Status::Ok();
  };
  switch (ins.op()) {
  case OpCode::Embed: {
    Shape w = ShapeOf(in.Get(1));
    if (x.size() != 1)
      return bad(false, 0, "rank 1 token ids [T]");
    if (w.size() != 2)
      return bad(false, 1, "a table [V,H]");
    if (y != Shape{x[0], w[1]})
      return bad(true, 0, ShapeStr({x[0], w[1]}));
    break;
  }
  case OpCode::RmsNorm: {
    Shape w = ShapeOf(in.Get(1));
    if (x.size() != 2 || x[1] <= 0)
      return bad(false, 0, "[T,N]");
    if (w.size() != 1 || w[0] <= 0 || x[1] % w[0] != 0)
      return bad(false, 1,
                 "[D] with N (" + std::to_string(x[1]) + ") a multiple of D");
    GEMMAC_RETURN_IF_ERROR(same_as_x());
    break;
  }
  case OpCode::Linear: {
    Shape w = ShapeOf(in.Get(1));
    if (x.size() != 2)
      return bad(false, 0, "[T,K]");
    if (w.size() != 2 || w[1] != x[1])
      return bad(false, 1, "[N," + std::to_string(x[1]) + "] ([out, in])");
    if (y != Shape{x[0], w[0]})
      return bad(true, 0, ShapeStr({x[0], w[0]}));
    break;
  }
  case OpCode::Rope: {
    int32_t hd = attr_i(&schema::OpAttributes::head_dim, defaults.head_dim);
    if (hd <= 0 || hd % 2 != 0)
      return Err(where + ": head_dim " + std::to_string(hd) +
                 "; expected a positive even number");
    if (x.size() != 2 || x[1] <= 0 || x[1] % hd != 0)
      return bad(false, 0, "[T,H*D] with D = head_dim " + std::to_string(hd));
    GEMMAC_RETURN_IF_ERROR(same_as_x());
    break;
  }
  case OpCode::Attention: {
    int32_t H = attr_i(&schema::OpAttributes::num_heads, 0);
    int32_t KV = attr_i(&schema::OpAttributes::num_kv_heads, 0);
    int32_t D = attr_i(&schema::OpAttributes::head_dim, 0);
    int32_t layer = attr_i(&schema::OpAttributes::layer, 0);
    int32_t window = attr_i(&schema::OpAttributes::window, 0);
    if (H <= 0 || KV <= 0 || D <= 0 || H % KV != 0 || window < 0)
      return Err(where + ": num_heads " + std::to_string(H) +
                 ", num_kv_heads " + std::to_string(KV) + ", head_dim " +
                 std::to_string(D) + ", window " + std::to_string(window) +
                 "; expected positive sizes with num_heads a multiple of "
                 "num_kv_heads and window >= 0");
    uint32_t nkv = m_.kv_layers() ? m_.kv_layers()->size() : 0;
    if (layer < 0 || static_cast<uint32_t>(layer) >= nkv)
      return Err(where + ": layer " + std::to_string(layer) +
                 " out of range; the module has " + std::to_string(nkv) +
                 " kv_layers");
    const schema::KvLayer *kv = m_.kv_layers()->Get(layer);
    if (kv->num_kv_heads() != static_cast<uint32_t>(KV) ||
        kv->head_dim() != static_cast<uint32_t>(D) ||
        kv->window() != static_cast<uint32_t>(window))
      return Err(where + ": num_kv_heads/head_dim/window (" +
                 std::to_string(KV) + ", " + std::to_string(D) + ", " +
                 std::to_string(window) + ") differ from kv_layers[" +
                 std::to_string(layer) + "] (" +
                 std::to_string(kv->num_kv_heads()) + ", " +
                 std::to_string(kv->head_dim()) + ", " +
                 std::to_string(kv->window()) + ")");
    Shape k = ShapeOf(in.Get(1)), v = ShapeOf(in.Get(2));
    if (x.size() != 2 || x[1] != int64_t(H) * D)
      return bad(false, 0, "[T," + std::to_string(int64_t(H) * D) + "]");
    Shape kvs{x[0], int64_t(KV) * D};
    if (k != kvs)
      return bad(false, 1, ShapeStr(kvs));
    if (v != kvs)
      return bad(false, 2, ShapeStr(kvs));
    GEMMAC_RETURN_IF_ERROR(same_as_x());
    break;
  }
  case OpCode::Mul:
  case OpCode::Add:
    if (ShapeOf(in.Get(1)) != x)
      return bad(false, 1, "the shape of input 0 " + ShapeStr(x));
    GEMMAC_RETURN_IF_ERROR(same_as_x());
    break;
  case OpCode::Softcap:
    if (!(attr_f(&schema::OpAttributes::softcap, 0.f) > 0.f))
      return Err(where + ": softcap " +
                 std::to_string(attr_f(&schema::OpAttributes::softcap, 0.f)) +
                 "; expected > 0");
    GEMMAC_RETURN_IF_ERROR(same_as_x());
    break;
  case OpCode::GeluTanh:
  case OpCode::Scale:
    GEMMAC_RETURN_IF_ERROR(same_as_x());
    break;
  case OpCode::LmHead: {
    Shape w = ShapeOf(in.Get(1));
    int32_t rows = attr_i(&schema::OpAttributes::rows, 0);
    if (x.size() != 2)
      return bad(false, 0, "[T,H]");
    if (w.size() != 2 || w[1] != x[1])
      return bad(false, 1, "[V," + std::to_string(x[1]) + "]");
    if (rows <= 0 || rows > w[0])
      return Err(where + ": rows " + std::to_string(rows) +
                 "; expected 1..V (" + std::to_string(w[0]) + ")");
    if (y != Shape{x[0], rows})
      return bad(true, 0, ShapeStr({x[0], rows}));
    break;
  }
  case OpCode::AddRmsNorm: {
    // s = x + y; h = rms_norm(s, w) over the whole row.
    if (x.size() != 2 || x[1] <= 0)
      return bad(false, 0, "[T,N]");
    if (ShapeOf(in.Get(1)) != x)
      return bad(false, 1, "the shape of input 0 " + ShapeStr(x));
    if (ShapeOf(in.Get(2)) != Shape{x[1]})
      return bad(false, 2, "[" + std::to_string(x[1]) + "]");
    GEMMAC_RETURN_IF_ERROR(same_as_x(0));
    GEMMAC_RETURN_IF_ERROR(same_as_x(1));
    if (out.Get(0) == out.Get(1))
      return Err(where + ": outputs s and h are the same " +
                 TensorName(out.Get(0)) + "; expected two tensors");
    break;
  }
  case OpCode::QkvProj: {
    int32_t H = attr_i(&schema::OpAttributes::num_heads, 0);
    int32_t KV = attr_i(&schema::OpAttributes::num_kv_heads, 0);
    int32_t D = attr_i(&schema::OpAttributes::head_dim, 0);
    if (H <= 0 || KV <= 0 || D <= 0 || D % 2 != 0)
      return Err(where + ": num_heads " + std::to_string(H) +
                 ", num_kv_heads " + std::to_string(KV) + ", head_dim " +
                 std::to_string(D) +
                 "; expected positive sizes and an even head_dim (rope)");
    if (x.size() != 2 || x[1] <= 0)
      return bad(false, 0, "[T,K]");
    int64_t K = x[1], QW = int64_t(H) * D, KW = int64_t(KV) * D;
    GEMMAC_RETURN_IF_ERROR(norm_of(1, K));
    GEMMAC_RETURN_IF_ERROR(weight_k(2, K, std::to_string(QW)));
    GEMMAC_RETURN_IF_ERROR(weight_k(3, K, std::to_string(KW)));
    GEMMAC_RETURN_IF_ERROR(weight_k(4, K, std::to_string(KW)));
    if (ShapeOf(in.Get(2))[0] != QW)
      return bad(false, 2,
                 "[" + std::to_string(QW) + "," + std::to_string(K) +
                     "] (num_heads * head_dim rows)");
    for (uint32_t j : {3u, 4u})
      if (ShapeOf(in.Get(j))[0] != KW)
        return bad(false, j,
                   "[" + std::to_string(KW) + "," + std::to_string(K) +
                       "] (num_kv_heads * head_dim rows)");
    GEMMAC_RETURN_IF_ERROR(norm_of(5, D));
    GEMMAC_RETURN_IF_ERROR(norm_of(6, D));
    const Shape want[3] = {{x[0], QW}, {x[0], KW}, {x[0], KW}};
    for (uint32_t j = 0; j < 3; ++j)
      if (ShapeOf(out.Get(j)) != want[j])
        return bad(true, j, ShapeStr(want[j]));
    if (out.Get(0) == out.Get(1) || out.Get(0) == out.Get(2) ||
        out.Get(1) == out.Get(2))
      return Err(where + ": outputs q, k and v must be three different "
                         "tensors");
    break;
  }
  case OpCode::GatedMlp: {
    if (x.size() != 2 || x[1] <= 0)
      return bad(false, 0, "[T,K]");
    int64_t K = x[1];
    GEMMAC_RETURN_IF_ERROR(norm_of(1, K));
    GEMMAC_RETURN_IF_ERROR(weight_k(2, K, "F"));
    Shape g = ShapeOf(in.Get(2));
    if (ShapeOf(in.Get(3)) != g)
      return bad(false, 3, "the shape of w_gate " + ShapeStr(g));
    if (y != Shape{x[0], g[0]})
      return bad(true, 0, ShapeStr({x[0], g[0]}));
    break;
  }
  case OpCode::FinalHead: {
    if (x.size() != 2 || x[1] <= 0)
      return bad(false, 0, "[T,H]");
    Shape w = ShapeOf(in.Get(2));
    if (ShapeOf(in.Get(1)) != Shape{x[1]})
      return bad(false, 1, "[" + std::to_string(x[1]) + "]");
    if (w.size() != 2 || w[1] != x[1])
      return bad(false, 2, "[V," + std::to_string(x[1]) + "]");
    int32_t rows = attr_i(&schema::OpAttributes::rows, 0);
    float cap = attr_f(&schema::OpAttributes::softcap, 0.f);
    if (rows <= 0 || rows > w[0])
      return Err(where + ": rows " + std::to_string(rows) +
                 "; expected 1..V (" + std::to_string(w[0]) + ")");
    if (!(cap >= 0.f))
      return Err(where + ": softcap " + std::to_string(cap) +
                 "; expected >= 0 (0 disables)");
    // Every position's logits, or only the last one's (one row).
    if (y != Shape{x[0], rows} && y != Shape{1, rows})
      return bad(true, 0,
                 ShapeStr({x[0], rows}) + " or " + ShapeStr({1, rows}) +
                     " (the last position only)");
    break;
  }
  }
  return Status::Ok();
}

} // namespace

Status VerifyModuleProgram(const std::string &file, const ModuleHeader &header,
                           uint64_t file_size, const schema::Module &program) {
  return Checker(file, header, file_size, program).Run();
}

} // namespace gemmac
