// The "tpu" plugin's ABI table: graph mode (compile_graph lowers a function
// to static schedules per bucket, execute_graph runs one on the emulator)
// and kernel mode on the same machinery (prepare keeps the description,
// launch lowers and runs a one-node graph over the given tensors). Memory is
// host memory (ABI 1.x: the CPU plugin runs what this one declines in the
// same arena).
#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "device.h"
#include "gemmac/host_memory.h"
#include "gemmac/op_checks.h"

namespace gemmac::tpu {
namespace {

// One emulated device: its VMEM (one per device, so every graph and kernel
// shares it, one execution at a time) and the describe() line.
struct Backend {
  std::vector<uint8_t> vmem = std::vector<uint8_t>(size_t(kVmemBytes));
  std::mutex mu;
  std::string description;
  bool debug = false;
};

struct Kernel {
  int32_t op;
  gemmac_op_attrs attrs;
  std::vector<int32_t> in_dtypes, out_dtypes;
  Graph weights; // bf16/f32 weight copies kept between launches
};

Backend *B(gemmac_backend *b) { return reinterpret_cast<Backend *>(b); }

int32_t Fail(gemmac_plugin_error *e, int32_t code, const std::string &msg) {
  const size_t at = offsetof(gemmac_plugin_error, message);
  if (e == nullptr || e->struct_size <= at)
    return code;
  size_t cap = std::min(e->struct_size - at, sizeof(e->message));
  std::snprintf(e->message, cap, "%s", msg.c_str());
  return code;
}

std::string StatsLine(const Graph &g) {
  std::string s;
  char buf[256];
  for (const Schedule &sc : g.schedules) {
    std::snprintf(buf, sizeof(buf),
                  "%s%s[%lld]: %lld instrs, %lld DMA bytes, %lld MXU tiles, "
                  "VMEM peak %lld",
                  s.empty() ? "" : "; ", g.name.c_str(), (long long)sc.bucket,
                  (long long)sc.stats.instructions,
                  (long long)sc.stats.dma_bytes, (long long)sc.stats.mxu_tiles,
                  (long long)sc.stats.vmem_peak);
    s += buf;
  }
  return s;
}

const char *kDevice = "tpu-emulator: MXU 128x128 bf16 x bf16 -> f32, VMEM "
                      "16 MiB, functional emulation on the host CPU";

int32_t Create(const gemmac_backend_options *, gemmac_backend **out,
               gemmac_plugin_error *err) {
  if (out == nullptr)
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "tpu: create: out is null, expected a place for the backend");
  auto *b = new (std::nothrow) Backend();
  if (b == nullptr)
    return Fail(err, GEMMAC_PLUGIN_OUT_OF_MEMORY,
                "tpu: create: no memory for the 16 MiB VMEM");
  const char *dbg = std::getenv("GEMMAC_TPU_DEBUG");
  b->debug = dbg && *dbg && std::strcmp(dbg, "0") != 0;
  b->description = kDevice;
  *out = reinterpret_cast<gemmac_backend *>(b);
  return GEMMAC_PLUGIN_OK;
}
void Destroy(gemmac_backend *b) { delete B(b); }

bool DescOk(const gemmac_op_desc *d, std::string *why) {
  if (d == nullptr || d->struct_size < offsetof(gemmac_op_desc, output_dtypes) +
                                           sizeof(void *)) {
    *why = "tpu: op description is null or its struct_size is below the ABI "
           "1.0 size";
    return false;
  }
  if (!Implemented(*d, why)) {
    *why = "tpu: " + *why;
    return false;
  }
  return true;
}

int32_t Supports(gemmac_backend *, const gemmac_op_desc *d) {
  std::string why;
  return DescOk(d, &why) ? 1 : 0;
}

bool IsOptional(int32_t op, uint32_t i) {
  return (op == GEMMAC_OP_QKV_PROJ && (i == 1 || i == 5 || i == 6)) ||
         (op == GEMMAC_OP_GATED_MLP && i == 1);
}

int32_t Prepare(gemmac_backend *b, const gemmac_op_desc *d, gemmac_kernel **out,
                gemmac_plugin_error *err) {
  std::string why;
  if (b == nullptr || out == nullptr)
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "tpu: prepare: backend or out is null");
  if (!DescOk(d, &why)) {
    bool none = false;
    for (uint32_t i = 0; d && d->input_dtypes && i < d->num_inputs; ++i)
      none |= d->input_dtypes[i] == GEMMAC_DTYPE_NONE && !IsOptional(d->op, i);
    return Fail(
        err, none ? GEMMAC_PLUGIN_INVALID_ARGUMENT : GEMMAC_PLUGIN_UNSUPPORTED,
        why);
  }
  auto *k = new (std::nothrow) Kernel();
  if (k == nullptr)
    return Fail(err, GEMMAC_PLUGIN_OUT_OF_MEMORY, "tpu: prepare: no memory");
  k->op = d->op;
  k->attrs = d->attrs;
  k->in_dtypes.assign(d->input_dtypes, d->input_dtypes + d->num_inputs);
  k->out_dtypes.assign(d->output_dtypes, d->output_dtypes + d->num_outputs);
  *out = reinterpret_cast<gemmac_kernel *>(k);
  return GEMMAC_PLUGIN_OK;
}
void Release(gemmac_backend *, gemmac_kernel *k) {
  delete reinterpret_cast<Kernel *>(k);
}

