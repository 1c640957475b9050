// A thin C++17 wrapper over the C API (gemmac/runtime.h): RAII handles,
// std::string and std::vector, and a Status value instead of exceptions.
// Header-only; it adds no state and no behaviour of its own, so anything
// said about a C function holds for its wrapper.
//
//   namespace g = gemmac::api;
//   g::Runtime rt;
//   g::Status st = g::Runtime::Create({}, &rt);
//   g::ModuleRef m;  st = rt.Load("model.gmc", &m);
//   g::SessionRef s; st = rt.NewSession(m, {}, &s);
//   st = s.AppendText("Hello");
//   st = s.Generate({}, 64, [](int32_t, std::string_view t) {
//          fwrite(t.data(), 1, t.size(), stdout); return true; });
#ifndef GEMMAC_RUNTIME_HPP_
#define GEMMAC_RUNTIME_HPP_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gemmac/runtime.h"

namespace gemmac {
// `api`: apart from the runtime's internal gemmac::Status (runtime/src).
namespace api {

// Owns the message of a failed call; ok() when the C call returned NULL.
class [[nodiscard]] Status {
public:
  Status() = default;
  // Takes ownership of `s` (frees it).
  explicit Status(gemmac_status *s) {
    if (s != nullptr) {
      code_ = gemmac_status_code_of(s);
      message_ = gemmac_status_message(s);
      gemmac_status_free(s);
    }
  }
  bool ok() const { return code_ == GEMMAC_STATUS_OK; }
  gemmac_status_code code() const { return code_; }
  const std::string &message() const { return message_; }

private:
  gemmac_status_code code_ = GEMMAC_STATUS_OK;
  std::string message_;
};

namespace detail {
template <typename T, void (*Release)(T *)> class Handle {
public:
  Handle() = default;
  explicit Handle(T *p) : p_(p) {}
  Handle(Handle &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Handle &operator=(Handle &&o) noexcept {
    if (this != &o) {
      Release(p_);
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  Handle(const Handle &) = delete;
  Handle &operator=(const Handle &) = delete;
  ~Handle() { Release(p_); }
  T *get() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }

protected:
  T *p_ = nullptr;
};
} // namespace detail

class ModuleRef : public detail::Handle<gemmac_module, gemmac_module_release> {
public:
  using Handle::Handle;
  Status Info(gemmac_module_info *info) const {
    info->struct_size = sizeof(*info);
    return Status(gemmac_module_get_info(p_, info));
  }
  Status VerifyChecksums() const {
    return Status(gemmac_module_verify_checksums(p_));
  }
};

struct ChatMessage {
  std::string role, content;
};

struct SamplingParams {
  float temperature = 1.0f; // 0 = greedy
  int32_t top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  std::vector<std::string> stop_strings;
};

class SessionRef
    : public detail::Handle<gemmac_session, gemmac_session_release> {
public:
  using Handle::Handle;
  // Return false to stop; token is -1 for text flushed at the end.
  using TokenFn = std::function<bool(int32_t token, std::string_view text)>;

  Status AppendText(std::string_view text) {
    return Status(gemmac_session_append_text(p_, text.data(), text.size()));
  }
  Status AppendTokens(const std::vector<int32_t> &ids) {
    return Status(gemmac_session_append_tokens(p_, ids.data(), ids.size()));
  }
  Status AppendChat(const std::vector<ChatMessage> &messages,
                    bool add_generation_prompt = true) {
    std::vector<gemmac_chat_message> m;
    for (const ChatMessage &c : messages)
      m.push_back(
          {sizeof(gemmac_chat_message), c.role.c_str(), c.content.c_str()});
    return Status(gemmac_session_append_chat(p_, m.data(), m.size(),
                                             add_generation_prompt));
  }
  Status Tokenize(std::string_view text, bool add_bos,
                  std::vector<int32_t> *ids) {
    int32_t *buf = nullptr;
    size_t n = 0;
    Status s(gemmac_session_tokenize(p_, text.data(), text.size(), add_bos,
                                     &buf, &n));
    if (s.ok())
      ids->assign(buf, buf + n);
    gemmac_free(buf);
    return s;
  }
  Status Detokenize(const std::vector<int32_t> &ids, std::string *text) {
    char *buf = nullptr;
    size_t n = 0;
    Status s(gemmac_session_detokenize(p_, ids.data(), ids.size(), &buf, &n));
    if (s.ok())
      text->assign(buf, n);
    gemmac_free(buf);
    return s;
  }
  Status Generate(const SamplingParams &params, int32_t max_tokens,
                  const TokenFn &on_token = nullptr) {
    std::vector<const char *> stops;
    for (const std::string &s : params.stop_strings)
      stops.push_back(s.c_str());
    gemmac_sampling_params p{};
    p.struct_size = sizeof(p);
    p.temperature = params.temperature;
    p.top_k = params.top_k;
    p.top_p = params.top_p;
    p.seed = params.seed;
    p.stop_strings = stops.data();
    p.num_stop_strings = stops.size();
    return Status(gemmac_session_generate(p_, &p, max_tokens,
                                          on_token ? &Trampoline : nullptr,
                                          const_cast<TokenFn *>(&on_token)));
  }
  void Cancel() { gemmac_session_cancel(p_); } // thread-safe
  void Reset() { gemmac_session_reset(p_); }
  std::vector<int32_t> Tokens() const {
    size_t n = 0;
    const int32_t *t = gemmac_session_tokens(p_, &n);
    return std::vector<int32_t>(t, t + n);
  }
  Status Stats(gemmac_session_stats *stats) const {
    stats->struct_size = sizeof(*stats);
    return Status(gemmac_session_get_stats(p_, stats));
  }

private:
  static int32_t Trampoline(void *user, int32_t token, const char *text,
                            size_t len) {
    return (*static_cast<TokenFn *>(user))(token, std::string_view(text, len))
               ? 0
               : 1;
  }
};

class Runtime : public detail::Handle<gemmac_runtime, gemmac_runtime_release> {
public:
  using Handle::Handle;
  struct Options {
    std::vector<std::string> plugin_paths;
    bool search_plugins = true;
    int32_t num_threads = 0;
  };
  static Status Create(const Options &o, Runtime *out) {
    std::vector<const char *> paths;
    for (const std::string &p : o.plugin_paths)
      paths.push_back(p.c_str());
    gemmac_runtime_options ro{};
    ro.struct_size = sizeof(ro);
    ro.plugin_paths = paths.data();
    ro.num_plugin_paths = paths.size();
    ro.search_plugins = o.search_plugins;
    ro.num_threads = o.num_threads;
    gemmac_runtime *rt = nullptr;
    Status s(gemmac_runtime_create(&ro, &rt));
    *out = Runtime(rt);
    return s;
  }
  Status RegisterPlugin(gemmac_plugin_entry_fn entry, const char *origin) {
    return Status(gemmac_runtime_register_plugin(p_, entry, origin));
  }
  Status Load(const std::string &path, ModuleRef *out) {
    gemmac_module *m = nullptr;
    Status s(gemmac_module_load(p_, path.c_str(), &m));
    *out = ModuleRef(m);
    return s;
  }
  struct SessionOptions {
    int32_t context_length = 0;
    int32_t num_threads = 0;
    std::string plugin_name;
    bool keep_prompt_logits = false;
  };
  Status NewSession(const ModuleRef &module, const SessionOptions &o,
                    SessionRef *out) {
    gemmac_session_options so{};
    so.struct_size = sizeof(so);
    so.context_length = o.context_length;
    so.num_threads = o.num_threads;
    so.plugin_name = o.plugin_name.empty() ? nullptr : o.plugin_name.c_str();
    so.batch_size = 1;
    so.keep_prompt_logits = o.keep_prompt_logits;
    gemmac_session *s = nullptr;
    Status st(gemmac_session_create(p_, module.get(), &so, &s));
    *out = SessionRef(s);
    return st;
  }
  // What a session of `o` on `module` would allocate, before creating it.
  static Status SessionMemory(const ModuleRef &module, const SessionOptions &o,
                              gemmac_session_memory *out) {
    gemmac_session_options so{};
    so.struct_size = sizeof(so);
    so.context_length = o.context_length;
    so.batch_size = 1;
    out->struct_size = sizeof(*out);
    return Status(gemmac_module_session_memory(module.get(), &so, out));
  }
  // The device a session on `plugin_name` ("" = the first) would use.
  Status DeviceInfo(const std::string &plugin_name, gemmac_device_info *out) {
    out->struct_size = sizeof(*out);
    return Status(gemmac_runtime_device_info(
        p_, plugin_name.empty() ? nullptr : plugin_name.c_str(), out));
  }
};

} // namespace api
} // namespace gemmac

#endif // GEMMAC_RUNTIME_HPP_
