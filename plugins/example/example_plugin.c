/* "example": a small, real gemmac backend plugin, built out of tree against
 * the installed gemmac package (plugins/example/CMakeLists.txt). It runs the
 * element-wise and norm ops of docs/ops.md and `linear` with f32 weights,
 * exactly as the reference kernels define them (f32 values, f64 sums), in
 * plain single-threaded C11. supports() refuses every other op and dtype,
 * and the runtime runs those on the CPU plugin. docs/plugin-guide.md walks
 * through it; start a new plugin from plugins/sdk/template instead. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemmac/plugin.h"

struct gemmac_backend {
  int32_t unused;
};

/* A prepared instruction: the op and the attributes it reads. */
struct gemmac_kernel {
  int32_t op;
  gemmac_op_attrs attrs;
};

/* The fields of a caller's struct that this plugin reads must fit in the
 * struct_size it was given (older callers pass smaller structs). */
#define FITS(ptr, type, field)                                                 \
  ((ptr)->struct_size >= offsetof(type, field) + sizeof((ptr)->field))

static int32_t fail(gemmac_plugin_error *error, int32_t code, const char *fmt,
                    ...) {
  const size_t at = offsetof(gemmac_plugin_error, message);
  if (error == NULL || error->struct_size <= at)
    return code;
  size_t cap = error->struct_size - at;
  if (cap > sizeof(error->message))
    cap = sizeof(error->message);
  va_list args;
  va_start(args, fmt);
  vsnprintf(error->message, cap, fmt, args);
  va_end(args);
  return code;
}

static const char *op_name(int32_t op) {
  switch (op) {
  case GEMMAC_OP_RMS_NORM:
    return "rms_norm";
  case GEMMAC_OP_LINEAR:
    return "linear";
  case GEMMAC_OP_GELU_TANH:
    return "gelu_tanh";
  case GEMMAC_OP_MUL:
    return "mul";
  case GEMMAC_OP_ADD:
    return "add";
  case GEMMAC_OP_SOFTCAP:
    return "softcap";
  case GEMMAC_OP_SCALE:
    return "scale";
  case GEMMAC_OP_ADD_RMS_NORM:
    return "add_rms_norm";
  default:
    return "op";
  }
}

/* The ops this plugin runs and their operand counts; every operand is f32
 * (activations, norm weights, and linear's weight). 0 for any other op. */
static int signature(int32_t op, uint32_t *num_inputs, uint32_t *num_outputs) {
  switch (op) {
  case GEMMAC_OP_GELU_TANH:
  case GEMMAC_OP_SOFTCAP:
  case GEMMAC_OP_SCALE:
    *num_inputs = 1;
    *num_outputs = 1;
    return 1;
  case GEMMAC_OP_ADD:
  case GEMMAC_OP_MUL:
  case GEMMAC_OP_RMS_NORM:
  case GEMMAC_OP_LINEAR:
    *num_inputs = 2;
    *num_outputs = 1;
    return 1;
  case GEMMAC_OP_ADD_RMS_NORM:
    *num_inputs = 3;
    *num_outputs = 2;
    return 1;
  default:
    return 0;
  }
}

/* Why this plugin cannot run `desc`, written to `error`; OK when it can. */
static int32_t check_desc(const gemmac_op_desc *desc,
                          gemmac_plugin_error *error) {
  if (desc == NULL || !FITS(desc, gemmac_op_desc, output_dtypes))
    return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "example: op description is NULL or its struct_size %zu is "
                "below %zu",
                desc ? desc->struct_size : (size_t)0,
                offsetof(gemmac_op_desc, output_dtypes) + sizeof(void *));
  uint32_t want_in = 0, want_out = 0;
  if (!signature(desc->op, &want_in, &want_out))
    return fail(error, GEMMAC_PLUGIN_UNSUPPORTED,
                "example: op %d is not supported, expected add, mul, "
                "gelu_tanh, softcap, scale, rms_norm, add_rms_norm or linear",
                (int)desc->op);
  const char *name = op_name(desc->op);
  if (desc->num_inputs != want_in || desc->num_outputs != want_out)
    return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "example: %s has %u inputs and %u outputs, expected %u and %u",
                name, desc->num_inputs, desc->num_outputs, want_in, want_out);
  if (desc->input_dtypes == NULL || desc->output_dtypes == NULL)
    return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "example: %s: input_dtypes or output_dtypes is NULL", name);
  for (uint32_t i = 0; i < want_in; ++i)
    if (desc->input_dtypes[i] != GEMMAC_DTYPE_F32)
      return fail(error, GEMMAC_PLUGIN_UNSUPPORTED,
                  "example: %s: input %u has dtype %d, expected f32 (%d)", name,
                  i, (int)desc->input_dtypes[i], GEMMAC_DTYPE_F32);
  for (uint32_t i = 0; i < want_out; ++i)
    if (desc->output_dtypes[i] != GEMMAC_DTYPE_F32)
      return fail(error, GEMMAC_PLUGIN_UNSUPPORTED,
                  "example: %s: output %u has dtype %d, expected f32 (%d)",
                  name, i, (int)desc->output_dtypes[i], GEMMAC_DTYPE_F32);
  return GEMMAC_PLUGIN_OK;
}

