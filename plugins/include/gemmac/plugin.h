/* gemmac backend plugin ABI.
 *
 * A backend plugin is a shared library (or a statically linked object) that
 * exports one C function, gemmac_plugin_entry, which fills a table of function
 * pointers. The runtime's VM calls those to prepare and launch the kernels of
 * a module's instruction list. Backends see only this header: no runtime
 * internals, no FlatBuffers, no C++.
 *
 * Stability rules (PJRT-style): every struct passed across the boundary starts
 * with its size in bytes and only ever grows at the end; a caller sets
 * struct_size to sizeof() of the version it was compiled against, and a callee
 * reads only the fields that fit. A plugin refuses a major version it was not
 * built for; minor versions only append.
 *
 * Memory: tensors handed to launch() are described by gemmac_tensor; the
 * memory they point at belongs to the caller (the runtime) for the duration of
 * the call. Weights point straight into the mapped module file (read-only).
 *
 * Plain C11; depends on nothing but the C standard library.
 */
#ifndef GEMMAC_PLUGIN_H_
#define GEMMAC_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GEMMAC_PLUGIN_ABI_MAJOR 1
#define GEMMAC_PLUGIN_ABI_MINOR 0

#if defined(_WIN32)
#define GEMMAC_PLUGIN_EXPORT __declspec(dllexport)
#else
#define GEMMAC_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/* Element types. Values equal gemmac.schema.DType. */
typedef enum gemmac_dtype {
  GEMMAC_DTYPE_F32 = 0,
  GEMMAC_DTYPE_BF16 = 1,
  GEMMAC_DTYPE_F16 = 2,
  GEMMAC_DTYPE_I32 = 3,
} gemmac_dtype;

/* The op set. Values equal gemmac.schema.OpCode; semantics in docs/ops.md. */
typedef enum gemmac_op {
  GEMMAC_OP_EMBED = 0,
  GEMMAC_OP_RMS_NORM = 1,
  GEMMAC_OP_LINEAR = 2,
  GEMMAC_OP_ROPE = 3,
  GEMMAC_OP_ATTENTION = 4,
  GEMMAC_OP_GELU_TANH = 5,
  GEMMAC_OP_MUL = 6,
  GEMMAC_OP_ADD = 7,
  GEMMAC_OP_SOFTCAP = 8,
  GEMMAC_OP_SCALE = 9,
  GEMMAC_OP_LM_HEAD = 10,
  GEMMAC_OP_COUNT_ = 11,
} gemmac_op;

/* Return codes of every fallible call. */
typedef enum gemmac_plugin_code {
  GEMMAC_PLUGIN_OK = 0,
  GEMMAC_PLUGIN_INVALID_ARGUMENT = 1,
  GEMMAC_PLUGIN_UNSUPPORTED = 2,
  GEMMAC_PLUGIN_OUT_OF_MEMORY = 3,
  GEMMAC_PLUGIN_INTERNAL = 4,
  GEMMAC_PLUGIN_CANCELLED = 5,
} gemmac_plugin_code;

/* Filled by a plugin when a call fails; the caller owns the storage. */
typedef struct gemmac_plugin_error {
  size_t struct_size;
  char message[512];
} gemmac_plugin_error;

#define GEMMAC_MAX_RANK 4

/* A dense, row-major, contiguous tensor. data is owned by the caller. */
typedef struct gemmac_tensor {
  size_t struct_size;
  void* data;
  int32_t dtype; /* gemmac_dtype */
  int32_t rank;
  int64_t shape[GEMMAC_MAX_RANK];
} gemmac_tensor;

/* Attributes of one op (see docs/ops.md for which op reads which field). */
typedef struct gemmac_op_attrs {
  size_t struct_size;
  float scale;
  float eps;
  float offset;
  float theta;
  float rope_scale;
  float softcap;
  int32_t head_dim;
  int32_t num_heads;
  int32_t num_kv_heads;
  int32_t window;
  int32_t layer;
  int32_t rows;
} gemmac_op_attrs;

