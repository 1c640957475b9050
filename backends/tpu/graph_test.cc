// Graph mode of the tpu plugin against the reference plugin: small functions
// built by hand as gemmac_graph_desc, compiled with buckets {1, 8}, executed
// at T = 1 and T = 5 (a bucket with padding rows), and compared node by node
// with the same nodes launched on the reference (plugins/conformance/
// reference_plugin.cc, linked in under its own entry name). Also: a graph
// with a node the plugin does not implement is refused with
// GEMMAC_PLUGIN_UNSUPPORTED and a message naming the node.
//
// Tolerances (per output element; ref the reference's value, computed in
// double): the MXU rounds both of its inputs to bf16 (relative error 2^-9
// each, so 2^-8 per product) and sums in f32, so one linear is within
// 2^-8 * sum_k |w_k x_k|; a chain of two linears with gelu between (slope at
// most 1.13) at most doubles that. The tests allow 2^-6 * sum_k |w_k x_k| +
// 1e-4 for the last linear's output and 1e-4 * (1 + |ref|) for f32 VPU ops,
// and 2e-2 * (1 + |ref|) for attention (bf16 scores and probabilities).
#include <dlfcn.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../../plugins/conformance/formats.h"
#include "gemmac/plugin.h"

extern "C" int32_t gemmac_tpu_test_reference_entry(uint32_t,
                                                   gemmac_plugin_api *, size_t);

namespace {

using gemmac::conformance::Encode;
using gemmac::conformance::EncodedWeight;

struct Plugin {
  gemmac_plugin_api api{};
  gemmac_backend *b = nullptr;
  void *lib = nullptr;
  explicit Plugin(gemmac_plugin_entry_fn entry) { Init(entry); }
  explicit Plugin(const char *path) {
    lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    EXPECT_NE(lib, nullptr) << path << ": " << dlerror();
    if (lib)
      Init(reinterpret_cast<gemmac_plugin_entry_fn>(
          dlsym(lib, GEMMAC_PLUGIN_ENTRY_SYMBOL)));
  }
  void Init(gemmac_plugin_entry_fn entry) {
    ASSERT_NE(entry, nullptr);
    ASSERT_EQ(entry(GEMMAC_PLUGIN_ABI_MAJOR, &api, sizeof(api)), 0);
    gemmac_plugin_error err{sizeof(err), {}};
    ASSERT_EQ(api.create(nullptr, &b, &err), 0) << err.message;
  }
  ~Plugin() {
    if (b)
      api.destroy(b);
    // The library stays loaded: gtest may still hold its strings.
  }
};

// One operand of a hand-built graph: its bytes (max_tokens rows for a token
// dim) and its tensor with GEMMAC_TOKENS_DIM where the token count goes.
struct Operand {
  std::vector<uint8_t> bytes;
  gemmac_tensor t{};
  std::vector<double> values; // decoded weight values
};

struct Builder {
  std::vector<Operand> ops;
  std::vector<gemmac_graph_node> nodes;
  std::vector<std::vector<int32_t>> dtypes; // per node: inputs then outputs
  std::mt19937 rng{7};
  static constexpr int64_t kMax = 8;

