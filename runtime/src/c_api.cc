// The C API (gemmac/runtime.h): reference-counted handles over Module,
// PluginRegistry and Session, and gemmac_status for their Status. No C++
// exception crosses this boundary.
#include "gemmac/runtime.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "module.h"
#include "plugin_registry.h"
#include "session.h"

struct gemmac_status {
  gemmac_status_code code;
  std::string message;
};

struct gemmac_runtime {
  std::atomic<int> refs{1};
  std::mutex mu; // guards registry and warnings
  gemmac::PluginRegistry registry;
  std::vector<std::string> warnings;
  int32_t num_threads = 0;
};

struct gemmac_module {
  std::atomic<int> refs{1};
  gemmac_runtime *runtime = nullptr;
  std::shared_ptr<gemmac::Module> module;
  std::vector<int32_t> stop_ids;
  std::string producer, architecture, quantization;
  int32_t prefill_last_logits_only = 0;
};

struct gemmac_session {
  gemmac_runtime *runtime = nullptr;
  gemmac_module *module = nullptr;
  std::unique_ptr<gemmac::Session> session;
  int32_t last_stop = 0;
};

namespace {

gemmac_status *MakeStatus(gemmac_status_code code, std::string message) {
  auto *s = new (std::nothrow) gemmac_status{code, std::move(message)};
  if (s == nullptr) {
    // Out of memory while reporting: a static status would need freeing
    // rules of its own, so fall back to an empty message.
    s = new (std::nothrow) gemmac_status{code, std::string()};
  }
  return s;
}

gemmac_status *ToC(const gemmac::Status &s) {
  if (s.ok())
    return nullptr;
  return MakeStatus(static_cast<gemmac_status_code>(s.code()), s.message());
}

gemmac_status *Invalid(const char *what) {
  return MakeStatus(GEMMAC_STATUS_INVALID_ARGUMENT, what);
}

void Retain(gemmac_runtime *r) { r->refs.fetch_add(1); }
void Retain(gemmac_module *m) { m->refs.fetch_add(1); }

// The bytes of a caller's struct we may read: its struct_size, capped at
// ours, so an older caller's shorter struct keeps our defaults past its end.
template <typename T> T ReadOptions(const T *in, T defaults) {
  if (in == nullptr)
    return defaults;
  size_t n = in->struct_size < sizeof(T) ? in->struct_size : sizeof(T);
  std::memcpy(&defaults, in, n);
  defaults.struct_size = sizeof(T);
  return defaults;
}

} // namespace

#define GEMMAC_C_TRY try {
#define GEMMAC_C_CATCH                                                         \
  }                                                                            \
  catch (const std::bad_alloc &) {                                             \
    return MakeStatus(GEMMAC_STATUS_RESOURCE_EXHAUSTED, "out of memory");      \
  }                                                                            \
  catch (...) {                                                                \
    return MakeStatus(GEMMAC_STATUS_INTERNAL, "unexpected C++ exception");     \
  }

