// Micro-benchmarks of the CPU plugin's hot kernels, called through the
// plugin ABI exactly as the runtime's VM calls them (prepare once, launch in
// the loop), at the shapes of a Gemma-3-1B decoder layer:
//
//   linear     T=1,  [6912, 1152]  (an up/gate projection at decode)
//   linear     T=1,  [1152, 6912]  (the down projection at decode)
//   gated_mlp  T=1,  2 x [6912, 1152]  (gate + up + GeGLU, fused)
//   linear     T=64, [6912, 1152] and [1152, 6912]  (a prefill chunk)
//
// for each weight dtype the plugin supports among bf16, q8c, q4g32 and
// q4g32r8. Each reports two rates, so ratios to the machine's peaks are
// direct: `B/s`, the weight bytes streamed per second (decode is bound by
// it), and `FLOP/s`, 2 x T x rows x cols per matrix (prefill is bound by it).
// `of_probe` is B/s over the bandwidth the built-in probe measured at start
// (same thread count), i.e. the decode roofline fraction of that kernel;
// `of_peak` is FLOP/s over the arithmetic peak of the active instruction-set
// level (compute_peak.cc: f32 FMA for bf16, int8 dot products for the
// quantized formats, one core's measured peak times the threads), i.e. the
// prefill roofline fraction. `launch/add/N` times one small op's launch:
// the fixed cost every op of a decode step pays.
//
// The weights are "cold" as in a real decode step, which streams 1 GB of
// weights per token: each iteration uses the next of several copies, together
// at least GEMMAC_BENCH_COLD_MIB (default 1024) MiB, so no copy is still in
// the last-level cache when it comes round again. `/hot` variants reuse one
// copy (the cache-resident speed of the arithmetic).
//
// Environment: GEMMAC_BENCH_THREADS (default: the hardware's thread count),
// GEMMAC_BENCH_PROBE_MIB (probe buffer; 0 skips the probe), and the usual
// Google Benchmark flags (--benchmark_filter=q4, --benchmark_repetitions=5).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bandwidth_probe.h"
#include "compute_peak.h"
#include "cpu_features.h"
#include "gemmac/cpu_plugin.h"
#include "gemmac/plugin.h"
#include "tiles.h"