/* The attributes an op reads, checked once at prepare. */
static int32_t check_attrs(int32_t op, const gemmac_op_attrs *a,
                           gemmac_plugin_error *error) {
  const char *name = op_name(op);
  switch (op) {
  case GEMMAC_OP_RMS_NORM:
  case GEMMAC_OP_ADD_RMS_NORM:
    if (!(a->eps >= 0.0f) || !isfinite(a->eps))
      return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "example: %s: attribute eps is %g, expected a finite number "
                  ">= 0",
                  name, (double)a->eps);
    if (!isfinite(a->offset))
      return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "example: %s: attribute offset is %g, expected a finite "
                  "number",
                  name, (double)a->offset);
    break;
  case GEMMAC_OP_SOFTCAP:
    if (!(a->softcap > 0.0f) || !isfinite(a->softcap))
      return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "example: softcap: attribute softcap is %g, expected a "
                  "finite number > 0",
                  (double)a->softcap);
    break;
  case GEMMAC_OP_SCALE:
    if (!isfinite(a->scale))
      return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "example: scale: attribute scale is %g, expected a finite "
                  "number",
                  (double)a->scale);
    break;
  default:
    break;
  }
  return GEMMAC_PLUGIN_OK;
}

static int32_t create(const gemmac_backend_options *options,
                      gemmac_backend **out, gemmac_plugin_error *error) {
  (void)options; /* one thread: nothing to configure */
  if (out == NULL)
    return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "example: create: out is NULL, expected a pointer to fill");
  *out = calloc(1, sizeof(**out));
  if (*out == NULL)
    return fail(error, GEMMAC_PLUGIN_OUT_OF_MEMORY,
                "example: create: out of memory for the backend");
  return GEMMAC_PLUGIN_OK;
}

static void destroy(gemmac_backend *backend) { free(backend); }

static int32_t supports(gemmac_backend *backend, const gemmac_op_desc *desc) {
  (void)backend;
  return check_desc(desc, NULL) == GEMMAC_PLUGIN_OK;
}

static int32_t prepare(gemmac_backend *backend, const gemmac_op_desc *desc,
                       gemmac_kernel **out, gemmac_plugin_error *error) {
  (void)backend;
  if (out == NULL)
    return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "example: prepare: out is NULL, expected a pointer to fill");
  *out = NULL;
  int32_t rc = check_desc(desc, error);
  if (rc != GEMMAC_PLUGIN_OK)
    return rc;
  /* Copy only the attributes the caller's struct holds; the rest stay 0. */
  gemmac_op_attrs attrs;
  memset(&attrs, 0, sizeof(attrs));
  size_t n = desc->attrs.struct_size < sizeof(attrs) ? desc->attrs.struct_size
                                                     : sizeof(attrs);
  memcpy(&attrs, &desc->attrs, n);
  attrs.struct_size = sizeof(attrs);
  rc = check_attrs(desc->op, &attrs, error);
  if (rc != GEMMAC_PLUGIN_OK)
    return rc;
  gemmac_kernel *k = malloc(sizeof(*k));
  if (k == NULL)
    return fail(error, GEMMAC_PLUGIN_OUT_OF_MEMORY,
                "example: %s: prepare: out of memory for the kernel",
                op_name(desc->op));
  k->op = desc->op;
  k->attrs = attrs;
  *out = k;
  return GEMMAC_PLUGIN_OK;
}