extern "C" {

gemmac_status_code gemmac_status_code_of(const gemmac_status *status) {
  return status ? status->code : GEMMAC_STATUS_OK;
}
const char *gemmac_status_message(const gemmac_status *status) {
  return status ? status->message.c_str() : "";
}
void gemmac_status_free(gemmac_status *status) { delete status; }
void gemmac_free(void *ptr) { std::free(ptr); }

gemmac_status *gemmac_runtime_create(const gemmac_runtime_options *options,
                                     gemmac_runtime **out) {
  if (out == nullptr)
    return Invalid("gemmac_runtime_create: out is NULL");
  *out = nullptr;
  GEMMAC_C_TRY
  gemmac_runtime_options defaults{};
  defaults.struct_size = sizeof(defaults);
  defaults.search_plugins = 1;
  gemmac_runtime_options o = ReadOptions(options, defaults);
  auto *rt = new gemmac_runtime();
  rt->num_threads = o.num_threads;
  for (size_t i = 0; i < o.num_plugin_paths; ++i) {
    if (o.plugin_paths == nullptr || o.plugin_paths[i] == nullptr) {
      delete rt;
      return Invalid("gemmac_runtime_create: plugin_paths has a NULL entry");
    }
    gemmac::Status s = rt->registry.LoadFile(o.plugin_paths[i]);
    if (!s.ok()) {
      delete rt;
      return ToC(s);
    }
  }
  if (o.search_plugins) {
    if (const char *env = std::getenv("GEMMAC_PLUGIN_PATH"))
      rt->registry.LoadFromDirs(env, &rt->warnings);
    rt->registry.LoadFromDirs(gemmac::PluginRegistry::RuntimeLibDir(),
                              &rt->warnings);
  }
  *out = rt;
  return nullptr;
  GEMMAC_C_CATCH
}

void gemmac_runtime_release(gemmac_runtime *runtime) {
  if (runtime != nullptr && runtime->refs.fetch_sub(1) == 1)
    delete runtime;
}

gemmac_status *gemmac_runtime_register_plugin(gemmac_runtime *runtime,
                                              gemmac_plugin_entry_fn entry,
                                              const char *origin) {
  if (runtime == nullptr)
    return Invalid("gemmac_runtime_register_plugin: runtime is NULL");
  GEMMAC_C_TRY
  std::lock_guard<std::mutex> lock(runtime->mu);
  return ToC(runtime->registry.Register(
      entry, std::string("static:") + (origin ? origin : "plugin")));
  GEMMAC_C_CATCH
}

gemmac_status *gemmac_runtime_load_plugin(gemmac_runtime *runtime,
                                          const char *path) {
  if (runtime == nullptr || path == nullptr)
    return Invalid("gemmac_runtime_load_plugin: runtime or path is NULL");
  GEMMAC_C_TRY
  std::lock_guard<std::mutex> lock(runtime->mu);
  return ToC(runtime->registry.LoadFile(path));
  GEMMAC_C_CATCH
}

size_t gemmac_runtime_plugin_count(const gemmac_runtime *runtime) {
  if (runtime == nullptr)
    return 0;
  std::lock_guard<std::mutex> lock(const_cast<gemmac_runtime *>(runtime)->mu);
  return runtime->registry.plugins().size();
}

const char *gemmac_runtime_plugin_name(const gemmac_runtime *runtime,
                                       size_t index) {
  if (runtime == nullptr)
    return nullptr;
  std::lock_guard<std::mutex> lock(const_cast<gemmac_runtime *>(runtime)->mu);
  const auto &p = runtime->registry.plugins();
  return index < p.size() ? p[index]->api.name : nullptr;
}

const char *gemmac_runtime_plugin_warning(const gemmac_runtime *runtime,
                                          size_t index) {
  if (runtime == nullptr || index >= runtime->warnings.size())
    return nullptr;
  return runtime->warnings[index].c_str();
}

gemmac_status *gemmac_module_load(gemmac_runtime *runtime, const char *path,
                                  gemmac_module **out) {
  if (runtime == nullptr || path == nullptr || out == nullptr)
    return Invalid("gemmac_module_load: runtime, path or out is NULL");
  *out = nullptr;
  GEMMAC_C_TRY
  std::shared_ptr<gemmac::Module> m;
  gemmac::Status s = gemmac::Module::Load(path, &m);
  if (!s.ok())
    return ToC(s);
  auto *mod = new gemmac_module();
  mod->module = std::move(m);
  Retain(runtime);
  mod->runtime = runtime;
  const gemmac::schema::Module &p = mod->module->program();
  if (p.special_tokens() && p.special_tokens()->stop())
    mod->stop_ids.assign(p.special_tokens()->stop()->begin(),
                         p.special_tokens()->stop()->end());
  mod->producer = p.producer() ? p.producer()->str() : "";
  mod->architecture =
      p.config()->architecture() ? p.config()->architecture()->str() : "";
  mod->quantization = p.quantization() ? p.quantization()->str() : "";
  {
    const auto *prefill = mod->module->FindFunction("prefill");
    const auto *out = p.tensors()->Get(prefill->outputs()->Get(0));
    mod->prefill_last_logits_only =
        out->shape()->Get(0) != gemmac::kTokensDim ? 1 : 0;
  }
  *out = mod;
  return nullptr;
  GEMMAC_C_CATCH
}

void gemmac_module_release(gemmac_module *module) {
  if (module != nullptr && module->refs.fetch_sub(1) == 1) {
    gemmac_runtime *rt = module->runtime;
    delete module;
    gemmac_runtime_release(rt);
  }
}

gemmac_status *gemmac_module_verify_checksums(const gemmac_module *module) {
  if (module == nullptr)
    return Invalid("gemmac_module_verify_checksums: module is NULL");
  GEMMAC_C_TRY
  return ToC(module->module->VerifyChecksums());
  GEMMAC_C_CATCH
}

gemmac_status *gemmac_module_get_info(const gemmac_module *module,
                                      gemmac_module_info *info) {
  if (module == nullptr || info == nullptr ||
      info->struct_size < sizeof(size_t))
    return Invalid("gemmac_module_get_info: module or info is NULL, or "
                   "info->struct_size is unset");
  const gemmac::Module &m = *module->module;
  const gemmac::schema::Module &p = m.program();
  const auto *c = p.config();
  const auto *st = p.special_tokens();
  gemmac_module_info i{};
  i.struct_size = sizeof(i);
  i.version_major = m.header().version_major;
  i.version_minor = m.header().version_minor;
  i.producer = module->producer.c_str();
  i.architecture = module->architecture.c_str();
  i.family = static_cast<int32_t>(c->family());
  i.hidden_size = c->hidden_size();
  i.intermediate_size = c->intermediate_size();
  i.num_layers = c->num_layers();
  i.num_heads = c->num_heads();
  i.num_kv_heads = c->num_kv_heads();
  i.head_dim = c->head_dim();
  i.vocab_size = c->vocab_size();
  i.tokenizer_vocab_size = p.tokenizer_vocab_size();
  i.max_context = c->max_context();
  i.sliding_window = c->sliding_window();
  i.bos_id = st ? st->bos() : -1;
  i.eos_id = st ? st->eos() : -1;
  i.pad_id = st ? st->pad() : -1;
  i.start_of_turn_id = st ? st->start_of_turn() : -1;
  i.end_of_turn_id = st ? st->end_of_turn() : -1;
  i.stop_ids = module->stop_ids.data();
  i.num_stop_ids = module->stop_ids.size();
  i.num_functions = p.functions()->size();
  i.prefill_max_tokens = m.FindFunction("prefill")->max_tokens();
  i.decode_max_tokens = m.FindFunction("decode")->max_tokens();
  i.weights_bytes = m.weights_bytes();
  i.parameter_count = c->parameter_count();
  i.quantization = module->quantization.c_str();
  i.prefill_last_logits_only = module->prefill_last_logits_only;
  size_t n = info->struct_size < sizeof(i) ? info->struct_size : sizeof(i);
  std::memcpy(info, &i, n);
  info->struct_size = n;
  return nullptr;
}

const char *gemmac_module_function_name(const gemmac_module *module,
                                        size_t index) {
  if (module == nullptr)
    return nullptr;
  const auto *fns = module->module->program().functions();
  return index < fns->size() ? fns->Get(index)->name()->c_str() : nullptr;
}

gemmac_status *gemmac_session_create(gemmac_runtime *runtime,
                                     gemmac_module *module,
                                     const gemmac_session_options *options,
                                     gemmac_session **out) {
  if (runtime == nullptr || module == nullptr || out == nullptr)
    return Invalid("gemmac_session_create: runtime, module or out is NULL");
  *out = nullptr;
  GEMMAC_C_TRY
  gemmac_session_options defaults{};
  defaults.struct_size = sizeof(defaults);
  defaults.batch_size = 1;
  gemmac_session_options o = ReadOptions(options, defaults);
  if (o.batch_size != 1)
    return MakeStatus(GEMMAC_STATUS_UNIMPLEMENTED,
                      "gemmac_session_create: batch_size " +
                          std::to_string(o.batch_size) +
                          "; this version decodes one sequence (batch_size 1)");
  gemmac::SessionOptions so;
  so.context_length = o.context_length;
  so.num_threads = o.num_threads ? o.num_threads : runtime->num_threads;
  so.plugin = o.plugin_name ? o.plugin_name : "";
  so.keep_prompt_logits = o.keep_prompt_logits != 0;
  std::unique_ptr<gemmac::Session> s;
  {
    std::lock_guard<std::mutex> lock(runtime->mu);
    gemmac::Status st =
        gemmac::Session::Create(module->module, runtime->registry, so, &s);
    if (!st.ok())
      return ToC(st);
  }
  auto *session = new gemmac_session();
  session->session = std::move(s);
  Retain(runtime);
  session->runtime = runtime;
  Retain(module);
  session->module = module;
  *out = session;
  return nullptr;
  GEMMAC_C_CATCH
}

gemmac_status *
gemmac_module_session_memory(const gemmac_module *module,
                             const gemmac_session_options *options,
                             gemmac_session_memory *out) {
  if (module == nullptr || out == nullptr || out->struct_size < sizeof(size_t))
    return Invalid("gemmac_module_session_memory: module or out is NULL, or "
                   "out->struct_size is unset");
  GEMMAC_C_TRY
  gemmac_session_options defaults{};
  defaults.struct_size = sizeof(defaults);
  gemmac_session_options o = ReadOptions(options, defaults);
  gemmac::Session::Memory need;
  gemmac::Status st =
      gemmac::Session::MemoryNeeded(*module->module, o.context_length, &need);
  if (!st.ok())
    return ToC(st);
  gemmac_session_memory m{};
  m.struct_size = sizeof(m);
  m.context_length = need.context_length;
  m.arena_bytes = need.arena_bytes;
  m.kv_cache_bytes = need.kv_bytes;
  size_t n = out->struct_size < sizeof(m) ? out->struct_size : sizeof(m);
  std::memcpy(out, &m, n);
  out->struct_size = n;
  return nullptr;
  GEMMAC_C_CATCH
}

gemmac_status *gemmac_runtime_device_info(gemmac_runtime *runtime,
                                          const char *plugin_name,
                                          gemmac_device_info *info) {
  if (runtime == nullptr || info == nullptr ||
      info->struct_size < sizeof(size_t))
    return Invalid("gemmac_runtime_device_info: runtime or info is NULL, or "
                   "info->struct_size is unset");
  GEMMAC_C_TRY
  const std::string name = plugin_name ? plugin_name : "";
  std::shared_ptr<const gemmac::Plugin> plugin;
  {
    std::lock_guard<std::mutex> lock(runtime->mu);
    plugin = runtime->registry.Find(name);
  }
  if (plugin == nullptr)
    return MakeStatus(GEMMAC_STATUS_NOT_FOUND,
                      name.empty() ? std::string("gemmac_runtime_device_info: "
                                                 "no backend plugin is "
                                                 "registered")
                                   : "gemmac_runtime_device_info: no plugin "
                                     "named '" +
                                         name + "' is registered");
  std::unique_ptr<gemmac::Backend> backend;
  gemmac::Status st =
      gemmac::Backend::Create(plugin, runtime->num_threads, &backend);
  if (!st.ok())
    return ToC(st);
  gemmac_device_info d{};
  if (!backend->DeviceInfo(&d))
    return MakeStatus(
        GEMMAC_STATUS_UNIMPLEMENTED,
        "gemmac_runtime_device_info: plugin '" + backend->name() +
            "' gave no device information (device_info() needs ABI 1.5; "
            "the plugin speaks " +
            std::to_string(backend->api().abi_major) + "." +
            std::to_string(backend->api().abi_minor) + ")");
  d.struct_size = sizeof(d);
  size_t n = info->struct_size < sizeof(d) ? info->struct_size : sizeof(d);
  std::memcpy(info, &d, n);
  info->struct_size = n;
  return nullptr;
  GEMMAC_C_CATCH
}

void gemmac_session_release(gemmac_session *session) {
  if (session == nullptr)
    return;
  gemmac_runtime *rt = session->runtime;
  gemmac_module *m = session->module;
  delete session;
  gemmac_module_release(m);
  gemmac_runtime_release(rt);
}

gemmac_status *gemmac_session_tokenize(gemmac_session *session,
                                       const char *text, size_t text_len,
                                       int32_t add_bos, int32_t **out_ids,
                                       size_t *out_count) {
  if (session == nullptr || (text == nullptr && text_len) ||
      out_ids == nullptr || out_count == nullptr)
    return Invalid("gemmac_session_tokenize: NULL argument");
  *out_ids = nullptr;
  *out_count = 0;
  GEMMAC_C_TRY
  std::vector<int32_t> ids;
  gemmac::Status s = session->session->Tokenize(
      std::string_view(text ? text : "", text_len), add_bos != 0, &ids);
  if (!s.ok())
    return ToC(s);
  auto *buf = static_cast<int32_t *>(
      std::malloc(sizeof(int32_t) * (ids.size() ? ids.size() : 1)));
  if (buf == nullptr)
    return MakeStatus(GEMMAC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  std::memcpy(buf, ids.data(), sizeof(int32_t) * ids.size());
  *out_ids = buf;
  *out_count = ids.size();
  return nullptr;
  GEMMAC_C_CATCH
}

gemmac_status *gemmac_session_detokenize(gemmac_session *session,
                                         const int32_t *ids, size_t count,
                                         char **out_text, size_t *out_len) {
  if (session == nullptr || (ids == nullptr && count) || out_text == nullptr)
    return Invalid("gemmac_session_detokenize: NULL argument");
  *out_text = nullptr;
  GEMMAC_C_TRY
  std::string text;
  gemmac::Status s = session->session->Detokenize(
      std::vector<int32_t>(ids, ids + count), &text);
  if (!s.ok())
    return ToC(s);
  char *buf = static_cast<char *>(std::malloc(text.size() + 1));
  if (buf == nullptr)
    return MakeStatus(GEMMAC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  *out_text = buf;
  if (out_len)
    *out_len = text.size();
  return nullptr;
  GEMMAC_C_CATCH
}

gemmac_status *gemmac_session_append(gemmac_session *session,
                                     const gemmac_input *inputs,
                                     size_t num_inputs) {
  if (session == nullptr || (inputs == nullptr && num_inputs))
    return Invalid("gemmac_session_append: NULL argument");
  GEMMAC_C_TRY
  for (size_t i = 0; i < num_inputs; ++i) {
    gemmac_input in = ReadOptions(&inputs[i], gemmac_input{});
    gemmac::Status s;
    if (in.kind == GEMMAC_INPUT_TEXT) {
      if (in.text == nullptr && in.text_len)
        return Invalid("gemmac_session_append: text input with NULL text");
      s = session->session->AppendText(
          std::string_view(in.text ? in.text : "", in.text_len));
    } else if (in.kind == GEMMAC_INPUT_TOKENS) {
      s = session->session->AppendTokens(in.tokens, in.num_tokens);
    } else {
      return MakeStatus(GEMMAC_STATUS_UNIMPLEMENTED,
                        "gemmac_session_append: input " + std::to_string(i) +
                            " has kind " + std::to_string(in.kind) +
                            "; this version takes text (0) and tokens (1)");
    }
    if (!s.ok())
      return ToC(s);
  }
  return nullptr;
  GEMMAC_C_CATCH
}

gemmac_status *gemmac_session_append_text(gemmac_session *session,
                                          const char *text, size_t text_len) {
  if (session == nullptr || (text == nullptr && text_len))
    return Invalid("gemmac_session_append_text: NULL argument");
  GEMMAC_C_TRY
  return ToC(session->session->AppendText(
      std::string_view(text ? text : "", text_len)));
  GEMMAC_C_CATCH
}

gemmac_status *gemmac_session_append_tokens(gemmac_session *session,
                                            const int32_t *ids, size_t count) {
  if (session == nullptr)
    return Invalid("gemmac_session_append_tokens: session is NULL");
  GEMMAC_C_TRY
  return ToC(session->session->AppendTokens(ids, count));
  GEMMAC_C_CATCH
}

gemmac_status *gemmac_session_append_chat(gemmac_session *session,
                                          const gemmac_chat_message *messages,
                                          size_t num_messages,
                                          int32_t add_generation_prompt) {
  if (session == nullptr || (messages == nullptr && num_messages))
    return Invalid("gemmac_session_append_chat: NULL argument");
  GEMMAC_C_TRY
  std::vector<gemmac::text::ChatMessage> msgs;
  for (size_t i = 0; i < num_messages; ++i) {
    if (messages[i].role == nullptr || messages[i].content == nullptr)
      return Invalid("gemmac_session_append_chat: a message has a NULL role "
                     "or content");
    msgs.push_back({messages[i].role, messages[i].content});
  }
  return ToC(session->session->AppendChat(msgs, add_generation_prompt != 0));
  GEMMAC_C_CATCH
}

gemmac_status *gemmac_session_generate(gemmac_session *session,
                                       const gemmac_sampling_params *params,
                                       int32_t max_tokens,
                                       gemmac_token_callback callback,
                                       void *user_data) {
  if (session == nullptr)
    return Invalid("gemmac_session_generate: session is NULL");
  GEMMAC_C_TRY
  gemmac_sampling_params defaults{};
  defaults.struct_size = sizeof(defaults);
  defaults.temperature = 1.0f;
  defaults.top_p = 1.0f;
  gemmac_sampling_params p = ReadOptions(params, defaults);
  gemmac::GenerateOptions o;
  o.max_tokens = max_tokens;
  o.sampling.temperature = p.temperature;
  o.sampling.top_k = p.top_k;
  o.sampling.top_p = p.top_p;
  o.sampling.seed = p.seed;
  for (size_t i = 0; i < p.num_stop_strings; ++i)
    if (p.stop_strings && p.stop_strings[i])
      o.stop_strings.emplace_back(p.stop_strings[i]);
  gemmac::Session::TokenCallback cb;
  if (callback != nullptr)
    cb = [&](int32_t token, std::string_view text) {
      return callback(user_data, token, text.data(), text.size()) == 0;
    };
  gemmac::StopReason why = gemmac::StopReason::kNone;
  gemmac::Status s = session->session->Generate(o, cb, &why);
  session->last_stop = static_cast<int32_t>(why);
  return ToC(s);
  GEMMAC_C_CATCH
}

void gemmac_session_cancel(gemmac_session *session) {
  if (session != nullptr)
    session->session->Cancel();
}

void gemmac_session_reset(gemmac_session *session) {
  if (session != nullptr) {
    session->session->Reset();
    session->last_stop = 0;
  }
}

const int32_t *gemmac_session_tokens(const gemmac_session *session,
                                     size_t *count) {
  if (session == nullptr) {
    if (count)
      *count = 0;
    return nullptr;
  }
  const auto &t = session->session->tokens();
  if (count)
    *count = t.size();
  return t.data();
}

const float *gemmac_session_last_logits(const gemmac_session *session,
                                        size_t *cols) {
  if (cols)
    *cols = 0;
  if (session == nullptr || session->session->last_logits() == nullptr)
    return nullptr;
  if (cols)
    *cols = session->session->logits_cols();
  return session->session->last_logits();
}

const float *gemmac_session_prompt_logits(const gemmac_session *session,
                                          size_t *positions, size_t *cols) {
  if (positions)
    *positions = 0;
  if (cols)
    *cols = 0;
  if (session == nullptr)
    return nullptr;
  const auto &l = session->session->prompt_logits();
  size_t c = session->session->logits_cols();
  if (l.empty() || c == 0)
    return nullptr;
  if (positions)
    *positions = l.size() / c;
  if (cols)
    *cols = c;
  return l.data();
}

gemmac_status *gemmac_session_get_stats(const gemmac_session *session,
                                        gemmac_session_stats *stats) {
  if (session == nullptr || stats == nullptr ||
      stats->struct_size < sizeof(size_t))
    return Invalid("gemmac_session_get_stats: session or stats is NULL, or "
                   "stats->struct_size is unset");
  gemmac::SessionStats s = session->session->stats();
  gemmac_session_stats o{};
  o.struct_size = sizeof(o);
  o.prompt_tokens = s.prompt_tokens;
  o.prefill_seconds = s.prefill_seconds;
  o.prefill_tokens_per_second =
      s.prefill_seconds > 0 ? s.prompt_tokens / s.prefill_seconds : 0;
  o.decode_tokens = s.decode_tokens;
  o.decode_seconds = s.decode_seconds;
  o.decode_tokens_per_second =
      s.decode_seconds > 0 ? s.decode_tokens / s.decode_seconds : 0;
  o.generated_tokens = s.generated_tokens;
  o.time_to_first_token = s.time_to_first_token;
  o.stop_reason = session->last_stop;
  o.arena_bytes = s.arena_bytes;
  o.kv_cache_bytes = s.kv_bytes;
  o.weights_bytes = s.weights_bytes;
  o.context_length = s.context_length;
  o.position = s.position;
  size_t n = stats->struct_size < sizeof(o) ? stats->struct_size : sizeof(o);
  std::memcpy(stats, &o, n);
  stats->struct_size = n;
  return nullptr;
}

const char *gemmac_session_backend_name(const gemmac_session *session) {
  return session ? session->session->backend_name().c_str() : nullptr;
}

const char *gemmac_session_backend_description(const gemmac_session *session) {
  return session ? session->session->backend_description().c_str() : nullptr;
}

const char *gemmac_session_fallback_summary(const gemmac_session *session) {
  return session ? session->session->fallback_summary().c_str() : nullptr;
}

const char *gemmac_session_graph_summary(const gemmac_session *session) {
  return session ? session->session->graph_summary().c_str() : nullptr;
}

} // extern "C"
