#include "session.h"

#include <algorithm>
#include <cstring>
#include <map>

namespace gemmac {
namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

} // namespace

Status Session::MemoryNeeded(const Module &module, int64_t context_length,
                             Memory *out) {
  const schema::Module &prog = module.program();
  const std::string &file = module.path();
  int64_t max_ctx = prog.config()->max_context();
  if (max_ctx <= 0)
    max_ctx = 4096;
  int64_t ctx = context_length;
  if (ctx < 0)
    return Status(StatusCode::kInvalidArgument, "session: context length " +
                                                    std::to_string(ctx) +
                                                    " is negative");
  if (ctx == 0)
    ctx = std::min<int64_t>(max_ctx, 4096);
  if (ctx > max_ctx)
    return Status(StatusCode::kResourceExhausted,
                  file + ": context length " + std::to_string(ctx) +
                      " exceeds the model's max_context " +
                      std::to_string(max_ctx) + " (it would need " +
                      std::to_string(KvCache::BytesNeeded(prog, ctx)) +
                      " bytes of KV cache)");
  if (prog.kv_layers())
    for (uint32_t i = 0; i < prog.kv_layers()->size(); ++i) {
      const schema::KvLayer *l = prog.kv_layers()->Get(i);
      if (l->window() == 0 && l->capacity() != 0 && l->capacity() < ctx)
        return Status(StatusCode::kResourceExhausted,
                      file + ": context length " + std::to_string(ctx) +
                          " exceeds kv_layers[" + std::to_string(i) +
                          "].capacity " + std::to_string(l->capacity()));
    }
  const schema::Function *prefill = module.FindFunction("prefill");
  const schema::Function *decode = module.FindFunction("decode");
  out->context_length = ctx;
  out->arena_bytes = std::max<uint64_t>(
      {prefill->arena_bytes(), decode->arena_bytes(), uint64_t(64)});
  out->kv_bytes = KvCache::BytesNeeded(prog, ctx);
  return Status::Ok();
}