namespace {

gemmac_plugin_api g_api{};
gemmac_backend *g_backend = nullptr;
int g_threads = 1;
double g_probe_bytes_per_s = 0; // 0: no probe
// The active level's arithmetic peak over g_threads cores (0: none).
gemmac::bench::ComputePeak g_peak;
uint64_t g_cold_bytes = uint64_t(1) << 30;

const char *DTypeName(int32_t dtype) {
  switch (dtype) {
  case GEMMAC_DTYPE_BF16:
    return "bf16";
  case GEMMAC_DTYPE_Q8C:
    return "q8c";
  case GEMMAC_DTYPE_Q4G32:
    return "q4g32";
  case GEMMAC_DTYPE_Q4G32R8:
    return "q4g32r8";
  default:
    return "?";
  }
}

int64_t EnvInt(const char *name, int64_t fallback) {
  const char *v = std::getenv(name);
  if (v == nullptr || *v == '\0')
    return fallback;
  char *end = nullptr;
  long long x = std::strtoll(v, &end, 10);
  if (*end != '\0' || x < 0) {
    std::fprintf(stderr,
                 "gemmac_kernel_bench: %s is '%s', expected an "
                 "integer >= 0; using %lld\n",
                 name, v, (long long)fallback);
    return fallback;
  }
  return x;
}

// Finite, plausibly scaled bytes for a [rows, cols] weight of `dtype`: the
// speed of these kernels does not depend on the values, but NaNs or
// denormals could.
void FillWeight(int32_t dtype, int64_t rows, int64_t cols, uint8_t *p,
                std::mt19937_64 &rng) {
  const int64_t bytes = gemmac_weight_bytes(dtype, rows, cols);
  for (int64_t i = 0; i + 8 <= bytes; i += 8) {
    uint64_t r = rng();
    std::memcpy(p + i, &r, 8);
  }
  const uint16_t d = 0x2000; // f16 2^-7
  switch (dtype) {
  case GEMMAC_DTYPE_BF16:
    // Sign and 7 mantissa bits random, exponent fixed: values in +-[0.5, 1).
    for (int64_t i = 0; i < rows * cols; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      h = uint16_t((h & 0x807F) | 0x3F00);
      std::memcpy(p + 2 * i, &h, 2);
    }
    break;
  case GEMMAC_DTYPE_Q8C: {
    float s = 0.01f;
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(p + rows * cols + 4 * r, &s, 4);
    break;
  }
  case GEMMAC_DTYPE_Q4G32: // 18-byte blocks: f16 d, 16 bytes of nibbles
    for (int64_t b = 0; b < rows * cols / 32; ++b)
      std::memcpy(p + 18 * b, &d, 2);
    break;
  case GEMMAC_DTYPE_Q4G32R8: // 144-byte runs: 8 f16 d, then 8 x 16 bytes
    for (int64_t run = 0; run < rows * cols / 256; ++run)
      for (int i = 0; i < 8; ++i)
        std::memcpy(p + 144 * run + 2 * i, &d, 2);
    break;
  default:
    break;
  }
}

gemmac_tensor Tensor(void *data, int32_t dtype, int64_t d0, int64_t d1) {
  gemmac_tensor t{};
  t.struct_size = sizeof(t);
  t.data = data;
  t.dtype = dtype;
  t.rank = 2;
  t.shape[0] = d0;
  t.shape[1] = d1;
  return t;
}

gemmac_tensor Absent() {
  gemmac_tensor t{};
  t.struct_size = sizeof(t);
  t.dtype = GEMMAC_DTYPE_NONE;
  return t;
}

struct Case {
  int32_t op;    // GEMMAC_OP_LINEAR or GEMMAC_OP_GATED_MLP
  int32_t dtype; // weight dtype
  int64_t tokens, rows, cols;
  bool hot;
};

struct Freer {
  void operator()(void *p) const { std::free(p); }
};
using Buffer = std::unique_ptr<uint8_t, Freer>;

Buffer Alloc(size_t bytes) {
  void *p = nullptr;
  if (posix_memalign(&p, 4096, std::max<size_t>(bytes, 64)) != 0)
    return nullptr;
  return Buffer(static_cast<uint8_t *>(p));
}

// Descriptor of the op with its input dtypes (output f32).
gemmac_op_desc Desc(const Case &c, std::vector<int32_t> *dtypes,
                    gemmac_op_attrs *attrs, int32_t *out_dtype) {
  *attrs = {};
  attrs->struct_size = sizeof(*attrs);
  attrs->scale = 1.0f;
  attrs->eps = 1e-6f;
  attrs->offset = 1.0f;
  if (c.op == GEMMAC_OP_LINEAR)
    *dtypes = {GEMMAC_DTYPE_F32, c.dtype};
  else
    *dtypes = {GEMMAC_DTYPE_F32, GEMMAC_DTYPE_NONE, c.dtype, c.dtype};
  *out_dtype = GEMMAC_DTYPE_F32;
  gemmac_op_desc d{};
  d.struct_size = sizeof(d);
  d.op = c.op;
  d.attrs = *attrs;
  d.num_inputs = uint32_t(dtypes->size());
  d.input_dtypes = dtypes->data();
  d.num_outputs = 1;
  d.output_dtypes = out_dtype;
  return d;
}

bool Supported(const Case &c) {
  std::vector<int32_t> dtypes;
  gemmac_op_attrs attrs;
  int32_t out;
  gemmac_op_desc d = Desc(c, &dtypes, &attrs, &out);
  return g_api.supports(g_backend, &d) != 0;
}

void RunCase(benchmark::State &state, Case c) {
  std::vector<int32_t> dtypes;
  gemmac_op_attrs attrs;
  int32_t out_dtype;
  gemmac_op_desc desc = Desc(c, &dtypes, &attrs, &out_dtype);
  gemmac_plugin_error err{};
  err.struct_size = sizeof(err);
  gemmac_kernel *kernel = nullptr;
  if (g_api.prepare(g_backend, &desc, &kernel, &err) != GEMMAC_PLUGIN_OK) {
    state.SkipWithError(err.message);
    return;
  }
  const int matrices = c.op == GEMMAC_OP_GATED_MLP ? 2 : 1;
  const int64_t wbytes = gemmac_weight_bytes(c.dtype, c.rows, c.cols);
  const uint64_t per_copy = uint64_t(wbytes) * matrices;
  const size_t copies = c.hot
                            ? 1
                            : size_t(std::max<uint64_t>(
                                  2, (g_cold_bytes + per_copy - 1) / per_copy));
  Buffer weights = Alloc(per_copy * copies);
  Buffer x = Alloc(sizeof(float) * c.tokens * c.cols);
  Buffer y = Alloc(sizeof(float) * c.tokens * c.rows);
  if (!weights || !x || !y) {
    g_api.release(g_backend, kernel);
    state.SkipWithError("out of memory for the weight copies");
    return;
  }
  std::mt19937_64 rng(42);
  for (size_t k = 0; k < copies * matrices; ++k)
    FillWeight(c.dtype, c.rows, c.cols, weights.get() + k * wbytes, rng);
  auto *xf = reinterpret_cast<float *>(x.get());
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t i = 0; i < c.tokens * c.cols; ++i)
    xf[i] = u(rng);