// Kernel mode: the one-node graph of this launch, lowered with a single
// bucket of the call's token count and run at once. The weight copies stay
// with the kernel (weights are constant: they point into the module).
int32_t Launch(gemmac_backend *bp, gemmac_kernel *kp, const gemmac_tensor *in,
               uint32_t num_in, const gemmac_tensor *out, uint32_t num_out,
               const gemmac_exec_context *ctx, gemmac_plugin_error *err) {
  if (bp == nullptr || kp == nullptr)
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "tpu: launch: backend or kernel is null");
  Kernel &k = *reinterpret_cast<Kernel *>(kp);
  const char *name = OpName(k.op);
  if (num_in != k.in_dtypes.size() || num_out != k.out_dtypes.size() ||
      (num_in && !in) || (num_out && !out))
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                std::string("tpu: ") + name + " launched with " +
                    std::to_string(num_in) + " inputs and " +
                    std::to_string(num_out) + " outputs, expected " +
                    std::to_string(k.in_dtypes.size()) + " and " +
                    std::to_string(k.out_dtypes.size()));
  if (ctx == nullptr || ctx->tokens < 0 || ctx->past < 0)
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                std::string("tpu: ") + name +
                    " context is null or has tokens or past below 0");
  if (ctx->cancel && *ctx->cancel)
    return GEMMAC_PLUGIN_CANCELLED;
  std::vector<gemmac_tensor> operands;
  for (uint32_t i = 0; i < num_in + num_out; ++i) {
    const gemmac_tensor &t = i < num_in ? in[i] : out[i - num_in];
    const int32_t want = i < num_in ? k.in_dtypes[i] : k.out_dtypes[i - num_in];
    const bool none = t.dtype == GEMMAC_DTYPE_NONE;
    const bool ok = none ? (t.data == nullptr && t.rank == 0 && i < num_in &&
                            IsOptional(k.op, i))
                         : (t.data != nullptr && t.rank >= 1 &&
                            t.rank <= GEMMAC_MAX_RANK && t.dtype == want);
    if (!ok)
      return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  std::string("tpu: ") + name + " " +
                      (i < num_in ? "input " : "output ") +
                      std::to_string(i < num_in ? i : i - num_in) +
                      " has dtype " + std::to_string(t.dtype) + ", rank " +
                      std::to_string(t.rank) + (t.data ? "" : ", no data") +
                      ", expected dtype " + std::to_string(want) +
                      (want == GEMMAC_DTYPE_NONE ? " with no data, rank 0"
                                                 : " with data, rank 1..4"));
    operands.push_back(t);
  }
  // The ops that read T rows, as the reference checks (docs/ops.md).
  const bool rows_are_t = k.op != GEMMAC_OP_GELU_TANH &&
                          k.op != GEMMAC_OP_MUL && k.op != GEMMAC_OP_ADD &&
                          k.op != GEMMAC_OP_SOFTCAP && k.op != GEMMAC_OP_SCALE;
  if (rows_are_t && in[0].shape[0] != ctx->tokens)
    return Fail(
        err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
        std::string("tpu: ") + name + " input 0 has " +
            std::to_string(in[0].shape[0]) +
            " rows, expected context.tokens = " + std::to_string(ctx->tokens));
  if (ctx->tokens == 0)
    return GEMMAC_PLUGIN_OK;
  gemmac_graph_node node{};
  node.struct_size = sizeof(node);
  node.desc.struct_size = sizeof(node.desc);
  node.desc.op = k.op;
  node.desc.attrs = k.attrs;
  node.desc.num_inputs = num_in;
  node.desc.input_dtypes = k.in_dtypes.data();
  node.desc.num_outputs = num_out;
  node.desc.output_dtypes = k.out_dtypes.data();
  node.first_input = 0;
  node.num_inputs = num_in;
  node.first_output = num_in;
  node.num_outputs = num_out;
  const int64_t bucket = ctx->tokens;
  gemmac_graph_desc d{};
  d.struct_size = sizeof(d);
  d.name = name;
  d.num_nodes = 1;
  d.nodes = &node;
  d.num_operands = uint32_t(operands.size());
  d.operands = operands.data();
  d.max_tokens = bucket;
  d.num_buckets = 1;
  d.buckets = &bucket;
  Graph g;
  g.bf16.swap(k.weights.bf16);
  g.f32.swap(k.weights.f32);
  std::string msg;
  int32_t rc = Lower(d, &g, &msg);
  if (rc == GEMMAC_PLUGIN_OK) {
    Backend &b = *B(bp);
    std::lock_guard<std::mutex> lock(b.mu);
    g.vmem = b.vmem.data();
    rc = Execute(&g, *ctx, &msg);
  }
  k.weights.bf16.swap(g.bf16);
  k.weights.f32.swap(g.f32);
  return rc == GEMMAC_PLUGIN_OK ? rc : Fail(err, rc, msg);
}