  uint32_t Act(int64_t cols) { // f32 [T, cols], random contents
    Operand o;
    o.bytes.resize(size_t(kMax * cols * 4));
    std::uniform_real_distribution<float> u(-1, 1);
    for (int64_t i = 0; i < kMax * cols; ++i) {
      float f = u(rng);
      std::memcpy(o.bytes.data() + 4 * i, &f, 4);
    }
    o.t = {sizeof(gemmac_tensor),
           nullptr,
           GEMMAC_DTYPE_F32,
           2,
           {GEMMAC_TOKENS_DIM, cols}};
    ops.push_back(std::move(o));
    return uint32_t(ops.size() - 1);
  }
  uint32_t Weight(int32_t dtype, int64_t rows, int64_t cols, float lo = -0.5f,
                  float hi = 0.5f) {
    std::vector<float> src(size_t(rows * cols));
    std::uniform_real_distribution<float> u(lo, hi);
    for (float &f : src)
      f = u(rng);
    EncodedWeight e = Encode(dtype, rows, cols, src);
    Operand o;
    o.bytes = e.bytes;
    o.values = e.values;
    o.t = {sizeof(gemmac_tensor),
           nullptr,
           dtype,
           rows == 1 ? 1 : 2,
           {rows == 1 ? cols : rows, rows == 1 ? 0 : cols}};
    ops.push_back(std::move(o));
    return uint32_t(ops.size() - 1);
  }
  // A node over operands `in` and `out`; operands are laid out per node
  // (inputs then outputs), so shared tensors are aliased by pointer.
  void Node(int32_t op, gemmac_op_attrs a, std::vector<uint32_t> in,
            std::vector<uint32_t> out) {
    gemmac_graph_node n{};
    n.struct_size = sizeof(n);
    n.desc.struct_size = sizeof(n.desc);
    n.desc.op = op;
    a.struct_size = sizeof(a);
    n.desc.attrs = a;
    n.num_inputs = uint32_t(in.size());
    n.num_outputs = uint32_t(out.size());
    std::vector<int32_t> dt;
    for (uint32_t i : in)
      dt.push_back(ops[i].t.dtype);
    for (uint32_t i : out)
      dt.push_back(ops[i].t.dtype);
    dtypes.push_back(dt);
    refs.push_back(in);
    refs.back().insert(refs.back().end(), out.begin(), out.end());
    nodes.push_back(n);
  }
  std::vector<std::vector<uint32_t>> refs; // per node: operand ids