static void release(gemmac_backend *backend, gemmac_kernel *kernel) {
  (void)backend;
  free(kernel);
}

/* ---- launch: operand checks, then the kernels ---------------------------- */

/* Tensor i of an array whose stride is its first element's struct_size, so
 * that a newer caller's larger gemmac_tensor is stepped over correctly. */
static const gemmac_tensor *tensor_at(const gemmac_tensor *array, uint32_t i) {
  return (const gemmac_tensor *)((const char *)array +
                                 (size_t)i * array->struct_size);
}

static int64_t elements(const gemmac_tensor *t) {
  int64_t n = 1;
  for (int32_t d = 0; d < t->rank; ++d)
    n *= t->shape[d];
  return n;
}

/* An f32 tensor with a sane shape and data for its elements. */
static int32_t check_tensor(const char *op, const char *operand,
                            const gemmac_tensor *t,
                            gemmac_plugin_error *error) {
  if (t->struct_size < sizeof(gemmac_tensor))
    return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "example: %s: %s struct_size is %zu, expected at least %zu", op,
                operand, t->struct_size, sizeof(gemmac_tensor));
  if (t->dtype != GEMMAC_DTYPE_F32)
    return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "example: %s: %s has dtype %d, expected f32 (%d) as prepared",
                op, operand, (int)t->dtype, GEMMAC_DTYPE_F32);
  if (t->rank < 0 || t->rank > GEMMAC_MAX_RANK)
    return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "example: %s: %s has rank %d, expected 0..%d", op, operand,
                (int)t->rank, GEMMAC_MAX_RANK);
  for (int32_t d = 0; d < t->rank; ++d)
    if (t->shape[d] < 0 || t->shape[d] > ((int64_t)1 << 40))
      return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "example: %s: %s has dimension %d = %lld, expected 0..2^40",
                  op, operand, (int)d, (long long)t->shape[d]);
  if (t->data == NULL && elements(t) > 0)
    return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "example: %s: %s has %lld elements and a NULL data pointer", op,
                operand, (long long)elements(t));
  return GEMMAC_PLUGIN_OK;
}

static int32_t check_matrix(const char *op, const char *operand,
                            const gemmac_tensor *t, int64_t rows, int64_t cols,
                            const char *expected, gemmac_plugin_error *error) {
  if (t->rank != 2 || (rows >= 0 && t->shape[0] != rows) ||
      (cols >= 0 && t->shape[1] != cols))
    return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "example: %s: %s has rank %d and shape [%lld, %lld], expected "
                "%s",
                op, operand, (int)t->rank, (long long)t->shape[0],
                (long long)(t->rank > 1 ? t->shape[1] : 0), expected);
  return GEMMAC_PLUGIN_OK;
}

static int32_t check_same_size(const char *op, const char *operand,
                               const gemmac_tensor *t, const gemmac_tensor *x,
                               gemmac_plugin_error *error) {
  if (elements(t) != elements(x))
    return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "example: %s: %s has %lld elements, expected %lld like input "
                "x",
                op, operand, (long long)elements(t), (long long)elements(x));
  return GEMMAC_PLUGIN_OK;
}

static float gelu_tanh(float v) {
  return 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
}

/* y = x * rsqrt(mean(x^2) + eps) * (offset + w) over each group of D = dim(w)
 * consecutive elements of each row: D == N is the usual norm, D == head_dim
 * the per-head QK-norm. x and y may be the same buffer. */
static void rms_norm_rows(const float *x, int64_t T, int64_t N, const float *w,
                          int64_t D, float eps, float offset, float *y) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t g = 0; g < N; g += D) {
      const float *xs = x + t * N + g;
      float *ys = y + t * N + g;
      double ss = 0;
      for (int64_t i = 0; i < D; ++i)
        ss += (double)xs[i] * xs[i];
      float r = 1.0f / sqrtf((float)(ss / D) + eps);
      for (int64_t i = 0; i < D; ++i)
        ys[i] = xs[i] * r * (offset + w[i]);
    }
}

