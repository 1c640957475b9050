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
 * the call. Weights point straight into the mapped module file (read-only),
 * or, when the plugin has map_weights() (ABI 1.6), at what it returned.
 *
 * Order of work (ABI 1.6): without streams every call is synchronous. A
 * plugin with streams may enqueue a launch (or a copy) given a stream and
 * return before it ran; work on one stream runs in order, and the caller
 * synchronizes (synchronize_stream, or an event) before the host or another
 * plugin touches what the work wrote. The gemmac_tensor and exec_context
 * structs themselves may be reused as soon as the call returns: a plugin that
 * defers work copies what it needs.
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
#define GEMMAC_PLUGIN_ABI_MINOR 6

#if defined(_WIN32)
#define GEMMAC_PLUGIN_EXPORT __declspec(dllexport)
#else
#define GEMMAC_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/* Element types. Values equal gemmac.schema.DType.
 *
 * The quantized weight types are block formats over a logical [rows, cols]
 * matrix (rows = output features, cols = input features); docs/quantization.md
 * is the full specification. Little-endian; f16 is IEEE half.
 *   Q8C:    int8 q[rows][cols], then f32 scale[rows];  w = q * scale[row].
 *   Q4G32:  per row, cols/32 blocks of 18 bytes: f16 d, u8 qs[16];
 *           element j of a block is (j < 16 ? qs[j] & 15 : qs[j-16] >> 4),
 *           w = (nibble - 8) * d.  (The GGUF Q4_0 block.)
 *   Q4G128: per row, cols/128 blocks of 68 bytes: f16 d, f16 m, u8 qs[64];
 *           element j is (j < 64 ? qs[j] & 15 : qs[j-64] >> 4),
 *           w = nibble * d + m.
 *   Q4G32R8 (ABI 1.2): Q4G32's values and blocks, packed for kernels that
 *           compute 8 output rows at once; rows % 8 == 0. For each group of
 *           8 rows, for each 32-column block b, 144 bytes: the 8 rows' f16
 *           d (16 bytes), then the 8 rows' u8 qs[16] (128 bytes), rows in
 *           order. Byte offset of row r's block b: group g = r / 8, i = r % 8,
 *           run = (g * cols/32 + b) * 144; d at run + 2 * i, qs at
 *           run + 16 + 16 * i. Same size as Q4G32.
 *   I8:     KV cache only: int8 values with f32 scales (gemmac_kv_cache). */
typedef enum gemmac_dtype {
  GEMMAC_DTYPE_F32 = 0,
  GEMMAC_DTYPE_BF16 = 1,
  GEMMAC_DTYPE_F16 = 2,
  GEMMAC_DTYPE_I32 = 3,
  GEMMAC_DTYPE_I8 = 4,
  GEMMAC_DTYPE_Q8C = 5,
  GEMMAC_DTYPE_Q4G32 = 6,
  GEMMAC_DTYPE_Q4G128 = 7,
  GEMMAC_DTYPE_Q4G32R8 = 8, /* ABI 1.2 */
  GEMMAC_DTYPE_COUNT_ = 9,
} gemmac_dtype;

/* Bytes of a [rows, cols] weight of `dtype`, or -1 when `cols` does not fit
 * the format's group size, `rows` its row group (Q4G32R8: 8), or the dtype is
 * not a weight type. */
static inline int64_t gemmac_weight_bytes(int32_t dtype, int64_t rows,
                                          int64_t cols) {
  switch (dtype) {
  case GEMMAC_DTYPE_F32:
    return rows * cols * 4;
  case GEMMAC_DTYPE_BF16:
  case GEMMAC_DTYPE_F16:
    return rows * cols * 2;
  case GEMMAC_DTYPE_Q8C:
    return rows * cols + rows * 4;
  case GEMMAC_DTYPE_Q4G32:
    return cols % 32 ? -1 : rows * (cols / 32) * 18;
  case GEMMAC_DTYPE_Q4G128:
    return cols % 128 ? -1 : rows * (cols / 128) * 68;
  case GEMMAC_DTYPE_Q4G32R8:
    return (cols % 32 || rows % 8) ? -1 : rows * (cols / 32) * 18;
  default:
    return -1;
  }
}

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
  /* Fused ops (ABI 1.1). */
  GEMMAC_OP_ADD_RMS_NORM = 11,
  GEMMAC_OP_QKV_PROJ = 12,
  GEMMAC_OP_GATED_MLP = 13,
  GEMMAC_OP_FINAL_HEAD = 14,
  GEMMAC_OP_COUNT_ = 15,
} gemmac_op;

/* An optional input an instruction leaves out: its dtype in gemmac_op_desc is
 * GEMMAC_DTYPE_NONE and its gemmac_tensor has data == NULL and rank 0. */
