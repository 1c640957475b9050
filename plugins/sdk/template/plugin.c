/* A gemmac backend plugin template: the smallest plugin that follows every
 * rule of gemmac/plugin.h and passes the conformance suite. It runs no op
 * (supports() says no to everything, so the runtime runs every op on the CPU
 * plugin); add ops by saying yes in supports() and doing the work in
 * prepare() and launch(). plugins/example is a plugin that does.
 * Plain C11 and the C standard library. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemmac/plugin.h"

/* The ABI declares these opaque; a plugin defines them as it likes. */
struct gemmac_backend {
  int32_t num_threads;
};
struct gemmac_kernel {
  int32_t op;
};

/* Writes a message into the caller's error struct, reading its struct_size:
 * an older or newer caller's struct may differ in size. Returns `code`. */
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

static int32_t create(const gemmac_backend_options *options,
                      gemmac_backend **out, gemmac_plugin_error *error) {
  if (out == NULL)
    return fail(error, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "template: create: out is NULL, expected a pointer to fill");
  *out = NULL;
  gemmac_backend *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return fail(error, GEMMAC_PLUGIN_OUT_OF_MEMORY,
                "template: create: out of memory for the backend");
  /* Read a field only if the caller's struct has it (struct_size rule). */
  if (options != NULL &&
      options->struct_size >= offsetof(gemmac_backend_options, num_threads) +
                                  sizeof(options->num_threads))
    b->num_threads = options->num_threads;
  *out = b;
  return GEMMAC_PLUGIN_OK;
}

static void destroy(gemmac_backend *backend) { free(backend); }

static int32_t supports(gemmac_backend *backend, const gemmac_op_desc *desc) {
  (void)backend;
  (void)desc;
  return 0; /* no op: the runtime runs them all on the CPU plugin */
}

static int32_t prepare(gemmac_backend *backend, const gemmac_op_desc *desc,
                       gemmac_kernel **out, gemmac_plugin_error *error) {
  (void)backend;
  if (out != NULL)
    *out = NULL;
  return fail(error, GEMMAC_PLUGIN_UNSUPPORTED,
              "template: prepare: op %d is not supported, expected only ops "
              "supports() accepts (none)",
              desc != NULL ? (int)desc->op : -1);
}

static void release(gemmac_backend *backend, gemmac_kernel *kernel) {
  (void)backend;
  free(kernel);
}

static int32_t launch(gemmac_backend *backend, gemmac_kernel *kernel,
                      const gemmac_tensor *inputs, uint32_t num_inputs,
                      const gemmac_tensor *outputs, uint32_t num_outputs,
                      const gemmac_exec_context *context,
                      gemmac_plugin_error *error) {
  (void)backend;
  (void)inputs;
  (void)num_inputs;
  (void)outputs;
  (void)num_outputs;
  (void)context;
  return fail(error, GEMMAC_PLUGIN_UNSUPPORTED,
              "template: launch: kernel %p was never prepared, expected one "
              "from prepare()",
              (void *)kernel);
}

/* Device memory; for a CPU-side plugin, aligned host memory. NULL for a
 * size or alignment that cannot be served: the runtime reports it. */
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
  /* aligned_alloc wants a multiple of the alignment; 0 bytes still gets a
   * distinct pointer that free() accepts. */
  size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  return aligned_alloc(alignment, rounded ? rounded : alignment);
}

static void free_memory(gemmac_backend *backend, void *ptr) {
  (void)backend;
  free(ptr);
}

static const char *describe(gemmac_backend *backend) {
  (void)backend;
  return "template: no kernels (every op runs on the CPU plugin)";
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
  table.name = "template";
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
  /* Fill no more than the caller's table holds (an older runtime's is
   * smaller) and say how much was filled. */
  size_t n = api_size < sizeof(table) ? api_size : sizeof(table);
  table.struct_size = n;
  memcpy(api, &table, n);
  return GEMMAC_PLUGIN_OK;
}