/* y[t, n] = x[t] . w[n]: Hugging Face's [out, in] weight layout. */
static void linear_rows(const float *x, int64_t T, int64_t K, const float *w,
                        int64_t N, float *y) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t i = 0; i < K; ++i)
        acc += (double)x[t * K + i] * w[n * K + i];
      y[t * N + n] = (float)acc;
    }
}

static int32_t launch(gemmac_backend *backend, gemmac_kernel *kernel,
                      const gemmac_tensor *inputs, uint32_t num_inputs,
                      const gemmac_tensor *outputs, uint32_t num_outputs,
                      const gemmac_exec_context *context,
                      gemmac_plugin_error *error) {
  (void)backend;
  if (kernel == NULL)
    return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "example: launch: kernel is NULL, expected one from prepare()");
  const char *name = op_name(kernel->op);
  const gemmac_op_attrs *a = &kernel->attrs;
  if (context != NULL && FITS(context, gemmac_exec_context, cancel) &&
      context->cancel != NULL && *context->cancel != 0)
    return fail(error, GEMMAC_PLUGIN_CANCELLED, "example: %s: cancelled", name);
  uint32_t want_in = 0, want_out = 0;
  signature(kernel->op, &want_in, &want_out);
  if (num_inputs != want_in || num_outputs != want_out || inputs == NULL ||
      outputs == NULL)
    return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "example: %s: launch got %u inputs and %u outputs%s, expected "
                "%u and %u",
                name, num_inputs, num_outputs,
                inputs == NULL || outputs == NULL ? " (an array is NULL)" : "",
                want_in, want_out);
  const gemmac_tensor *in[3] = {NULL, NULL, NULL}, *out[2] = {NULL, NULL};
  static const char *const in_names[3] = {"input 0", "input 1", "input 2"};
  static const char *const out_names[2] = {"output 0", "output 1"};
  int32_t rc;
  for (uint32_t i = 0; i < want_in; ++i) {
    in[i] = tensor_at(inputs, i);
    if ((rc = check_tensor(name, in_names[i], in[i], error)) != 0)
      return rc;
  }
  for (uint32_t i = 0; i < want_out; ++i) {
    out[i] = tensor_at(outputs, i);
    if ((rc = check_tensor(name, out_names[i], out[i], error)) != 0)
      return rc;
  }
  const float *x = in[0]->data;
  float *y = out[0]->data;

  switch (kernel->op) {
  case GEMMAC_OP_RMS_NORM:
  case GEMMAC_OP_ADD_RMS_NORM: {
    const int fused = kernel->op == GEMMAC_OP_ADD_RMS_NORM;
    const gemmac_tensor *w = in[fused ? 2 : 1];
    if ((rc = check_matrix(name, "input x", in[0], -1, -1, "[T, N]", error)))
      return rc;
    const int64_t T = in[0]->shape[0], N = in[0]->shape[1];
    const int64_t D = w->rank == 1 ? w->shape[0] : 0;
    if (D <= 0 || N % D != 0)
      return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "example: %s: the norm weight has rank %d and %lld elements, "
                  "expected rank 1 with a size dividing the row size N = %lld",
                  name, (int)w->rank, (long long)elements(w), (long long)N);
    if ((rc = check_matrix(name, "output 0", out[0], T, N, "[T, N] like x",
                           error)))
      return rc;
    if (!fused) {
      rms_norm_rows(x, T, N, w->data, D, a->eps, a->offset, y);
      return GEMMAC_PLUGIN_OK;
    }
    /* s = x + y into output 0, then h = rms_norm(s) into output 1. */
    if ((rc = check_matrix(name, "input 1", in[1], T, N, "[T, N] like x",
                           error)) ||
        (rc = check_matrix(name, "output 1", out[1], T, N, "[T, N] like x",
                           error)))
      return rc;
    const float *r = in[1]->data;
    for (int64_t i = 0; i < T * N; ++i)
      y[i] = x[i] + r[i];
    rms_norm_rows(y, T, N, w->data, D, a->eps, a->offset, out[1]->data);
    return GEMMAC_PLUGIN_OK;
  }
  case GEMMAC_OP_LINEAR: {
    if ((rc = check_matrix(name, "input x", in[0], -1, -1, "[T, K]", error)))
      return rc;
    const int64_t T = in[0]->shape[0], K = in[0]->shape[1];
    if ((rc = check_matrix(name, "input w", in[1], -1, K,
                           "[N, K] with K the row size of x", error)))
      return rc;
    const int64_t N = in[1]->shape[0];
    if ((rc = check_matrix(name, "output 0", out[0], T, N,
                           "[T, N] from x and w", error)))
      return rc;
    linear_rows(x, T, K, in[1]->data, N, y);
    return GEMMAC_PLUGIN_OK;
  }
  default: {
    /* Element-wise: any shape, the same element count everywhere. */
    if ((rc = check_same_size(name, "output 0", out[0], in[0], error)))
      return rc;
    if (want_in == 2 &&
        (rc = check_same_size(name, "input 1", in[1], in[0], error)))
      return rc;
    const float *b = want_in == 2 ? in[1]->data : NULL;
    const int64_t n = elements(in[0]);
    switch (kernel->op) {
    case GEMMAC_OP_ADD:
      for (int64_t i = 0; i < n; ++i)
        y[i] = x[i] + b[i];
      break;
    case GEMMAC_OP_MUL:
      for (int64_t i = 0; i < n; ++i)
        y[i] = x[i] * b[i];
      break;
    case GEMMAC_OP_GELU_TANH:
      for (int64_t i = 0; i < n; ++i)
        y[i] = gelu_tanh(x[i]);
      break;
    case GEMMAC_OP_SOFTCAP:
      for (int64_t i = 0; i < n; ++i)
        y[i] = a->softcap * tanhf(x[i] / a->softcap);
      break;
    case GEMMAC_OP_SCALE:
      for (int64_t i = 0; i < n; ++i)
        y[i] = x[i] * a->scale;
      break;
    default:
      return fail(error, GEMMAC_PLUGIN_INTERNAL,
                  "example: launch: op %d was prepared but has no kernel",
                  (int)kernel->op);
    }
    return GEMMAC_PLUGIN_OK;
  }
  }
}