void *Alloc(gemmac_backend *, size_t bytes, size_t alignment) {
  if (alignment & (alignment - 1))
    return nullptr;
  if (alignment < sizeof(void *))
    alignment = sizeof(void *);
  // Absurd sizes fail here rather than wrap around to a small block.
  if (bytes > SIZE_MAX / 2 - alignment)
    return nullptr;
  size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  return std::aligned_alloc(alignment, rounded ? rounded : alignment);
}
void Free(gemmac_backend *, void *p) { std::free(p); }

const char *Describe(gemmac_backend *b) {
  return b ? B(b)->description.c_str() : kDevice;
}

// ABI 1.5: an accelerator whose device memory is emulated in host memory.
int32_t DeviceInfo(gemmac_backend *b, gemmac_device_info *info,
                   gemmac_plugin_error *err) {
  if (b == nullptr || info == nullptr ||
      info->struct_size < sizeof(info->struct_size))
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "tpu: device_info: backend or info is null, or info's "
                "struct_size is 0");
  gemmac_device_info d{};
  d.kind = GEMMAC_DEVICE_ACCELERATOR;
  d.flags = GEMMAC_DEVICE_HOST_ADDRESSABLE | GEMMAC_DEVICE_GRAPH_MODE;
  gemmac_sdk::HostMemory(&d.memory_bytes, &d.memory_available_bytes);
  std::snprintf(d.name, sizeof(d.name), "%s", kDevice);
  gemmac_sdk::CopyWhatFits(d, info, info->struct_size);
  return GEMMAC_PLUGIN_OK;
}