  // The graph's flat operand list, one entry per node slot.
  std::vector<gemmac_tensor> flat;
  gemmac_graph_desc Desc(const int64_t *buckets, uint32_t nb) {
    flat.clear();
    for (size_t n = 0; n < nodes.size(); ++n) {
      nodes[n].first_input = uint32_t(flat.size());
      nodes[n].first_output = nodes[n].first_input + nodes[n].num_inputs;
      nodes[n].desc.num_inputs = nodes[n].num_inputs;
      nodes[n].desc.input_dtypes = dtypes[n].data();
      nodes[n].desc.num_outputs = nodes[n].num_outputs;
      nodes[n].desc.output_dtypes = dtypes[n].data() + nodes[n].num_inputs;
      for (uint32_t id : refs[n]) {
        gemmac_tensor t = ops[id].t;
        t.data = ops[id].bytes.data();
        flat.push_back(t);
      }
    }
    gemmac_graph_desc d{};
    d.struct_size = sizeof(d);
    d.name = "test";
    d.num_nodes = uint32_t(nodes.size());
    d.nodes = nodes.data();
    d.num_operands = uint32_t(flat.size());
    d.operands = flat.data();
    d.max_tokens = buckets[nb - 1];
    d.num_buckets = nb;
    d.buckets = buckets;
    return d;
  }
};

// Runs the nodes on the reference with T-row tensors over copies of `b`'s
// operand bytes; returns the copies (operand id -> bytes).
std::vector<std::vector<uint8_t>>
RunReference(Builder &b, int64_t T, int64_t past, const gemmac_kv_cache *kv,
             uint32_t num_kv, std::vector<std::vector<uint8_t>> state = {}) {
  Plugin ref(gemmac_tpu_test_reference_entry);
  if (state.empty())
    for (const Operand &o : b.ops)
      state.push_back(o.bytes);
  gemmac_exec_context ctx{sizeof(ctx), past, T, kv, num_kv, nullptr};
  for (size_t n = 0; n < b.nodes.size(); ++n) {
    gemmac_kernel *k = nullptr;
    gemmac_plugin_error err{sizeof(err), {}};
    gemmac_op_desc d = b.nodes[n].desc;
    d.input_dtypes = b.dtypes[n].data();
    d.output_dtypes = b.dtypes[n].data() + b.nodes[n].num_inputs;
    EXPECT_EQ(ref.api.prepare(ref.b, &d, &k, &err), 0) << err.message;
    std::vector<gemmac_tensor> ts;
    for (uint32_t id : b.refs[n]) {
      gemmac_tensor t = b.ops[id].t;
      if (t.shape[0] == GEMMAC_TOKENS_DIM)
        t.shape[0] = T;
      t.data = state[id].data();
      ts.push_back(t);
    }
    EXPECT_EQ(ref.api.launch(ref.b, k, ts.data(), b.nodes[n].num_inputs,
                             ts.data() + b.nodes[n].num_inputs,
                             b.nodes[n].num_outputs, &ctx, &err),
              0)
        << err.message;
    ref.api.release(ref.b, k);
  }
  return state;
}

const float *F(const std::vector<uint8_t> &v) {
  return reinterpret_cast<const float *>(v.data());
}

// sum_k |w[n,k] x[t,k]| for a linear's output (t, n).
double Magnitude(const Operand &w, const float *x, int64_t t, int64_t n) {
  const int64_t K = w.t.shape[1];
  double s = 0;
  for (int64_t k = 0; k < K; ++k)
    s += std::fabs(w.values[size_t(n * K + k)] * x[t * K + k]);
  return s;
}

class TpuGraph : public ::testing::Test {
protected:
  Plugin tpu{GEMMAC_TPU_PLUGIN};
};

// rms_norm -> linear q4g32 -> gelu_tanh -> linear bf16, buckets {1, 8}.
TEST_F(TpuGraph, MlpChainMatchesReferenceAtEveryBucket) {
  ASSERT_NE(tpu.api.compile_graph, nullptr);
  Builder b;
  gemmac_op_attrs a{};
  a.eps = 1e-6f;
  a.offset = 1.0f;
  const uint32_t x = b.Act(64), nw = b.Weight(GEMMAC_DTYPE_F32, 1, 64),
                 h = b.Act(64), w1 = b.Weight(GEMMAC_DTYPE_Q4G32, 160, 64),
                 u = b.Act(160), g = b.Act(160),
                 w2 = b.Weight(GEMMAC_DTYPE_BF16, 48, 160), y = b.Act(48);
  b.Node(GEMMAC_OP_RMS_NORM, a, {x, nw}, {h});
  b.Node(GEMMAC_OP_LINEAR, a, {h, w1}, {u});
  b.Node(GEMMAC_OP_GELU_TANH, a, {u}, {g});
  b.Node(GEMMAC_OP_LINEAR, a, {g, w2}, {y});
  const int64_t buckets[] = {1, 8};
  gemmac_graph_desc d = b.Desc(buckets, 2);
  gemmac_graph *graph = nullptr;
  gemmac_plugin_error err{sizeof(err), {}};
  ASSERT_EQ(tpu.api.compile_graph(tpu.b, &d, &graph, &err), 0) << err.message;
  ASSERT_NE(tpu.api.describe, nullptr);
  EXPECT_NE(std::string(tpu.api.describe(tpu.b)).find("MXU tiles"),
            std::string::npos);
  for (int64_t T : {1, 5}) {
    // Padding rows of the output (rows T..7) hold a sentinel that must stay.
    std::vector<uint8_t> &yb = b.ops[y].bytes;
    for (int64_t i = T * 48; i < 8 * 48; ++i) {
      const float s = 1234.5f;
      std::memcpy(yb.data() + 4 * i, &s, 4);
    }
    gemmac_exec_context ctx{sizeof(ctx), 0, T, nullptr, 0, nullptr};
    ASSERT_EQ(tpu.api.execute_graph(tpu.b, graph, &ctx, &err), 0)
        << err.message;
    auto want = RunReference(b, T, 0, nullptr, 0);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t n = 0; n < 64; ++n) // h: f32 on the VPU
        EXPECT_NEAR(F(b.ops[h].bytes)[t * 64 + n], F(want[h])[t * 64 + n],
                    1e-4 * (1 + std::fabs(F(want[h])[t * 64 + n])))
            << "h T=" << T << " [" << t << "," << n << "]";
      for (int64_t n = 0; n < 160; ++n) // u: one MXU linear on q4g32
        EXPECT_NEAR(
            F(b.ops[u].bytes)[t * 160 + n], F(want[u])[t * 160 + n],
            std::ldexp(1.0, -8) * Magnitude(b.ops[w1], F(want[h]), t, n) + 1e-4)
            << "u T=" << T << " [" << t << "," << n << "]";
      for (int64_t n = 0; n < 48; ++n)
        EXPECT_NEAR(
            F(yb)[t * 48 + n], F(want[y])[t * 48 + n],
            std::ldexp(1.0, -6) * Magnitude(b.ops[w2], F(want[g]), t, n) + 1e-4)
            << "y T=" << T << " [" << t << "," << n << "]";
    }
    for (int64_t i = T * 48; i < 8 * 48; ++i)
      ASSERT_EQ(F(yb)[i], 1234.5f) << "padding row " << i / 48 << " written";
  }
  // A call past the last bucket is refused, not run out of bounds.
  gemmac_exec_context big{sizeof(big), 0, 9, nullptr, 0, nullptr};
  EXPECT_EQ(tpu.api.execute_graph(tpu.b, graph, &big, &err),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err.message).find("bucket"), std::string::npos)
      << err.message;
  tpu.api.release_graph(tpu.b, graph);
}