/* What prepare() and supports() are asked about: an op with its attributes and
 * the dtypes of its inputs and outputs (shapes are bound only at launch). */
typedef struct gemmac_op_desc {
  size_t struct_size;
  int32_t op; /* gemmac_op */
  gemmac_op_attrs attrs;
  uint32_t num_inputs;
  const int32_t* input_dtypes;
  uint32_t num_outputs;
  const int32_t* output_dtypes;
} gemmac_op_desc;

/* The KV cache of one attention layer, allocated by the runtime with the
 * plugin's alloc(). Layout: k and v are [capacity, num_kv_heads, head_dim] in
 * dtype; position p lives in row p % capacity (a ring when capacity is smaller
 * than the context). */
typedef struct gemmac_kv_cache {
  size_t struct_size;
  void* k;
  void* v;
  int32_t dtype; /* gemmac_dtype */
  int32_t capacity;
  int32_t num_kv_heads;
  int32_t head_dim;
} gemmac_kv_cache;

/* Per-call state the VM passes to every launch of one function call. */
typedef struct gemmac_exec_context {
  size_t struct_size;
  /* Position of the first token of this call (tokens already in the cache). */
  int64_t past;
  /* Number of tokens in this call (the bound symbolic dim). */
  int64_t tokens;
  /* KV caches indexed by gemmac_op_attrs.layer. */
  const gemmac_kv_cache* kv;
  uint32_t num_kv;
  /* Set from another thread to ask the kernel to stop early (optional). */
  const volatile int32_t* cancel;
} gemmac_exec_context;

/* Options for create(). */
typedef struct gemmac_backend_options {
  size_t struct_size;
  int32_t num_threads; /* 0 = the plugin decides */
} gemmac_backend_options;

typedef struct gemmac_backend gemmac_backend; /* one instance on one device */
typedef struct gemmac_kernel gemmac_kernel;   /* a prepared instruction */

typedef struct gemmac_plugin_api {
  size_t struct_size;
  uint32_t abi_major;
  uint32_t abi_minor;
  const char* name;    /* e.g. "cpu" */
  const char* version; /* the plugin's own version string */

  int32_t (*create)(const gemmac_backend_options* options,
                    gemmac_backend** out, gemmac_plugin_error* error);
  void (*destroy)(gemmac_backend* backend);

  /* Non-zero when the backend can run this op with these dtypes. */
  int32_t (*supports)(gemmac_backend* backend, const gemmac_op_desc* desc);

  /* Called once per instruction at load time; launch() is the hot path. */
  int32_t (*prepare)(gemmac_backend* backend, const gemmac_op_desc* desc,
                     gemmac_kernel** out, gemmac_plugin_error* error);
  void (*release)(gemmac_backend* backend, gemmac_kernel* kernel);

  int32_t (*launch)(gemmac_backend* backend, gemmac_kernel* kernel,
                    const gemmac_tensor* inputs, uint32_t num_inputs,
                    const gemmac_tensor* outputs, uint32_t num_outputs,
                    const gemmac_exec_context* context,
                    gemmac_plugin_error* error);

  /* Device memory for activations and KV caches. */
  void* (*alloc)(gemmac_backend* backend, size_t bytes, size_t alignment);
  void (*free)(gemmac_backend* backend, void* ptr);
} gemmac_plugin_api;

/* The one exported symbol of a plugin shared library. The runtime passes the
 * ABI major version it speaks and the size of its gemmac_plugin_api; the
 * plugin fills at most api_size bytes of *api (setting api->struct_size to
 * what it filled) and returns GEMMAC_PLUGIN_UNSUPPORTED when the major
 * version differs from its own. */
typedef int32_t (*gemmac_plugin_entry_fn)(uint32_t abi_major,
                                          gemmac_plugin_api* api,
                                          size_t api_size);

#define GEMMAC_PLUGIN_ENTRY_SYMBOL "gemmac_plugin_entry"

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GEMMAC_PLUGIN_H_ */
