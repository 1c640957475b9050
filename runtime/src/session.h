// A session: one conversation with one module on one backend.
//
// Owns everything a sequence needs, allocated at creation so that the token
// loop allocates nothing: the backend instance, the activation arena, the KV
// cache, the prepared prefill and decode programs, and the token history.
// Appending text or tokens prefills them (in chunks of at most prefill's
// max_tokens; single tokens go through decode); Generate samples, streams
// text through a callback and stops on a stop id, a stop string, max tokens,
// the callback, or Cancel() from another thread. The C API (c_api.cc) is a
// thin layer over this class.
//
// Batch: the module's functions process one sequence; a later version will
// bind a batch dimension and hold one KV cache slice per sequence. The C API
// already carries batch_size (1 for now).
#ifndef GEMMAC_RUNTIME_SESSION_H_
#define GEMMAC_RUNTIME_SESSION_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv_cache.h"
#include "module.h"
#include "plugin_registry.h"
#include "text/chat_format.h"
#include "text/sampler.h"
#include "text/tokenizer.h"
#include "vm.h"

namespace gemmac {

struct SessionOptions {
  // 0: min(model max_context, 4096).
  int64_t context_length = 0;
  int32_t num_threads = 0; // 0: the backend decides
  std::string plugin;      // empty: the registry's first plugin
  // Keep the logits of every appended position (tests, --dump-logits).
  // Refused (FAILED_PRECONDITION) for a module whose prefill returns only
  // the last position's logits (gemma-compile --prefill-logits=last).
  bool keep_prompt_logits = false;
};

struct GenerateOptions {
  text::SamplingParams sampling;
  int32_t max_tokens = 128;
  std::vector<std::string> stop_strings;
};

enum class StopReason {
  kNone = 0,
  kStopToken = 1,
  kMaxTokens = 2,
  kStopString = 3,
  kCallback = 4,
};

struct SessionStats {
  int64_t prompt_tokens = 0; // prefilled through Append*
  double prefill_seconds = 0;
  int64_t decode_tokens = 0; // run through decode by Generate
  double decode_seconds = 0;
  int64_t generated_tokens = 0;   // sampled by the last Generate
  double time_to_first_token = 0; // last Generate: its prefill + first sample
  uint64_t arena_bytes = 0;
  uint64_t kv_bytes = 0;
  uint64_t weights_bytes = 0;
  int64_t context_length = 0;
  int64_t position = 0; // tokens in the sequence, including a pending one
};

class Session {
public:
  // token: the sampled id (-1 for text flushed at the end); text: the text
  // that became final with it (may be empty). Return false to stop.
  using TokenCallback = std::function<bool(int32_t token, std::string_view)>;

  static Status Create(std::shared_ptr<const Module> module,
                       const PluginRegistry &plugins,
                       const SessionOptions &options,
                       std::unique_ptr<Session> *out);
  ~Session();

  // What a session of `context_length` tokens (0: the default) on `module`
  // will allocate on its device, computed without creating one, so that a
  // caller can print or check it first; Create refuses with the same
  // figures. Fails as Create does for a context above max_context.
  struct Memory {
    int64_t context_length = 0; // resolved: 0 becomes the default
    uint64_t arena_bytes = 0;
    uint64_t kv_bytes = 0;
  };
  static Status MemoryNeeded(const Module &module, int64_t context_length,
                             Memory *out);

  Status AppendTokens(const int32_t *ids, size_t count);
  // Encodes with the module's tokenizer (no BOS) and appends.
  Status AppendText(std::string_view text);
  // Renders `messages` with the module's chat format and appends them. On
  // an empty session the rendering starts with BOS; otherwise the messages
  // continue the conversation (the previous model turn is closed first), so
  // only the new turn is prefilled.
  Status AppendChat(const std::vector<text::ChatMessage> &messages,
                    bool add_generation_prompt);
  Status Generate(const GenerateOptions &options, const TokenCallback &callback,
                  StopReason *reason);

  // Thread-safe. Stops the running call (or, when idle, the next call)
  // with kCancelled; every call clears the request when it returns.
  void Cancel();
  void Reset();

  Status Tokenize(std::string_view text, bool add_bos,
                  std::vector<int32_t> *ids) const;
  Status Detokenize(const std::vector<int32_t> &ids, std::string *text) const;

  // The logits row of the last token run, or nullptr before the first.
  const float *last_logits() const { return last_logits_; }
  int64_t logits_cols() const { return logits_cols_; }
  // True when prefill returns only the last position's logits.
  bool last_position_logits_only() const {
    return prefill_->last_position_only();
  }
  const std::vector<float> &prompt_logits() const { return prompt_logits_; }
  const std::vector<int32_t> &tokens() const { return tokens_; }
  SessionStats stats() const;
  const Module &module() const { return *module_; }
  const std::string &backend_name() const { return backend_->name(); }
  const std::string &backend_description() const { return description_; }
  // Which instructions run on the fallback CPU plugin because the session's
  // backend refuses them, e.g. "cpu runs attention x4, final_head x2";
  // "" when the session's backend runs everything.
  const std::string &fallback_summary() const { return fallback_summary_; }
  // Which functions the backend runs as compiled graphs (ABI 1.4), e.g.
  // "graphs: prefill, decode"; a function it declined is listed with its
  // reason. "" for a kernel plugin.
  const std::string &graph_summary() const { return graph_summary_; }

private:
  Session() = default;
  Status Run(FunctionProgram *fn, const int32_t *ids, int64_t n);
  // Feeds a sampled-but-not-yet-run token through decode.
  Status FlushPending();
  Status CheckRoom(size_t more) const;
  Status Finish(Status s);
  bool cancelled() const { return __atomic_load_n(&cancel_, __ATOMIC_ACQUIRE); }

  std::shared_ptr<const Module> module_;
  std::unique_ptr<Backend> backend_;
  std::string description_; // the plugin's describe(), read at creation
  // The CPU plugin's instance for refused instructions; created only when
  // one is refused.
  std::unique_ptr<Backend> fallback_;
  std::string fallback_summary_;
  std::string graph_summary_;
  void *arena_ = nullptr;
  uint64_t arena_bytes_ = 0;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<WeightMap> weights_;
  std::unique_ptr<Stream> stream_; // ABI 1.6, when the backend has streams
  std::unique_ptr<FunctionProgram> prefill_, decode_;
  std::unique_ptr<text::StreamDecoder> decoder_;
  std::optional<text::Sampler> sampler_;

  int64_t context_length_ = 0;
  int64_t logits_cols_ = 0;
  int64_t sample_cols_ = 0; // min(logits cols, tokenizer vocab)
  bool keep_prompt_logits_ = false;
  std::vector<int32_t> tokens_; // the sequence; the last may be pending
  int64_t position_ = 0;        // tokens in the KV cache
  bool pending_ = false;        // tokens_.back() is sampled, not yet run
  const float *last_logits_ = nullptr;
  std::vector<float> prompt_logits_;
  std::string held_; // generated text withheld while it may start a stop string
  SessionStats stats_;
  double prefill_since_generate_ = 0;
  volatile int32_t cancel_ = 0;
};

} // namespace gemmac

#endif // GEMMAC_RUNTIME_SESSION_H_