  gemmac_exec_context ctx{};
  ctx.struct_size = sizeof(ctx);
  ctx.tokens = c.tokens;
  gemmac_tensor out = Tensor(y.get(), GEMMAC_DTYPE_F32, c.tokens, c.rows);
  size_t k = 0;
  for (auto _ : state) {
    uint8_t *w = weights.get() + k * per_copy;
    k = k + 1 == copies ? 0 : k + 1;
    gemmac_tensor in[4];
    uint32_t n = 0;
    in[n++] = Tensor(x.get(), GEMMAC_DTYPE_F32, c.tokens, c.cols);
    if (c.op == GEMMAC_OP_GATED_MLP)
      in[n++] = Absent();
    in[n++] = Tensor(w, c.dtype, c.rows, c.cols);
    if (c.op == GEMMAC_OP_GATED_MLP)
      in[n++] = Tensor(w + wbytes, c.dtype, c.rows, c.cols);
    if (g_api.launch(g_backend, kernel, in, n, &out, 1, &ctx, &err) !=
        GEMMAC_PLUGIN_OK) {
      state.SkipWithError(err.message);
      break;
    }
    benchmark::DoNotOptimize(y.get());
    benchmark::ClobberMemory();
  }
  g_api.release(g_backend, kernel);

  using benchmark::Counter;
  const double bytes = double(per_copy);
  const double flops = 2.0 * matrices * c.tokens * c.rows * c.cols;
  state.counters["B/s"] =
      Counter(bytes, Counter::kIsIterationInvariantRate, Counter::kIs1000);
  state.counters["FLOP/s"] =
      Counter(flops, Counter::kIsIterationInvariantRate, Counter::kIs1000);
  if (g_probe_bytes_per_s > 0)
    state.counters["of_probe"] = Counter(bytes / g_probe_bytes_per_s,
                                         Counter::kIsIterationInvariantRate);
  // Float weights run on f32 FMAs (or, in the amx level's prefill panels,
  // on bf16 tiles), quantized ones on int8 dot products (or int8 tiles).
  const bool tiles = g_peak.bf16_tile_flops > 0 &&
                     c.tokens >= gemmac::cpu::PanelMinTokens(GEMMAC_DTYPE_BF16);
  const double peak = c.dtype != GEMMAC_DTYPE_BF16 ? g_peak.int8_ops
                      : tiles                      ? g_peak.bf16_tile_flops
                                                   : g_peak.f32_flops;
  if (peak > 0)
    state.counters["of_peak"] =
        Counter(flops / peak, Counter::kIsIterationInvariantRate);
  state.counters["copies"] = double(copies);
}

