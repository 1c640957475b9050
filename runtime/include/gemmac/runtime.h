/* gemmac runtime: the C API for embedding Gemma models.
 *
 * An application loads a compiled module (.gmc, made by gemma-compile), opens
 * a session on a backend plugin and generates text. Typical use:
 *
 *   gemmac_runtime* rt;   gemmac_runtime_create(NULL, &rt);
 *   gemmac_module* m;     gemmac_module_load(rt, "model.gmc", &m);
 *   gemmac_session* s;    gemmac_session_create(rt, m, NULL, &s);
 *   gemmac_session_append_text(s, "Hello", 5);
 *   gemmac_session_generate(s, NULL, 64, on_token, user_data);
 *   gemmac_session_release(s); gemmac_module_release(m);
 *   gemmac_runtime_release(rt);
 *
 * Conventions (IREE-style):
 * - Every fallible call returns gemmac_status*: NULL means success; otherwise
 *   the caller owns the status and frees it with gemmac_status_free.
 * - Objects are opaque and reference counted. Each _create/_load gives the
 *   caller one reference, dropped with the matching _release. Objects keep
 *   what they use alive: a session holds its module and runtime, a module
 *   its runtime, so releasing in any order is safe.
 * - Memory the runtime allocates for the caller (token arrays, strings) is
 *   freed with gemmac_free.
 * - Every struct passed in starts with struct_size = sizeof(struct); fields
 *   are only ever appended, so older callers keep working. A NULL options
 *   pointer means the defaults.
 * - Thread safety: a runtime and a module may be shared between threads; a
 *   session is used by one thread at a time, except gemmac_session_cancel,
 *   which any thread may call at any time.
 */
#ifndef GEMMAC_RUNTIME_H_
#define GEMMAC_RUNTIME_H_

#include <stddef.h>
#include <stdint.h>

#include "gemmac/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define GEMMAC_API __declspec(dllexport)
#else
#define GEMMAC_API __attribute__((visibility("default")))
#endif

/* ---- status ------------------------------------------------------------ */

typedef enum gemmac_status_code {
  GEMMAC_STATUS_OK = 0,
  GEMMAC_STATUS_INVALID_ARGUMENT = 1,
  GEMMAC_STATUS_NOT_FOUND = 2,
  GEMMAC_STATUS_DATA_LOSS = 3,     /* corrupt, truncated, inconsistent file */
  GEMMAC_STATUS_UNIMPLEMENTED = 4, /* unknown version, op, dtype, ABI */
  GEMMAC_STATUS_RESOURCE_EXHAUSTED = 5, /* memory, context full */
  GEMMAC_STATUS_FAILED_PRECONDITION = 6,
  GEMMAC_STATUS_CANCELLED = 7,
  GEMMAC_STATUS_INTERNAL = 8,
} gemmac_status_code;

typedef struct gemmac_status gemmac_status;

/* GEMMAC_STATUS_OK for NULL. */
GEMMAC_API gemmac_status_code
gemmac_status_code_of(const gemmac_status *status);
/* "" for NULL. The string lives as long as the status. */
GEMMAC_API const char *gemmac_status_message(const gemmac_status *status);
/* Frees a status; NULL is a no-op. */
GEMMAC_API void gemmac_status_free(gemmac_status *status);

/* Frees memory the runtime allocated for the caller; NULL is a no-op. */
GEMMAC_API void gemmac_free(void *ptr);

/* ---- runtime: the plugin registry -------------------------------------- */

typedef struct gemmac_runtime gemmac_runtime;

typedef struct gemmac_runtime_options {
  size_t struct_size;
  /* Plugin shared libraries to load; a failure to load one is an error. */
  const char *const *plugin_paths;
  size_t num_plugin_paths;
  /* Non-zero: also load every libgemmac_*.so in the directories of
   * GEMMAC_PLUGIN_PATH (colon-separated) and then in the directory of
   * libgemmac_runtime.so. Plugins found this way that fail to load are
   * skipped (see gemmac_runtime_plugin_warning). Default 1. */
  int32_t search_plugins;
  /* Default thread count for sessions; 0 = the backend decides. */
  int32_t num_threads;
} gemmac_runtime_options;

/* On success *out holds a new runtime (one reference). */
GEMMAC_API gemmac_status *
gemmac_runtime_create(const gemmac_runtime_options *options,
                      gemmac_runtime **out);
/* Drops the caller's reference; NULL is a no-op. */
GEMMAC_API void gemmac_runtime_release(gemmac_runtime *runtime);

/* Registers a plugin linked into the program (no dlopen): `entry` is its
 * gemmac_plugin_entry function. `origin` only names it in messages. */