#define GEMMAC_DTYPE_NONE (-1)

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
 * than the context). With dtype I8 (ABI 1.1), k_scale and v_scale are f32
 * [capacity, num_kv_heads]: value = int8 * scale, one scale per position and
 * KV head (symmetric, scale = max|x| / 127); they are NULL for F32.
 * gemmac_exec_context passes these as an array that a plugin indexes with its
 * own sizeof, so unlike the other structs this one cannot grow: its layout is
 * frozen at ABI 1.1 for the 1.x series (a new per-layer field would come as a
 * parallel array in gemmac_exec_context). */
typedef struct gemmac_kv_cache {
  size_t struct_size;
  void* k;
  void* v;
  int32_t dtype; /* gemmac_dtype: F32 or I8 */
  int32_t capacity;
  int32_t num_kv_heads;
  int32_t head_dim;
  /* ABI 1.1 */
  float* k_scale;
  float* v_scale;
} gemmac_kv_cache;

typedef struct gemmac_stream gemmac_stream; /* an in-order work queue (1.6) */
typedef struct gemmac_event gemmac_event;   /* a point in a stream (1.6) */

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
  /* ABI 1.6: the stream to enqueue on (NULL: run before returning). Only set
   * for a plugin that has streams; see "Order of work" above. */
  gemmac_stream* stream;
} gemmac_exec_context;

/* ABI 1.6: the direction of copy(). "Device" memory is what alloc() or
 * map_weights() returned; "host" memory is ordinary process memory. */
typedef enum gemmac_copy_kind {
  GEMMAC_COPY_HOST_TO_DEVICE = 0,
  GEMMAC_COPY_DEVICE_TO_HOST = 1,
  GEMMAC_COPY_DEVICE_TO_DEVICE = 2,
} gemmac_copy_kind;

/* Options for create(). */
typedef struct gemmac_backend_options {
  size_t struct_size;
  int32_t num_threads; /* 0 = the plugin decides */
} gemmac_backend_options;

/* ABI 1.5: what a backend instance runs on (device_info). */
typedef enum gemmac_device_kind {
  GEMMAC_DEVICE_CPU = 0,
  GEMMAC_DEVICE_GPU = 1,
  GEMMAC_DEVICE_ACCELERATOR = 2, /* e.g. a TPU-style matrix-unit device */
} gemmac_device_kind;

/* Capability flags of gemmac_device_info. */
/* alloc() memory: the host can read and write it. A device without it (ABI
 * 1.6) must have copy(): the runtime then moves tokens in, logits out and
 * the activations at a CPU-fallback border with copy(), and never
 * dereferences device memory itself. A plugin without device_info is taken
 * to be host-addressable, as ABI 1.0-1.5 required. */
#define GEMMAC_DEVICE_HOST_ADDRESSABLE 0x1u
#define GEMMAC_DEVICE_GRAPH_MODE 0x2u       /* compile_graph is available */

typedef struct gemmac_device_info {
  size_t struct_size;
  int32_t kind;  /* gemmac_device_kind */
  uint32_t flags;
  /* The memory alloc() draws from, in bytes: all of it, and what a new
   * allocation can still get now (0 when unknown). The runtime computes what
   * a session needs (arena + KV caches) before it allocates, and refuses a
   * session that would not fit with a message instead of failing later. */
  uint64_t memory_bytes;
  uint64_t memory_available_bytes;
  char name[128]; /* e.g. "AMD EPYC", "NVIDIA H200" */
} gemmac_device_info;

typedef struct gemmac_backend gemmac_backend; /* one instance on one device */
typedef struct gemmac_kernel gemmac_kernel;   /* a prepared instruction */
typedef struct gemmac_graph gemmac_graph;     /* a compiled function (1.4) */

/* A token-count dimension in a shape: bound per call (exec_context.tokens). */
#define GEMMAC_TOKENS_DIM (-1)

/* ABI 1.4, graph mode: one instruction of a function. Its inputs and outputs
 * are operands[first_input, first_input + num_inputs) and
 * operands[first_output, first_output + num_outputs) of the graph. */
typedef struct gemmac_graph_node {
  size_t struct_size;
  gemmac_op_desc desc;
  uint32_t first_input;
  uint32_t num_inputs;
  uint32_t first_output;
  uint32_t num_outputs;
} gemmac_graph_node;

/* ABI 1.4, graph mode: a whole function (prefill or decode) for plugins that
 * want programs rather than kernels. Nodes run in order. Operands describe
 * every node's inputs and outputs, as launch() would get them: weights point
 * into the mapped module, activations into the session's arena, an absent
 * optional input is GEMMAC_DTYPE_NONE. The operands array stays valid, at the
 * same address, until release_graph(); its data pointers never change, and
 * during execute_graph() every GEMMAC_TOKENS_DIM dimension given at compile
 * time holds the call's token count. A plugin may compile a schedule per
 * bucket: every call has 1 <= tokens <= some bucket (buckets ascend, the last
 * is max_tokens). */