// One launch of `add` over n floats: the plugin's fixed cost per op (ABI
// checks, the task arena, the parallel loop) at n = 1, and a decode-sized
// elementwise op at n = 1152. A decode step launches a few ops per layer.
void RunLaunch(benchmark::State &state, int64_t n) {
  const int32_t dtypes[2] = {GEMMAC_DTYPE_F32, GEMMAC_DTYPE_F32};
  int32_t out_dtype = GEMMAC_DTYPE_F32;
  gemmac_op_desc d{};
  d.struct_size = sizeof(d);
  d.op = GEMMAC_OP_ADD;
  d.attrs.struct_size = sizeof(d.attrs);
  d.num_inputs = 2;
  d.input_dtypes = dtypes;
  d.num_outputs = 1;
  d.output_dtypes = &out_dtype;
  gemmac_plugin_error err{};
  err.struct_size = sizeof(err);
  gemmac_kernel *kernel = nullptr;
  if (g_api.prepare(g_backend, &d, &kernel, &err) != GEMMAC_PLUGIN_OK) {
    state.SkipWithError(err.message);
    return;
  }
  std::vector<float> a(size_t(n), 1.0f), b(size_t(n), 2.0f), y(size_t(n), 0.0f);
  gemmac_tensor in[2] = {Tensor(a.data(), GEMMAC_DTYPE_F32, 1, n),
                         Tensor(b.data(), GEMMAC_DTYPE_F32, 1, n)};
  gemmac_tensor out = Tensor(y.data(), GEMMAC_DTYPE_F32, 1, n);
  gemmac_exec_context ctx{};
  ctx.struct_size = sizeof(ctx);
  ctx.tokens = 1;
  for (auto _ : state) {
    if (g_api.launch(g_backend, kernel, in, 2, &out, 1, &ctx, &err) !=
        GEMMAC_PLUGIN_OK) {
      state.SkipWithError(err.message);
      break;
    }
    benchmark::DoNotOptimize(y.data());
  }
  g_api.release(g_backend, kernel);
}

void RegisterAll() {
  for (int64_t n : {int64_t(1), int64_t(1152)})
    benchmark::RegisterBenchmark(("launch/add/" + std::to_string(n)).c_str(),
                                 RunLaunch, n)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  const int32_t dtypes[] = {GEMMAC_DTYPE_BF16, GEMMAC_DTYPE_Q8C,
                            GEMMAC_DTYPE_Q4G32, GEMMAC_DTYPE_Q4G32R8};
  struct Shape {
    int32_t op;
    int64_t tokens, rows, cols;
    const char *name;
  };
  const Shape shapes[] = {
      {GEMMAC_OP_LINEAR, 1, 6912, 1152, "linear/T1/6912x1152"},
      {GEMMAC_OP_LINEAR, 1, 1152, 6912, "linear/T1/1152x6912"},
      {GEMMAC_OP_GATED_MLP, 1, 6912, 1152, "gated_mlp/T1/2x6912x1152"},
      {GEMMAC_OP_LINEAR, 64, 6912, 1152, "linear/T64/6912x1152"},
      {GEMMAC_OP_LINEAR, 64, 1152, 6912, "linear/T64/1152x6912"},
      {GEMMAC_OP_GATED_MLP, 256, 6912, 1152, "gated_mlp/T256/2x6912x1152"},
  };
  for (const Shape &s : shapes)
    for (int32_t dt : dtypes)
      for (bool hot : {false, true}) {
        // Prefill reuses each weight over 64 tokens: cold and hot differ
        // little, so only the cold (realistic) one is run.
        if (hot && s.tokens > 1)
          continue;
        Case c{s.op, dt, s.tokens, s.rows, s.cols, hot};
        std::string name =
            std::string(s.name) + "/" + DTypeName(dt) + (hot ? "/hot" : "");
        if (!Supported(c)) {
          std::fprintf(stderr,
                       "gemmac_kernel_bench: %s: the plugin does "
                       "not support it; skipped\n",
                       name.c_str());
          continue;
        }
        benchmark::RegisterBenchmark(name.c_str(), RunCase, c)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
}

} // namespace