GEMMAC_API gemmac_status *gemmac_runtime_register_plugin(
    gemmac_runtime *runtime, gemmac_plugin_entry_fn entry, const char *origin);
/* dlopens one plugin library and registers it. */
GEMMAC_API gemmac_status *gemmac_runtime_load_plugin(gemmac_runtime *runtime,
                                                     const char *path);
/* Registered plugins, in registration order; sessions take the first unless
 * told otherwise. Names live as long as the runtime. */
GEMMAC_API size_t gemmac_runtime_plugin_count(const gemmac_runtime *runtime);
GEMMAC_API const char *gemmac_runtime_plugin_name(const gemmac_runtime *runtime,
                                                  size_t index);
/* Why a plugin found by the search was skipped; NULL past the end. */
GEMMAC_API const char *
gemmac_runtime_plugin_warning(const gemmac_runtime *runtime, size_t index);

/* ---- module ------------------------------------------------------------ */

typedef struct gemmac_module gemmac_module;

/* Maps and verifies `path` (header, FlatBuffers Verifier, semantic checks)
 * and loads its tokenizer. On success *out holds a new module (one
 * reference). Weights stay in the mapping; nothing is copied. */
GEMMAC_API gemmac_status *gemmac_module_load(gemmac_runtime *runtime,
                                             const char *path,
                                             gemmac_module **out);
GEMMAC_API void gemmac_module_release(gemmac_module *module);
/* Checks every weight segment's FNV-1a-64 checksum (reads all weights). */
GEMMAC_API gemmac_status *
gemmac_module_verify_checksums(const gemmac_module *module);

typedef struct gemmac_module_info {
  size_t struct_size;
  uint32_t version_major, version_minor;
  const char *producer;     /* lives as long as the module */
  const char *architecture; /* e.g. "Gemma3ForCausalLM" */
  int32_t family;           /* 0 Gemma 1, 1 Gemma 2, 2 Gemma 3 */
  int32_t hidden_size, intermediate_size, num_layers;
  int32_t num_heads, num_kv_heads, head_dim;
  int32_t vocab_size;           /* embedding rows */
  int32_t tokenizer_vocab_size; /* pieces; logits have this many columns */
  int32_t max_context, sliding_window;
  int32_t bos_id, eos_id, pad_id, start_of_turn_id, end_of_turn_id;
  const int32_t *stop_ids; /* lives as long as the module */
  size_t num_stop_ids;
  size_t num_functions;
  int32_t prefill_max_tokens, decode_max_tokens;
  uint64_t weights_bytes;
  uint64_t parameter_count;
  /* Module format 1.1. The compiler's weight policy, e.g. "q4, embed=q8"
   * ("" when not recorded); lives as long as the module. */
  const char *quantization;
  /* 1 when prefill returns only the last position's logits (the module was
   * compiled with --prefill-logits=last): generation works, but the logits
   * of every prompt position (keep_prompt_logits) cannot be had. */
  int32_t prefill_last_logits_only;
} gemmac_module_info;

/* Fills the fields of *info that fit in info->struct_size. */
GEMMAC_API gemmac_status *gemmac_module_get_info(const gemmac_module *module,
                                                 gemmac_module_info *info);
/* Name of function `index` (< num_functions); NULL past the end. */
GEMMAC_API const char *gemmac_module_function_name(const gemmac_module *module,
                                                   size_t index);

/* ---- session ----------------------------------------------------------- */

typedef struct gemmac_session gemmac_session;

typedef struct gemmac_session_options {
  size_t struct_size;
  /* Tokens the KV cache holds; 0 = min(max_context, 4096). A length above
   * the model's max_context is refused with the bytes it would need. */
  int32_t context_length;
  int32_t num_threads;     /* 0 = the runtime's default */
  const char *plugin_name; /* NULL = the first registered plugin */
  /* Sequences decoded together. Only 1 is supported in this version; the
   * field exists so that batched sessions need no new entry point. */
  int32_t batch_size;
  /* Non-zero: keep the logits of every appended position (see
   * gemmac_session_prompt_logits). Costs positions * vocab floats. Refused
   * with FAILED_PRECONDITION for a module compiled with
   * --prefill-logits=last (gemmac_module_info.prefill_last_logits_only). */
  int32_t keep_prompt_logits;
} gemmac_session_options;

/* Creates a session: backend instance, arena, KV cache and prepared kernels
 * are allocated here, once. The session holds references to `runtime` and
 * `module`. */
GEMMAC_API gemmac_status *
gemmac_session_create(gemmac_runtime *runtime, gemmac_module *module,
                      const gemmac_session_options *options,
                      gemmac_session **out);