typedef struct gemmac_graph_desc {
  size_t struct_size;
  const char* name; /* "prefill", "decode" */
  uint32_t num_nodes;
  const gemmac_graph_node* nodes;
  uint32_t num_operands;
  const gemmac_tensor* operands;
  int64_t max_tokens;
  uint32_t num_buckets;
  const int64_t* buckets;
} gemmac_graph_desc;

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

  /* Memory for activations and KV caches. Host-addressable memory (host or
   * managed) lets instructions this plugin's supports() refuses run on the
   * CPU plugin in the same arena and caches; otherwise (ABI 1.6, see
   * GEMMAC_DEVICE_HOST_ADDRESSABLE) the runtime copies at the borders. */
  void* (*alloc)(gemmac_backend* backend, size_t bytes, size_t alignment);
  void (*free)(gemmac_backend* backend, void* ptr);

  /* ABI 1.3 (may be NULL): one line on the device this backend instance runs
   * on, e.g. the CPU's instruction-set level ("avx512 [...]"), for tools and
   * logs. The string stays valid until destroy(). */
  const char* (*describe)(gemmac_backend* backend);

  /* ABI 1.4 (all three NULL for a kernel-only plugin): graph mode. The
   * runtime offers each function to compile_graph() at session creation;
   * GEMMAC_PLUGIN_UNSUPPORTED (with a message) makes it use prepare/launch
   * per instruction instead, any other failure is an error. execute_graph()
   * runs the whole function for one call. */
  int32_t (*compile_graph)(gemmac_backend* backend,
                           const gemmac_graph_desc* desc, gemmac_graph** out,
                           gemmac_plugin_error* error);
  int32_t (*execute_graph)(gemmac_backend* backend, gemmac_graph* graph,
                           const gemmac_exec_context* context,
                           gemmac_plugin_error* error);
  void (*release_graph)(gemmac_backend* backend, gemmac_graph* graph);

  /* ABI 1.5 (may be NULL): fills the caller's info (at most its struct_size
   * bytes) about the device this instance runs on. */
  int32_t (*device_info)(gemmac_backend* backend, gemmac_device_info* info,
                         gemmac_plugin_error* error);

  /* ABI 1.6 (all NULL or all set): streams and events. A stream runs its
   * work in order; synchronize_stream() waits for all of it and returns the
   * first error a deferred launch or copy met. record_event() marks the
   * stream's current end; wait_event() makes a stream wait for it (on the
   * device, the host goes on); synchronize_event() makes the host wait. */
  int32_t (*create_stream)(gemmac_backend* backend, gemmac_stream** out,
                           gemmac_plugin_error* error);
  void (*destroy_stream)(gemmac_backend* backend, gemmac_stream* stream);
  int32_t (*synchronize_stream)(gemmac_backend* backend,
                                gemmac_stream* stream,
                                gemmac_plugin_error* error);
  int32_t (*create_event)(gemmac_backend* backend, gemmac_event** out,
                          gemmac_plugin_error* error);
  void (*destroy_event)(gemmac_backend* backend, gemmac_event* event);
  int32_t (*record_event)(gemmac_backend* backend, gemmac_event* event,
                          gemmac_stream* stream, gemmac_plugin_error* error);
  int32_t (*wait_event)(gemmac_backend* backend, gemmac_stream* stream,
                        gemmac_event* event, gemmac_plugin_error* error);
  int32_t (*synchronize_event)(gemmac_backend* backend, gemmac_event* event,
                               gemmac_plugin_error* error);

  /* ABI 1.6 (may be NULL; required without GEMMAC_DEVICE_HOST_ADDRESSABLE):
   * copies bytes (kind: gemmac_copy_kind). With a stream it may be enqueued:
   * a host buffer then stays untouched until the stream is synchronized.
   * With NULL it is done when copy() returns. */
  int32_t (*copy)(gemmac_backend* backend, void* dst, const void* src,
                  size_t bytes, int32_t kind, gemmac_stream* stream,
                  gemmac_plugin_error* error);

  /* ABI 1.6 (both NULL or both set): weights. The runtime maps each weight
   * segment of a module once: host is page-aligned, read-only, and stays
   * mapped until unmap_weights(). *device gets the address kernels read the
   * segment at: host itself where the device reads host memory (zero-copy:
   * set *zero_copy to 1), or device memory the plugin filled once (0).
   * Launches then get weight tensors inside [*device, *device + bytes). */
  int32_t (*map_weights)(gemmac_backend* backend, const void* host,
                         size_t bytes, void** device, int32_t* zero_copy,
                         gemmac_plugin_error* error);
  void (*unmap_weights)(gemmac_backend* backend, void* device);
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
