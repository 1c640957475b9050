#include "vm.h"

#include <cstddef>
#include <cstring>

namespace gemmac {

namespace {

// Bytes of a dense activation with its token dimension bound.
size_t DenseBytes(const gemmac_tensor &t) {
  size_t n = DTypeSize(static_cast<schema::DType>(t.dtype));
  for (int32_t i = 0; i < t.rank; ++i)
    n *= static_cast<size_t>(t.shape[i]);
  return n;
}

} // namespace

Status FunctionProgram::Prepare(const ProgramTarget &target,
                                const Module &module,
                                const schema::Function &function,
                                std::unique_ptr<FunctionProgram> *out) {
  std::unique_ptr<FunctionProgram> p(new FunctionProgram());
  Backend *backend = target.backend;
  p->target_ = target;
  p->name_ = function.name()->str();
  p->max_tokens_ = function.max_tokens();
  p->arena_bytes_ = function.arena_bytes();
  const auto &tensors = *module.program().tensors();
  auto *arena_base = static_cast<uint8_t *>(target.arena);
  p->arena_base_ = arena_base;

  auto describe = [&](uint32_t id) {
    gemmac_tensor d{};
    d.struct_size = sizeof(d);
    if (id == kNoTensor) {
      // An absent optional input (plugin.h): no data, rank 0.
      d.dtype = GEMMAC_DTYPE_NONE;
      d.data = nullptr;
      d.rank = 0;
      return d;
    }
    const schema::Tensor *t = tensors.Get(id);
    d.dtype = static_cast<int32_t>(t->dtype());
    d.rank = static_cast<int32_t>(t->shape()->size());
    for (int32_t i = 0; i < d.rank; ++i)
      d.shape[i] = t->shape()->Get(i);
    // Weights at the address the backend reads them at; PlaceFallback-
    // Operands gives fallback instructions the mapping back.
    d.data = t->storage() == schema::StorageKind::Weight
                 ? target.weights->Device(module.WeightData(*t))
                 : arena_base + t->offset();
    return d;
  };

  const auto &instrs = *function.instructions();
  p->steps_.resize(instrs.size());
  for (uint32_t i = 0; i < instrs.size(); ++i) {
    const schema::Instruction *ins = instrs.Get(i);
    Step &step = p->steps_[i];
    step.where = "function '" + p->name_ + "' instruction " +
                 std::to_string(i) + " (" + schema::EnumNameOpCode(ins->op());
    if (ins->location() && ins->location()->size())
      step.where += " at " + ins->location()->str();
    step.where += ")";

    // Inputs and outputs are laid out the same way: appended to operands_,
    // their dtypes collected for prepare().
    auto append = [&](const flatbuffers::Vector<uint32_t> &ids,
                      std::vector<int32_t> &dtypes) {
      dtypes.clear();
      for (uint32_t id : ids) {
        p->operands_.push_back(describe(id));
        dtypes.push_back(p->operands_.back().dtype);
        p->operand_ids_.push_back(id);
        const bool weight = id != kNoTensor && tensors.Get(id)->storage() ==
                                                   schema::StorageKind::Weight;
        p->operand_host_.push_back(weight ? module.WeightData(*tensors.Get(id))
                                          : nullptr);
      }
    };
    step.first_in = static_cast<uint32_t>(p->operands_.size());
    step.num_in = ins->inputs()->size();
    append(*ins->inputs(), step.in_dtypes);
    step.first_out = static_cast<uint32_t>(p->operands_.size());
    step.num_out = ins->outputs()->size();
    append(*ins->outputs(), step.out_dtypes);

    gemmac_op_desc &desc = step.desc;
    desc.struct_size = sizeof(desc);
    desc.op = static_cast<int32_t>(ins->op());
    schema::OpAttributesT defaults;
    const schema::OpAttributes *a = ins->attrs();
    gemmac_op_attrs &at = desc.attrs;
    at.struct_size = sizeof(at);
    at.scale = a ? a->scale() : defaults.scale;
    at.eps = a ? a->eps() : defaults.eps;
    at.offset = a ? a->offset() : defaults.offset;
    at.theta = a ? a->theta() : defaults.theta;
    at.rope_scale = a ? a->rope_scale() : defaults.rope_scale;
    at.softcap = a ? a->softcap() : defaults.softcap;
    at.head_dim = a ? a->head_dim() : defaults.head_dim;
    at.num_heads = a ? a->num_heads() : defaults.num_heads;
    at.num_kv_heads = a ? a->num_kv_heads() : defaults.num_kv_heads;
    at.window = a ? a->window() : defaults.window;
    at.layer = a ? a->layer() : defaults.layer;
    at.rows = a ? a->rows() : defaults.rows;
    desc.num_inputs = step.num_in;
    desc.input_dtypes = step.in_dtypes.data();
    desc.num_outputs = step.num_out;
    desc.output_dtypes = step.out_dtypes.data();
  }

  // A graph-mode plugin gets the whole function; if it declines, or is a
  // kernel plugin, each instruction is prepared on its own.
  GEMMAC_RETURN_IF_ERROR(p->CompileGraph(backend, module));
  if (p->graph_ != nullptr) {
    p->FindTokenDims();
    p->Bind(module, function);
    *out = std::move(p);
    return Status::Ok();
  }
  for (uint32_t i = 0; i < instrs.size(); ++i) {
    const schema::Instruction *ins = instrs.Get(i);
    Step &step = p->steps_[i];
    const gemmac_op_desc &desc = step.desc;
    step.backend = backend;
    if (!backend->api().supports(backend->handle(), &desc)) {
      Backend *other = nullptr;
      if (target.fallback)
        GEMMAC_RETURN_IF_ERROR(target.fallback(&other));
      if (other == nullptr || !other->api().supports(other->handle(), &desc))
        return Status(
            StatusCode::kUnimplemented,
            module.path() + ": " + step.where + ": backend '" +
                backend->name() +
                "' does not support this op with these dtypes" +
                (other == nullptr
                     ? std::string(", and no CPU plugin is registered to "
                                   "fall back to")
                     : ", nor does the fallback '" + other->name() + "'"));
      // A discrete device keeps the KV cache, which the fallback cannot
      // reach.
      if (!backend->host_addressable() && desc.op == GEMMAC_OP_ATTENTION)
        return Status(StatusCode::kUnimplemented,
                      module.path() + ": " + step.where + ": backend '" +
                          backend->name() +
                          "' does not support this op with these dtypes, and "
                          "its memory is not host-addressable, so the '" +
                          other->name() +
                          "' fallback cannot reach the KV cache on it");
      step.backend = other;
      step.fallback = true;
      ++p->fallback_ops_[schema::EnumNameOpCode(ins->op())];
    }
    const gemmac_plugin_api &api = step.backend->api();
    gemmac_plugin_error err{};
    err.struct_size = sizeof(err);
    int32_t rc = api.prepare(step.backend->handle(), &desc, &step.kernel, &err);
    if (rc != GEMMAC_PLUGIN_OK) {
      step.kernel = nullptr;
      return Status(StatusCode::kInternal,
                    module.path() + ": " + step.where + ": backend '" +
                        step.backend->name() +
                        "' cannot prepare it: " + Backend::ErrorText(err));
    }
  }
  p->PlaceFallbackOperands(function);
  p->FindTokenDims();
  p->Bind(module, function);
  *out = std::move(p);
  return Status::Ok();
}

void FunctionProgram::PlaceFallbackOperands(const schema::Function &function) {
  if (fallback_ops_.empty())
    return;
  const bool discrete = !target_.backend->host_addressable();
  if (discrete)
    mirror_.assign(arena_bytes_, 0);
  // Which backend writes each arena tensor: the caller writes the tokens
  // (to the device), every other one has one producing instruction.
  std::map<uint32_t, bool> on_fallback;
  for (const Step &s : steps_)
    for (uint32_t j = s.first_out; j < s.first_out + s.num_out; ++j)
      on_fallback[operand_ids_[j]] = s.fallback;
  // Tensors the device, or the caller, reads after a fallback wrote them.
  std::map<uint32_t, bool> read_off_fallback;
  for (const Step &s : steps_)
    if (!s.fallback)
      for (uint32_t j = s.first_in; j < s.first_in + s.num_in; ++j)
        read_off_fallback[operand_ids_[j]] = true;
  const uint32_t logits_id = function.outputs()->Get(0);
  logits_in_mirror_ = discrete && on_fallback[logits_id];

  for (Step &s : steps_) {
    if (!s.fallback)
      continue;
    for (uint32_t j = s.first_in; j < s.first_out + s.num_out; ++j) {
      gemmac_tensor &t = operands_[j];
      if (operand_host_[j] != nullptr) { // a weight: the mapping itself
        t.data = const_cast<void *>(operand_host_[j]);
        continue;
      }
      if (!discrete || t.data == nullptr)
        continue;
      void *device = t.data;
      t.data = mirror_.data() + (static_cast<uint8_t *>(device) - arena_base_);
      const bool input = j < s.first_out;
      const uint32_t id = operand_ids_[j];
      if (input && !on_fallback[id])
        s.to_host.push_back({device, t.data, &t});
      if (!input && read_off_fallback[id])
        s.to_device.push_back({device, t.data, &t});
    }
  }
}

void FunctionProgram::FindTokenDims() {
  // Pointers into operands_ are taken only now that it has its final size.
  for (gemmac_tensor &t : operands_)
    for (int32_t i = 0; i < t.rank; ++i)
      if (t.shape[i] == kTokensDim)
        token_dims_.push_back(&t.shape[i]);
}

void FunctionProgram::Bind(const Module &module,
                           const schema::Function &function) {
  const auto &tensors = *module.program().tensors();
  const schema::Tensor *in = tensors.Get(function.inputs()->Get(0));
  const schema::Tensor *outt = tensors.Get(function.outputs()->Get(0));
  tokens_in_ = reinterpret_cast<int32_t *>(arena_base_ + in->offset());
  logits_out_ = reinterpret_cast<const float *>(
      (logits_in_mirror_ ? mirror_.data() : arena_base_) + outt->offset());
  logits_cols_ = outt->shape()->Get(1);
  // A static one-row output holds only the last position's logits (a
  // prefill compiled with --prefill-logits=last).
  last_position_only_ = outt->shape()->Get(0) != kTokensDim;
  if (!target_.backend->host_addressable() && !logits_in_mirror_)
    host_logits_.resize(size_t(last_position_only_ ? 1 : max_tokens_) *
                        logits_cols_);
  error_.struct_size = sizeof(error_);
}

Status FunctionProgram::CompileGraph(Backend *backend, const Module &module) {
  const gemmac_plugin_api &api = backend->api();
  const bool has =
      api.abi_minor >= 4 &&
      api.struct_size >= offsetof(gemmac_plugin_api, release_graph) +
                             sizeof(api.release_graph) &&
      api.compile_graph != nullptr && api.execute_graph != nullptr &&
      api.release_graph != nullptr;
  if (!has)
    return Status::Ok();
  // Nodes and buckets are read during compile_graph only.
  std::vector<gemmac_graph_node> nodes;
  for (const Step &s : steps_) {
    gemmac_graph_node n{};
    n.struct_size = sizeof(n);
    n.desc = s.desc;
    n.first_input = s.first_in;
    n.num_inputs = s.num_in;
    n.first_output = s.first_out;
    n.num_outputs = s.num_out;
    nodes.push_back(n);
  }
  // Token-count buckets: 1, 2, 4, ... and max_tokens itself.
  std::vector<int64_t> buckets;
  for (int64_t b = 1; b < max_tokens_; b *= 2)
    buckets.push_back(b);
  buckets.push_back(max_tokens_);
  gemmac_graph_desc d{};
  d.struct_size = sizeof(d);
  d.name = name_.c_str();
  d.num_nodes = static_cast<uint32_t>(nodes.size());
  d.nodes = nodes.data();
  d.num_operands = static_cast<uint32_t>(operands_.size());
  d.operands = operands_.data();
  d.max_tokens = max_tokens_;
  d.num_buckets = static_cast<uint32_t>(buckets.size());
  d.buckets = buckets.data();
  gemmac_plugin_error err{};
  err.struct_size = sizeof(err);
  gemmac_graph *g = nullptr;
  const int32_t rc = api.compile_graph(backend->handle(), &d, &g, &err);
  if (rc == GEMMAC_PLUGIN_UNSUPPORTED) {
    graph_declined_ = Backend::ErrorText(err);
    return Status::Ok();
  }
  if (rc != GEMMAC_PLUGIN_OK || g == nullptr)
    return Status(StatusCode::kInternal,
                  module.path() + ": function '" + name_ + "': backend '" +
                      backend->name() + "' cannot compile it as a graph: " +
                      Backend::ErrorText(err));
  graph_ = g;
  graph_backend_ = backend;
  return Status::Ok();
}

FunctionProgram::~FunctionProgram() {
  if (graph_ != nullptr)
    graph_backend_->api().release_graph(graph_backend_->handle(), graph_);
  for (Step &s : steps_)
    if (s.kernel != nullptr)
      s.backend->api().release(s.backend->handle(), s.kernel);
}

Status FunctionProgram::Run(const int32_t *tokens, int64_t num_tokens,
                            int64_t past, const KvCache &kv,
                            const volatile int32_t *cancel,
                            const float **logits) {
  if (num_tokens < 1 || num_tokens > max_tokens_)
    return Status(StatusCode::kInvalidArgument,
                  "function '" + name_ + "': " + std::to_string(num_tokens) +
                      " tokens; expected 1.." + std::to_string(max_tokens_));
  for (int64_t *d : token_dims_)
    *d = num_tokens;
  Backend *backend = target_.backend;
  gemmac_stream *stream = target_.stream ? target_.stream->get() : nullptr;
  gemmac_exec_context ctx{};
  ctx.struct_size = sizeof(ctx);
  ctx.past = past;
  ctx.tokens = num_tokens;
  ctx.kv = kv.layers();
  ctx.num_kv = kv.num_layers();
  ctx.cancel = cancel;
  ctx.stream = stream;
  // The caller's tokens stay put until the stream is done (below).
  Status s = backend->Copy(tokens_in_, tokens, sizeof(int32_t) * num_tokens,
                           GEMMAC_COPY_HOST_TO_DEVICE, stream);
  if (s.ok())
    s = RunSteps(&ctx);
  if (s.ok())
    return FetchLogits(num_tokens, logits);
  // A call returns with the device idle even when it failed part-way.
  if (target_.stream != nullptr)
    (void)target_.stream->Finish();
  return s;
}

Status FunctionProgram::RunSteps(gemmac_exec_context *ctx) {
  if (graph_ != nullptr) {
    error_.message[0] = '\0';
    const int32_t rc = graph_backend_->api().execute_graph(
        graph_backend_->handle(), graph_, ctx, &error_);
    if (rc == GEMMAC_PLUGIN_CANCELLED)
      return Status(StatusCode::kCancelled, "cancelled");
    if (rc != GEMMAC_PLUGIN_OK)
      return Status(rc == GEMMAC_PLUGIN_INVALID_ARGUMENT
                        ? StatusCode::kInvalidArgument
                        : StatusCode::kInternal,
                    "function '" + name_ + "' (graph): backend '" +
                        graph_backend_->name() +
                        "' failed: " + Backend::ErrorText(error_));
    return Status::Ok();
  }
  gemmac_stream *const stream = ctx->stream;
  Backend *const device = target_.backend;
  for (const Step &s : steps_) {
    if (ctx->cancel != nullptr && *ctx->cancel != 0)
      return Status(StatusCode::kCancelled, "cancelled");
    if (s.fallback) {
      // A partition border: what the device wrote must have landed, and the
      // fallback plugin has no stream of the device's.
      if (target_.stream != nullptr)
        GEMMAC_RETURN_IF_ERROR(target_.stream->Finish());
      for (const Transfer &t : s.to_host)
        GEMMAC_RETURN_IF_ERROR(
            device->Copy(t.host, t.device, DenseBytes(*t.shape),
                         GEMMAC_COPY_DEVICE_TO_HOST, nullptr));
      ctx->stream = nullptr;
    }
    error_.message[0] = '\0';
    int32_t rc = s.backend->api().launch(
        s.backend->handle(), s.kernel, &operands_[s.first_in], s.num_in,
        &operands_[s.first_out], s.num_out, ctx, &error_);
    ctx->stream = stream;
    if (rc == GEMMAC_PLUGIN_CANCELLED)
      return Status(StatusCode::kCancelled, "cancelled");
    if (rc != GEMMAC_PLUGIN_OK)
      return Status(rc == GEMMAC_PLUGIN_INVALID_ARGUMENT
                        ? StatusCode::kInvalidArgument
                        : StatusCode::kInternal,
                    s.where + ": backend '" + s.backend->name() +
                        "' failed: " + Backend::ErrorText(error_));
    for (const Transfer &t : s.to_device)
      GEMMAC_RETURN_IF_ERROR(device->Copy(t.device, t.host,
                                          DenseBytes(*t.shape),
                                          GEMMAC_COPY_HOST_TO_DEVICE, nullptr));
  }
  return Status::Ok();
}

Status FunctionProgram::FetchLogits(int64_t num_tokens, const float **logits) {
  gemmac_stream *stream = target_.stream ? target_.stream->get() : nullptr;
  if (host_logits_.empty()) { // host-addressable, or made in the mirror
    if (target_.stream != nullptr)
      GEMMAC_RETURN_IF_ERROR(target_.stream->Finish());
    *logits = logits_out_;
    return Status::Ok();
  }
  const size_t rows = last_position_only_ ? 1 : size_t(num_tokens);
  GEMMAC_RETURN_IF_ERROR(target_.backend->Copy(
      host_logits_.data(), logits_out_, rows * logits_cols_ * sizeof(float),
      GEMMAC_COPY_DEVICE_TO_HOST, stream));
  if (target_.stream != nullptr)
    GEMMAC_RETURN_IF_ERROR(target_.stream->Finish());
  *logits = host_logits_.data();
  return Status::Ok();
}

} // namespace gemmac