/* What gemmac_session_create with `options` would allocate on the device,
 * computed from the module alone (no plugin, no allocation), so that a
 * caller can print it or decide on a context length first. A session
 * refuses with RESOURCE_EXHAUSTED when arena + KV cache exceed the memory
 * its device reports available (gemmac_runtime_device_info). */
typedef struct gemmac_session_memory {
  size_t struct_size;
  /* The context the figures are for: options->context_length, or the
   * default when that is 0. */
  int64_t context_length;
  /* Activations: the larger of prefill's and decode's arena. */
  uint64_t arena_bytes;
  /* Every attention layer's K and V (and int8 scales): a sliding-window
   * layer holds a ring of window + largest prefill chunk rows, a global
   * layer the whole context. */
  uint64_t kv_cache_bytes;
} gemmac_session_memory;

/* Fills the fields of *out that fit in out->struct_size. options NULL =
 * the defaults. A context above the model's max_context is refused with
 * RESOURCE_EXHAUSTED, as gemmac_session_create refuses it. */
GEMMAC_API gemmac_status *
gemmac_module_session_memory(const gemmac_module *module,
                             const gemmac_session_options *options,
                             gemmac_session_memory *out);

/* The device a session on plugin `plugin_name` (NULL = the first
 * registered) would run on: kind, name, memory and memory available now.
 * Opens and closes one backend instance of the plugin to ask. Fails with
 * NOT_FOUND for an unknown plugin and UNIMPLEMENTED for one older than
 * ABI 1.5 (no device_info). Fills the fields that fit in
 * info->struct_size. */
GEMMAC_API gemmac_status *gemmac_runtime_device_info(gemmac_runtime *runtime,
                                                     const char *plugin_name,
                                                     gemmac_device_info *info);
GEMMAC_API void gemmac_session_release(gemmac_session *session);

/* Text -> ids with the module's tokenizer. *out_ids is allocated by the
 * runtime (free with gemmac_free); add_bos prepends the BOS id. */
GEMMAC_API gemmac_status *
gemmac_session_tokenize(gemmac_session *session, const char *text,
                        size_t text_len, int32_t add_bos, int32_t **out_ids,
                        size_t *out_count);
/* ids -> text (NUL-terminated, free with gemmac_free). */
GEMMAC_API gemmac_status *
gemmac_session_detokenize(gemmac_session *session, const int32_t *ids,
                          size_t count, char **out_text, size_t *out_len);

/* Interleaved inputs. Text and tokens today; image and audio embeddings
 * placed at token positions are planned as further kinds. */
typedef enum gemmac_input_kind {
  GEMMAC_INPUT_TEXT = 0,   /* text, text_len: encoded without BOS */
  GEMMAC_INPUT_TOKENS = 1, /* tokens, num_tokens */
} gemmac_input_kind;

typedef struct gemmac_input {
  size_t struct_size;
  int32_t kind; /* gemmac_input_kind */
  const char *text;
  size_t text_len;
  const int32_t *tokens;
  size_t num_tokens;
} gemmac_input;

/* Prefills the inputs in order (in chunks of at most the prefill function's
 * max_tokens). Fails with RESOURCE_EXHAUSTED when the context is full. */
GEMMAC_API gemmac_status *gemmac_session_append(gemmac_session *session,
                                                const gemmac_input *inputs,
                                                size_t num_inputs);
GEMMAC_API gemmac_status *gemmac_session_append_text(gemmac_session *session,
                                                     const char *text,
                                                     size_t text_len);
GEMMAC_API gemmac_status *gemmac_session_append_tokens(gemmac_session *session,
                                                       const int32_t *ids,
                                                       size_t count);

/* Chat helper: renders messages with the module's chat format (Gemma turn
 * markers) and prefills them. On an empty session the rendering starts with
 * BOS; on a non-empty one the messages continue the conversation (the last
 * model turn is closed first), so only the new turn is prefilled. Roles:
 * "system" (first only), "user", "model" or "assistant". */
typedef struct gemmac_chat_message {
  size_t struct_size;
  const char *role;
  const char *content;
} gemmac_chat_message;

GEMMAC_API gemmac_status *
gemmac_session_append_chat(gemmac_session *session,
                           const gemmac_chat_message *messages,
                           size_t num_messages, int32_t add_generation_prompt);

typedef struct gemmac_sampling_params {
  size_t struct_size;
  float temperature; /* <= 0: greedy. Default 1 */
  int32_t top_k;     /* 0: off */
  float top_p;       /* >= 1: off */
  uint64_t seed;
  /* Generation stops when the text contains one of these; the stop string
   * and anything after it are not delivered. */
  const char *const *stop_strings;
  size_t num_stop_strings;
} gemmac_sampling_params;