Status Session::Create(std::shared_ptr<const Module> module,
                       const PluginRegistry &plugins,
                       const SessionOptions &options,
                       std::unique_ptr<Session> *out) {
  if (module == nullptr)
    return Status(StatusCode::kInvalidArgument, "session: module is null");
  std::unique_ptr<Session> s(new Session());
  s->module_ = module;
  const schema::Module &prog = module->program();
  const std::string &file = module->path();

  Memory need;
  GEMMAC_RETURN_IF_ERROR(MemoryNeeded(*module, options.context_length, &need));
  const int64_t ctx = need.context_length;
  s->context_length_ = ctx;

  std::shared_ptr<const Plugin> plugin = plugins.Find(options.plugin);
  if (plugin == nullptr)
    return Status(StatusCode::kNotFound,
                  options.plugin.empty()
                      ? std::string("session: no backend plugin is registered "
                                    "(link one statically, pass a plugin "
                                    "path or set GEMMAC_PLUGIN_PATH)")
                      : "session: no plugin named '" + options.plugin +
                            "' is registered");
  GEMMAC_RETURN_IF_ERROR(
      Backend::Create(plugin, options.num_threads, &s->backend_));
  s->description_ = s->backend_->Description();
  // An int8 cache carries scales that only an ABI 1.1 plugin knows to read;
  // a 1.0 plugin would take the int8 rows for f32 ones.
  const gemmac_plugin_api &api = s->backend_->api();
  if (prog.kv_layers() && api.abi_minor < 1)
    for (uint32_t i = 0; i < prog.kv_layers()->size(); ++i)
      if (prog.kv_layers()->Get(i)->dtype() == schema::DType::I8)
        return Status(StatusCode::kUnimplemented,
                      file + ": kv_layers[" + std::to_string(i) +
                          "] is an int8 KV cache, but plugin '" +
                          s->backend_->name() + "' speaks ABI " +
                          std::to_string(api.abi_major) + "." +
                          std::to_string(api.abi_minor) +
                          "; int8 caches (gemmac_kv_cache.k_scale, v_scale) "
                          "need ABI 1.1");

  const schema::Function *prefill = module->FindFunction("prefill");
  const schema::Function *decode = module->FindFunction("decode");
  s->arena_bytes_ = need.arena_bytes;
  // What the session will allocate, checked against what the device says it
  // can still give, before anything is allocated.
  const uint64_t kv_bytes = need.kv_bytes;
  gemmac_device_info dev;
  if (s->backend_->DeviceInfo(&dev) && dev.memory_available_bytes > 0 &&
      s->arena_bytes_ + kv_bytes > dev.memory_available_bytes)
    return Status(
        StatusCode::kResourceExhausted,
        file + ": a session needs " +
            std::to_string(s->arena_bytes_ + kv_bytes) + " bytes (arena " +
            std::to_string(s->arena_bytes_) + " + KV cache " +
            std::to_string(kv_bytes) + " for context length " +
            std::to_string(ctx) + "), but backend '" + s->backend_->name() +
            "' (" + std::string(dev.name, strnlen(dev.name, sizeof(dev.name))) +
            ") has " + std::to_string(dev.memory_available_bytes) +
            " bytes available; use a shorter context");
  s->arena_ = s->backend_->Alloc(s->arena_bytes_);
  if (s->arena_ == nullptr)
    return Status(StatusCode::kResourceExhausted,
                  file + ": backend '" + s->backend_->name() +
                      "' could not allocate the " +
                      std::to_string(s->arena_bytes_) + "-byte arena");
  GEMMAC_RETURN_IF_ERROR(
      KvCache::Create(s->backend_.get(), prog, ctx, &s->kv_));
  // Instructions the backend refuses run on the CPU plugin (vm.h), if one
  // is registered and the backend is not already it.
  std::shared_ptr<const Plugin> cpu =
      s->backend_->name() == "cpu" ? nullptr : plugins.Find("cpu");
  Session *self = s.get();
  FallbackFn fallback = [&, self](Backend **b) -> Status {
    if (cpu != nullptr && self->fallback_ == nullptr)
      GEMMAC_RETURN_IF_ERROR(
          Backend::Create(cpu, options.num_threads, &self->fallback_));
    *b = self->fallback_.get();
    return Status::Ok();
  };
  GEMMAC_RETURN_IF_ERROR(
      WeightMap::Create(s->backend_.get(), *module, &s->weights_));
  if (s->backend_->has_streams())
    GEMMAC_RETURN_IF_ERROR(Stream::Create(s->backend_.get(), &s->stream_));
  ProgramTarget target;
  target.backend = s->backend_.get();
  target.fallback = fallback;
  target.arena = s->arena_;
  target.weights = s->weights_.get();
  target.stream = s->stream_.get();
  GEMMAC_RETURN_IF_ERROR(
      FunctionProgram::Prepare(target, *module, *prefill, &s->prefill_));
  GEMMAC_RETURN_IF_ERROR(
      FunctionProgram::Prepare(target, *module, *decode, &s->decode_));
  std::string graphs, declined;
  for (const FunctionProgram *fn : {s->prefill_.get(), s->decode_.get()}) {
    if (fn->graph_mode())
      graphs += (graphs.empty() ? "" : ", ") + fn->name();
    else if (!fn->graph_declined().empty())
      declined += "; " + fn->name() + " declined: " + fn->graph_declined();
  }
  if (!graphs.empty() || !declined.empty())
    s->graph_summary_ =
        "graphs: " + (graphs.empty() ? std::string("none") : graphs) + declined;
  if (s->fallback_ != nullptr) {
    // Counted over both functions: "cpu runs attention x4, embed x2".
    std::map<std::string, int> ops = s->prefill_->fallback_ops();
    for (const auto &[op, n] : s->decode_->fallback_ops())
      ops[op] += n;
    std::string list;
    for (const auto &[op, n] : ops)
      list += (list.empty() ? "" : ", ") + op + " x" + std::to_string(n);
    s->fallback_summary_ = s->fallback_->name() + " runs " + list;
  }
  if (s->prefill_->logits_cols() != s->decode_->logits_cols())
    return Status(StatusCode::kDataLoss,
                  file + ": prefill returns " +
                      std::to_string(s->prefill_->logits_cols()) +
                      " logits per token but decode " +
                      std::to_string(s->decode_->logits_cols()));
  s->logits_cols_ = s->prefill_->logits_cols();
  // A prefill that returns only its last position's row cannot give the
  // logits of every prompt position.
  for (FunctionProgram *fn : {s->prefill_.get(), s->decode_.get()})
    if (options.keep_prompt_logits && fn->last_position_only() &&
        fn->max_tokens() > 1)
      return Status(
          StatusCode::kFailedPrecondition,
          file +
              ": the logits of every prompt position were asked for "
              "(keep_prompt_logits, gemma-run --dump-logits), but this "
              "module's " +
              fn->name() +
              " returns only the last position's logits (it was compiled "
              "with --prefill-logits=last); recompile with "
              "--prefill-logits=all (the default) to get them");
  s->sample_cols_ =
      std::min<int64_t>(s->logits_cols_, module->tokenizer().vocab_size());
  s->decoder_ = std::make_unique<text::StreamDecoder>(module->tokenizer());
  s->keep_prompt_logits_ = options.keep_prompt_logits;
  s->tokens_.reserve(ctx);
  s->held_.reserve(256);
  *out = std::move(s);
  return Status::Ok();
}