// qkv_proj (q8c) -> attention over an f32 ring cache -> linear (q4g32r8):
// a prefill of 5 tokens (bucket 8), then two decode steps (bucket 1).
TEST_F(TpuGraph, AttentionPrefillThenDecodeMatchesReference) {
  Builder b;
  gemmac_op_attrs a{};
  a.eps = 1e-6f;
  a.offset = 1.0f;
  a.theta = 10000.0f;
  a.rope_scale = 1.0f;
  a.head_dim = 16;
  a.num_heads = 4;
  a.num_kv_heads = 2;
  a.scale = 0.25f;
  a.window = 4;
  a.softcap = 20.0f;
  a.layer = 0;
  const uint32_t x = b.Act(64), nw = b.Weight(GEMMAC_DTYPE_F32, 1, 64),
                 wq = b.Weight(GEMMAC_DTYPE_Q8C, 64, 64),
                 wk = b.Weight(GEMMAC_DTYPE_Q8C, 32, 64),
                 wv = b.Weight(GEMMAC_DTYPE_Q4G32, 32, 64),
                 qn = b.Weight(GEMMAC_DTYPE_F32, 1, 16),
                 kn = b.Weight(GEMMAC_DTYPE_F32, 1, 16), q = b.Act(64),
                 k = b.Act(32), v = b.Act(32), o = b.Act(64),
                 wo = b.Weight(GEMMAC_DTYPE_Q4G32R8, 64, 64), y = b.Act(64);
  b.Node(GEMMAC_OP_QKV_PROJ, a, {x, nw, wq, wk, wv, qn, kn}, {q, k, v});
  b.Node(GEMMAC_OP_ATTENTION, a, {q, k, v}, {o});
  b.Node(GEMMAC_OP_LINEAR, a, {o, wo}, {y});
  const int64_t buckets[] = {1, 8};
  gemmac_graph_desc d = b.Desc(buckets, 2);
  gemmac_graph *graph = nullptr;
  gemmac_plugin_error err{sizeof(err), {}};
  ASSERT_EQ(tpu.api.compile_graph(tpu.b, &d, &graph, &err), 0) << err.message;
  const int cap = 6; // a ring smaller than the 7 positions, >= window + T - 1
  std::vector<float> tk(cap * 32), tv(cap * 32), rk(cap * 32), rv(cap * 32);
  gemmac_kv_cache tkv{sizeof(tkv), tk.data(), tv.data(), GEMMAC_DTYPE_F32, cap,
                      2,           16,        nullptr,   nullptr};
  gemmac_kv_cache rkv{sizeof(rkv), rk.data(), rv.data(), GEMMAC_DTYPE_F32, cap,
                      2,           16,        nullptr,   nullptr};
  std::vector<std::vector<uint8_t>> state;
  int64_t past = 0;
  for (int64_t T : {5, 1, 1}) {
    // Fresh tokens for this call, the same on both sides.
    std::mt19937 rng(uint32_t(past + 1));
    std::uniform_real_distribution<float> uni(-1, 1);
    for (int64_t i = 0; i < T * 64; ++i) {
      float f = uni(rng);
      std::memcpy(b.ops[x].bytes.data() + 4 * i, &f, 4);
    }
    if (!state.empty())
      state[x] = b.ops[x].bytes;
    gemmac_exec_context ctx{sizeof(ctx), past, T, &tkv, 1, nullptr};
    ASSERT_EQ(tpu.api.execute_graph(tpu.b, graph, &ctx, &err), 0)
        << err.message;
    state = RunReference(b, T, past, &rkv, 1, state);
    for (int64_t i = 0; i < T * 64; ++i) {
      const double ref = F(state[o])[i];
      EXPECT_NEAR(F(b.ops[o].bytes)[i], ref, 2e-2 * (1 + std::fabs(ref)))
          << "attention out, past " << past << " element " << i;
    }
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = 0; n < 64; ++n)
        EXPECT_NEAR(F(b.ops[y].bytes)[t * 64 + n], F(state[y])[t * 64 + n],
                    std::ldexp(1.0, -6) *
                            Magnitude(b.ops[wo], F(state[o]), t, n) +
                        1e-3)
            << "y, past " << past << " [" << t << "," << n << "]";
    // The cache holds the f32 k/v rows (only projection rounding apart).
    for (int i = 0; i < cap * 32; ++i) {
      EXPECT_NEAR(tk[size_t(i)], rk[size_t(i)],
                  2e-2 * (1 + std::fabs(rk[size_t(i)])))
          << "k cache element " << i;
      EXPECT_NEAR(tv[size_t(i)], rv[size_t(i)],
                  2e-2 * (1 + std::fabs(rv[size_t(i)])))
          << "v cache element " << i;
    }
    past += T;
  }
  tpu.api.release_graph(tpu.b, graph);
}