/* Called once per generated token with the text that token completed (may
 * be empty: a partial UTF-8 character, or text withheld because it may
 * begin a stop string), and once more with token -1 for text flushed at
 * the end. `text` is valid only during the call and is not NUL-terminated.
 * Return non-zero to stop generating. Stop tokens are not reported. */
typedef int32_t (*gemmac_token_callback)(void *user_data, int32_t token,
                                         const char *text, size_t text_len);

typedef enum gemmac_stop_reason {
  GEMMAC_STOP_NONE = 0,
  GEMMAC_STOP_TOKEN = 1, /* a stop id (end of turn, eos) */
  GEMMAC_STOP_MAX_TOKENS = 2,
  GEMMAC_STOP_STRING = 3,
  GEMMAC_STOP_CALLBACK = 4,
} gemmac_stop_reason;

/* Samples up to max_tokens tokens after what the session holds, streaming
 * each through `callback` (may be NULL). params NULL = defaults. Returns
 * CANCELLED after gemmac_session_cancel and RESOURCE_EXHAUSTED when the
 * context fills; tokens produced before either stay in the session. */
GEMMAC_API gemmac_status *gemmac_session_generate(
    gemmac_session *session, const gemmac_sampling_params *params,
    int32_t max_tokens, gemmac_token_callback callback, void *user_data);

/* Thread-safe: asks the running append/generate to stop with CANCELLED
 * (kernels see it too). When no call is running, the next call is
 * cancelled instead. Every call clears the request when it returns. */
GEMMAC_API void gemmac_session_cancel(gemmac_session *session);
/* Forgets the sequence (the KV cache is reused) and the statistics. */
GEMMAC_API void gemmac_session_reset(gemmac_session *session);

/* Every token of the sequence (prompt and generated, including a final
 * stop token). Valid until the next call on the session. */
GEMMAC_API const int32_t *gemmac_session_tokens(const gemmac_session *session,
                                                size_t *count);
/* The logits row of the last token run: *cols floats (the tokenizer's
 * vocabulary). NULL before anything ran. Valid until the next call. */
GEMMAC_API const float *
gemmac_session_last_logits(const gemmac_session *session, size_t *cols);
/* With keep_prompt_logits: [positions, cols] row-major logits of every
 * appended position. Valid until the next call. */
GEMMAC_API const float *
gemmac_session_prompt_logits(const gemmac_session *session, size_t *positions,
                             size_t *cols);

typedef struct gemmac_session_stats {
  size_t struct_size;
  int64_t prompt_tokens;
  double prefill_seconds;
  double prefill_tokens_per_second;
  int64_t decode_tokens;
  double decode_seconds;
  double decode_tokens_per_second;
  int64_t generated_tokens;   /* by the last generate */
  double time_to_first_token; /* last generate, its prefill included */
  int32_t stop_reason;        /* gemmac_stop_reason of the last generate */
  uint64_t arena_bytes;
  uint64_t kv_cache_bytes;
  uint64_t weights_bytes;
  int64_t context_length;
  int64_t position; /* tokens in the sequence */
} gemmac_session_stats;

GEMMAC_API gemmac_status *
gemmac_session_get_stats(const gemmac_session *session,
                         gemmac_session_stats *stats);
/* Name of the backend plugin the session runs on. */
GEMMAC_API const char *
gemmac_session_backend_name(const gemmac_session *session);
/* One line on the device the session's backend runs on, from plugins of ABI
 * 1.3 and later (e.g. "cpu avx512 [...], 2 threads"); "" when the plugin
 * gives none. Valid while the session lives. */
GEMMAC_API const char *
gemmac_session_backend_description(const gemmac_session *session);
/* The instructions that run on the CPU plugin because the session's backend
 * does not support them (its supports() refused the op with those dtypes),
 * counted by op: e.g. "cpu runs attention x4, final_head x2". "" when the
 * session's backend runs every instruction. Valid while the session lives. */
GEMMAC_API const char *
gemmac_session_fallback_summary(const gemmac_session *session);
/* Which functions a graph-mode plugin (ABI 1.4) runs as compiled graphs,
 * e.g. "graphs: prefill, decode", with the reason for any it declined
 * ("graphs: decode; prefill declined: ..."); "" for a kernel plugin. Valid
 * while the session lives. */
GEMMAC_API const char *
gemmac_session_graph_summary(const gemmac_session *session);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GEMMAC_RUNTIME_H_ */