Session::~Session() {
  // Kernels before the arena and cache they point at, the backends last.
  prefill_.reset();
  decode_.reset();
  stream_.reset();
  weights_.reset();
  kv_.reset();
  if (backend_ != nullptr)
    backend_->Free(arena_);
  fallback_.reset();
}

void Session::Cancel() { __atomic_store_n(&cancel_, 1, __ATOMIC_RELEASE); }

Status Session::Finish(Status s) {
  __atomic_store_n(&cancel_, 0, __ATOMIC_RELEASE);
  return s;
}

void Session::Reset() {
  tokens_.clear();
  position_ = 0;
  pending_ = false;
  last_logits_ = nullptr;
  prompt_logits_.clear();
  stats_ = SessionStats();
  prefill_since_generate_ = 0;
  decoder_->Reset();
  __atomic_store_n(&cancel_, 0, __ATOMIC_RELEASE);
}

Status Session::CheckRoom(size_t more) const {
  int64_t need = static_cast<int64_t>(tokens_.size()) + int64_t(more);
  if (need > context_length_)
    return Status(
        StatusCode::kResourceExhausted,
        "context full: the session holds " + std::to_string(tokens_.size()) +
            " of " + std::to_string(context_length_) + " tokens; " +
            std::to_string(more) + " more need " + std::to_string(need) +
            " (create the session with a larger context length)");
  return Status::Ok();
}

Status Session::Run(FunctionProgram *fn, const int32_t *ids, int64_t n) {
  if (cancelled())
    return Status(StatusCode::kCancelled, "cancelled");
  const float *logits = nullptr;
  GEMMAC_RETURN_IF_ERROR(fn->Run(ids, n, position_, *kv_, &cancel_, &logits));
  position_ += n;
  last_logits_ = logits + fn->LastRow(n) * logits_cols_;
  return Status::Ok();
}

Status Session::FlushPending() {
  if (!pending_)
    return Status::Ok();
  auto t0 = Clock::now();
  GEMMAC_RETURN_IF_ERROR(Run(decode_.get(), &tokens_.back(), 1));
  pending_ = false;
  stats_.decode_tokens += 1;
  stats_.decode_seconds += Seconds(t0, Clock::now());
  return Status::Ok();
}