int main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 2;
  g_threads = int(EnvInt("GEMMAC_BENCH_THREADS",
                         std::max(1u, std::thread::hardware_concurrency())));
  if (g_threads < 1)
    g_threads = 1;
  g_cold_bytes = uint64_t(EnvInt("GEMMAC_BENCH_COLD_MIB", 1024)) << 20;

  if (gemmac_cpu_plugin_entry(GEMMAC_PLUGIN_ABI_MAJOR, &g_api, sizeof(g_api)) !=
      GEMMAC_PLUGIN_OK) {
    std::fprintf(stderr,
                 "gemmac_kernel_bench: the CPU plugin refused ABI "
                 "%d\n",
                 GEMMAC_PLUGIN_ABI_MAJOR);
    return 1;
  }
  gemmac_backend_options opts{};
  opts.struct_size = sizeof(opts);
  opts.num_threads = g_threads;
  gemmac_plugin_error err{};
  err.struct_size = sizeof(err);
  if (g_api.create(&opts, &g_backend, &err) != GEMMAC_PLUGIN_OK) {
    std::fprintf(stderr, "gemmac_kernel_bench: create: %s\n", err.message);
    return 1;
  }
  benchmark::AddCustomContext("threads", std::to_string(g_threads));
  benchmark::AddCustomContext("cold_set_MiB",
                              std::to_string(g_cold_bytes >> 20));

  int64_t probe_mib = EnvInt("GEMMAC_BENCH_PROBE_MIB",
                             int64_t(gemmac::bench::DefaultProbeBytes() >> 20));
  if (probe_mib > 0) {
    gemmac::bench::ProbeResult p = gemmac::bench::ProbeReadBandwidth(
        g_threads, uint64_t(probe_mib) << 20, 5);
    if (p.error.empty()) {
      g_probe_bytes_per_s = p.best_gbps * 1e9;
      char b[128];
      std::snprintf(b, sizeof(b), "best %.2f GB/s, median %.2f GB/s (%lld MiB)",
                    p.best_gbps, p.median_gbps, (long long)probe_mib);
      benchmark::AddCustomContext("read_bandwidth_probe", b);
    } else {
      std::fprintf(stderr, "gemmac_kernel_bench: probe: %s\n", p.error.c_str());
    }
  }

  const gemmac::cpu::Isa isa = gemmac::cpu::ActiveIsa();
  benchmark::AddCustomContext("cpu_level", gemmac::cpu::Describe());
  g_peak = gemmac::bench::MeasureComputePeak(isa);
  g_peak.f32_flops *= g_threads;
  g_peak.int8_ops *= g_threads;
  g_peak.bf16_tile_flops *= g_threads;
  if (g_peak.f32_flops > 0) {
    char b[224];
    char tile[64] = "";
    if (g_peak.bf16_tile_flops > 0)
      std::snprintf(tile, sizeof(tile), ", bf16 tiles %.1f GFLOP/s",
                    g_peak.bf16_tile_flops / 1e9);
    std::snprintf(b, sizeof(b),
                  "f32 FMA %.1f GFLOP/s, int8 dot %.1f GOP/s%s (%s, one "
                  "core's measured peak x %d threads)",
                  g_peak.f32_flops / 1e9, g_peak.int8_ops / 1e9, tile,
                  gemmac::cpu::IsaName(isa), g_threads);
    benchmark::AddCustomContext("compute_peak", b);
  }

  RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_api.destroy(g_backend);
  return 0;
}