// A node the plugin does not implement makes compile_graph refuse the whole
// function with UNSUPPORTED (the runtime then falls back to kernels), and
// the message names the node.
TEST_F(TpuGraph, RefusesUnsupportedNodeNamingIt) {
  Builder b;
  gemmac_op_attrs a{};
  a.eps = 1e-6f;
  a.offset = 1.0f;
  const uint32_t x = b.Act(64), nw = b.Weight(GEMMAC_DTYPE_F32, 1, 64),
                 h = b.Act(64), w = b.Weight(GEMMAC_DTYPE_F32, 32, 64),
                 y = b.Act(32);
  b.Node(GEMMAC_OP_RMS_NORM, a, {x, nw}, {h});
  b.Node(GEMMAC_OP_LINEAR, a, {h, w}, {y});
  // An i8 weight: no op takes it, so the plugin cannot schedule node 1.
  b.ops[w].t.dtype = GEMMAC_DTYPE_I8;
  b.dtypes[1][1] = GEMMAC_DTYPE_I8;
  const int64_t buckets[] = {1, 8};
  gemmac_graph_desc d = b.Desc(buckets, 2);
  gemmac_graph *graph = nullptr;
  gemmac_plugin_error err{sizeof(err), {}};
  EXPECT_EQ(tpu.api.compile_graph(tpu.b, &d, &graph, &err),
            GEMMAC_PLUGIN_UNSUPPORTED);
  EXPECT_NE(std::string(err.message).find("node 1 (linear)"), std::string::npos)
      << err.message;
  // An unknown op code likewise.
  b.dtypes[1][1] = GEMMAC_DTYPE_F32;
  b.ops[w].t.dtype = GEMMAC_DTYPE_F32;
  b.nodes[1].desc.op = 99;
  d = b.Desc(buckets, 2);
  EXPECT_EQ(tpu.api.compile_graph(tpu.b, &d, &graph, &err),
            GEMMAC_PLUGIN_UNSUPPORTED);
  EXPECT_NE(std::string(err.message).find("node 1"), std::string::npos)
      << err.message;
}

} // namespace