int32_t CompileGraph(gemmac_backend *bp, const gemmac_graph_desc *d,
                     gemmac_graph **out, gemmac_plugin_error *err) {
  if (bp == nullptr || d == nullptr || out == nullptr ||
      d->struct_size < sizeof(gemmac_graph_desc) ||
      (d->num_nodes && !d->nodes) || (d->num_operands && !d->operands) ||
      d->num_buckets == 0 || !d->buckets)
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "tpu: compile_graph: backend, desc, nodes, operands, buckets "
                "or out is missing, or desc.struct_size is below the ABI 1.4 "
                "size");
  auto g = std::make_unique<Graph>();
  std::string msg;
  if (int32_t rc = Lower(*d, g.get(), &msg); rc != GEMMAC_PLUGIN_OK)
    return Fail(err, rc, msg);
  Backend &b = *B(bp);
  std::lock_guard<std::mutex> lock(b.mu);
  g->vmem = b.vmem.data();
  b.description = std::string(kDevice) + "; " + StatsLine(*g);
  if (b.debug)
    std::fprintf(stderr, "gemmac tpu: compiled %s\n", StatsLine(*g).c_str());
  *out = reinterpret_cast<gemmac_graph *>(g.release());
  return GEMMAC_PLUGIN_OK;
}

int32_t ExecuteGraph(gemmac_backend *bp, gemmac_graph *gp,
                     const gemmac_exec_context *ctx, gemmac_plugin_error *err) {
  if (bp == nullptr || gp == nullptr || ctx == nullptr)
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "tpu: execute_graph: backend, graph or context is null");
  Graph &g = *reinterpret_cast<Graph *>(gp);
  Backend &b = *B(bp);
  std::lock_guard<std::mutex> lock(b.mu);
  std::string msg;
  int32_t rc = Execute(&g, *ctx, &msg);
  if (b.debug)
    std::fprintf(stderr,
                 "gemmac tpu: executed %s tokens=%lld past=%lld: %lld DMA "
                 "bytes, %lld MXU tiles\n",
                 g.name.c_str(), (long long)ctx->tokens, (long long)ctx->past,
                 (long long)g.executed.dma_bytes,
                 (long long)g.executed.mxu_tiles);
  return rc == GEMMAC_PLUGIN_OK ? rc : Fail(err, rc, msg);
}

void ReleaseGraph(gemmac_backend *, gemmac_graph *g) {
  delete reinterpret_cast<Graph *>(g);
}

} // namespace
} // namespace gemmac::tpu

extern "C" GEMMAC_PLUGIN_EXPORT int32_t gemmac_plugin_entry(
    uint32_t abi_major, gemmac_plugin_api *api, size_t api_size) {
  using namespace gemmac::tpu;
  if (abi_major != GEMMAC_PLUGIN_ABI_MAJOR)
    return GEMMAC_PLUGIN_UNSUPPORTED;
  if (api == nullptr || api_size < sizeof(api->struct_size))
    return GEMMAC_PLUGIN_INVALID_ARGUMENT;
  gemmac_plugin_api table;
  std::memset(&table, 0, sizeof(table));
  table.abi_major = GEMMAC_PLUGIN_ABI_MAJOR;
  table.abi_minor = GEMMAC_PLUGIN_ABI_MINOR;
  table.name = "tpu";
  table.version = "0.1";
  table.create = Create;
  table.destroy = Destroy;
  table.supports = Supports;
  table.prepare = Prepare;
  table.release = Release;
  table.launch = Launch;
  table.alloc = Alloc;
  table.free = Free;
  table.describe = Describe;
  table.device_info = DeviceInfo;
  table.compile_graph = CompileGraph;
  table.execute_graph = ExecuteGraph;
  table.release_graph = ReleaseGraph;
  // An older caller's smaller table gets what fits, and no byte past it.
  gemmac_sdk::CopyWhatFits(table, api, api_size);
  return GEMMAC_PLUGIN_OK;
}