Status Session::AppendTokens(const int32_t *ids, size_t count) {
  if (count == 0)
    return Finish(Status::Ok());
  if (ids == nullptr)
    return Finish(Status(StatusCode::kInvalidArgument, "append: ids is null"));
  int64_t vocab = module_->program().config()->vocab_size();
  for (size_t i = 0; i < count; ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      return Finish(Status(StatusCode::kInvalidArgument,
                           "append: token " + std::to_string(i) + " is " +
                               std::to_string(ids[i]) +
                               "; expected an id in [0, " +
                               std::to_string(vocab) + ")"));
  Status room = CheckRoom(count);
  if (!room.ok())
    return Finish(room);
  Status s = FlushPending();
  if (!s.ok())
    return Finish(s);
  auto t0 = Clock::now();
  size_t done = 0;
  while (done < count) {
    int64_t n = std::min<int64_t>(count - done, prefill_->max_tokens());
    FunctionProgram *fn = n == 1 ? decode_.get() : prefill_.get();
    tokens_.insert(tokens_.end(), ids + done, ids + done + n);
    s = Run(fn, ids + done, n);
    if (!s.ok()) {
      tokens_.resize(position_);
      return Finish(s);
    }
    if (keep_prompt_logits_)
      prompt_logits_.insert(prompt_logits_.end(),
                            last_logits_ - (n - 1) * logits_cols_,
                            last_logits_ + logits_cols_);
    done += n;
  }
  double secs = Seconds(t0, Clock::now());
  stats_.prompt_tokens += count;
  stats_.prefill_seconds += secs;
  prefill_since_generate_ += secs;
  return Finish(Status::Ok());
}

Status Session::AppendText(std::string_view text) {
  std::vector<int32_t> ids;
  Status s = module_->tokenizer().Encode(text, &ids);
  if (!s.ok())
    return Finish(s);
  return AppendTokens(ids.data(), ids.size());
}

Status Session::AppendChat(const std::vector<text::ChatMessage> &messages,
                           bool add_generation_prompt) {
  const schema::Module &prog = module_->program();
  const schema::SpecialTokens *st = prog.special_tokens();
  if (prog.chat() == nullptr || st == nullptr || st->bos() < 0 ||
      st->start_of_turn() < 0 || st->end_of_turn() < 0)
    return Finish(Status(StatusCode::kFailedPrecondition,
                         module_->path() +
                             ": the module has no chat format (chat, "
                             "special_tokens.bos/start_of_turn/end_of_turn)"));
  text::ChatFormatSpec spec;
  const schema::ChatFormat *cf = prog.chat();
  if (cf->turn_start())
    spec.turn_start = cf->turn_start()->str();
  if (cf->turn_end())
    spec.turn_end = cf->turn_end()->str();
  if (cf->user_role())
    spec.user_role = cf->user_role()->str();
  if (cf->model_role())
    spec.model_role = cf->model_role()->str();
  spec.system_folds_into_first_user =
      cf->system() == schema::SystemPrompt::FoldIntoFirstUser;
  std::vector<int32_t> ids;
  Status s = text::RenderChatTokens(spec, module_->tokenizer(), st->bos(),
                                    st->start_of_turn(), st->end_of_turn(),
                                    messages, add_generation_prompt, &ids);
  if (!s.ok())
    return Finish(s);
  if (!tokens_.empty()) {
    // Continue the conversation: drop BOS, close the previous model turn.
    if (!ids.empty() && ids[0] == st->bos())
      ids.erase(ids.begin());
    std::vector<int32_t> prefix;
    if (tokens_.back() != st->end_of_turn())
      prefix.push_back(st->end_of_turn());
    std::vector<int32_t> nl;
    s = module_->tokenizer().Encode("\n", &nl);
    if (!s.ok())
      return Finish(s);
    prefix.insert(prefix.end(), nl.begin(), nl.end());
    ids.insert(ids.begin(), prefix.begin(), prefix.end());
  }
  return AppendTokens(ids.data(), ids.size());
}

Status Session::Generate(const GenerateOptions &options,
                         const TokenCallback &callback, StopReason *reason) {
  StopReason why = StopReason::kNone;
  if (reason)
    *reason = why;
  if (options.max_tokens < 0)
    return Finish(Status(StatusCode::kInvalidArgument,
                         "generate: max_tokens " +
                             std::to_string(options.max_tokens) +
                             " is negative"));
  if (tokens_.empty())
    return Finish(Status(StatusCode::kFailedPrecondition,
                         "generate: the session is empty; append a prompt "
                         "first"));
  auto gen_start = Clock::now();
  stats_.generated_tokens = 0;
  stats_.time_to_first_token = 0;
  Status s = CheckRoom(pending_ ? 1 : 0);
  if (s.ok())
    s = FlushPending();
  if (!s.ok())
    return Finish(s);
  if (!sampler_.has_value())
    sampler_.emplace(options.sampling, static_cast<int32_t>(sample_cols_));
  else
    *sampler_ =
        text::Sampler(options.sampling, static_cast<int32_t>(sample_cols_));
  decoder_->Reset();
  held_.clear();
  const schema::SpecialTokens *st = module_->program().special_tokens();
  const auto *stops = st ? st->stop() : nullptr;
  auto is_stop = [&](int32_t t) {
    if (stops)
      for (int32_t id : *stops)
        if (id == t)
          return true;
    return false;
  };
  size_t max_stop_len = 0;
  for (const std::string &ss : options.stop_strings)
    max_stop_len = std::max(max_stop_len, ss.size());

  bool stopped_on_string = false;
  for (int32_t i = 0; i < options.max_tokens; ++i) {
    if (cancelled())
      return Finish(Status(StatusCode::kCancelled, "cancelled"));
    if (i > 0) {
      s = CheckRoom(1);
      if (s.ok())
        s = FlushPending();
      if (!s.ok())
        return Finish(s);
    } else if (CheckRoom(1).ok() == false) {
      return Finish(CheckRoom(1));
    }
    int32_t tok =
        sampler_->Sample(last_logits_, static_cast<int32_t>(sample_cols_));
    if (tok < 0)
      return Finish(Status(StatusCode::kInternal, "generate: sampler failed"));
    if (i == 0)
      stats_.time_to_first_token =
          prefill_since_generate_ + Seconds(gen_start, Clock::now());
    tokens_.push_back(tok);
    pending_ = true;
    stats_.generated_tokens += 1;
    if (is_stop(tok)) {
      why = StopReason::kStopToken;
      break;
    }
    held_.append(decoder_->Push(tok));
    size_t emit = held_.size();
    if (max_stop_len > 0) {
      size_t first = std::string::npos;
      for (const std::string &ss : options.stop_strings)
        if (!ss.empty())
          first = std::min(first, held_.find(ss));
      if (first != std::string::npos) {
        held_.resize(first);
        stopped_on_string = true;
        why = StopReason::kStopString;
      } else {
        // Withhold the longest tail that could still begin a stop string.
        for (size_t k = std::min(held_.size(), max_stop_len - 1); k > 0; --k) {
          bool prefix = false;
          for (const std::string &ss : options.stop_strings)
            if (ss.size() > k &&
                held_.compare(held_.size() - k, k, ss, 0, k) == 0)
              prefix = true;
          if (prefix) {
            emit = held_.size() - k;
            break;
          }
        }
      }
    }
    if (stopped_on_string)
      emit = held_.size();
    bool go_on =
        callback ? callback(tok, std::string_view(held_.data(), emit)) : true;
    held_.erase(0, emit);
    if (stopped_on_string)
      break;
    if (!go_on) {
      why = StopReason::kCallback;
      break;
    }
    if (i + 1 == options.max_tokens)
      why = StopReason::kMaxTokens;
  }
  if (!stopped_on_string) {
    held_.append(decoder_->Flush());
    if (!held_.empty() && callback)
      callback(-1, held_);
    held_.clear();
  }
  prefill_since_generate_ = 0;
  if (reason)
    *reason = why;
  return Finish(Status::Ok());
}

Status Session::Tokenize(std::string_view text, bool add_bos,
                         std::vector<int32_t> *ids) const {
  ids->clear();
  std::vector<int32_t> body;
  GEMMAC_RETURN_IF_ERROR(module_->tokenizer().Encode(text, &body));
  const schema::SpecialTokens *st = module_->program().special_tokens();
  if (add_bos) {
    if (st == nullptr || st->bos() < 0)
      return Status(StatusCode::kFailedPrecondition,
                    module_->path() + ": special_tokens.bos is not set");
    ids->push_back(st->bos());
  }
  ids->insert(ids->end(), body.begin(), body.end());
  return Status::Ok();
}

Status Session::Detokenize(const std::vector<int32_t> &ids,
                           std::string *text) const {
  return module_->tokenizer().Decode(ids, text);
}

SessionStats Session::stats() const {
  SessionStats s = stats_;
  s.arena_bytes = arena_bytes_;
  s.kv_bytes = kv_->bytes();
  s.weights_bytes = module_->weights_bytes();
  s.context_length = context_length_;
  s.position = static_cast<int64_t>(tokens_.size());
  return s;
}

} // namespace gemmac