/* Host memory (this plugin's "device" is the CPU). NULL for a size or
 * alignment that cannot be served: the runtime reports it. */
static void *alloc(gemmac_backend *backend, size_t bytes, size_t alignment) {
  (void)backend;
  if (alignment == 0)
    alignment = 64;
  if ((alignment & (alignment - 1)) != 0)
    return NULL;
  if (alignment < sizeof(void *))
    alignment = sizeof(void *);
  if (bytes > SIZE_MAX - alignment)
    return NULL;
  size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  return aligned_alloc(alignment, rounded ? rounded : alignment);
}

static void free_memory(gemmac_backend *backend, void *ptr) {
  (void)backend;
  free(ptr);
}

static const char *describe(gemmac_backend *backend) {
  (void)backend;
  return "example: f32 element-wise, rms_norm, add_rms_norm and linear in "
         "plain C, 1 thread";
}

GEMMAC_PLUGIN_EXPORT int32_t gemmac_plugin_entry(uint32_t abi_major,
                                                 gemmac_plugin_api *api,
                                                 size_t api_size) {
  if (abi_major != GEMMAC_PLUGIN_ABI_MAJOR)
    return GEMMAC_PLUGIN_UNSUPPORTED;
  if (api == NULL || api_size < sizeof(api->struct_size))
    return GEMMAC_PLUGIN_INVALID_ARGUMENT;
  gemmac_plugin_api table;
  memset(&table, 0, sizeof(table));
  table.abi_major = GEMMAC_PLUGIN_ABI_MAJOR;
  table.abi_minor = GEMMAC_PLUGIN_ABI_MINOR;
  table.name = "example";
  table.version = "0.1.0";
  table.create = create;
  table.destroy = destroy;
  table.supports = supports;
  table.prepare = prepare;
  table.release = release;
  table.launch = launch;
  table.alloc = alloc;
  table.free = free_memory;
  table.describe = describe;
  size_t n = api_size < sizeof(table) ? api_size : sizeof(table);
  table.struct_size = n;
  memcpy(api, &table, n);
  return GEMMAC_PLUGIN_OK;
}
