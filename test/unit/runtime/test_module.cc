#include "test_module.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

#include "flatbuffers/flatbuffers.h"

namespace gemmac {
namespace test {
namespace {

using schema::DType;
using schema::OpCode;

struct Builder {
  TestModule *m;
  uint32_t rng;
  uint64_t arena = 0;

  float Rand() { // uniform in [-1, 1), deterministic
    rng = rng * 1664525u + 1013904223u;
    return float((rng >> 8) & 0xFFFF) / 32768.0f - 1.0f;
  }

  uint32_t AddWeight(const std::string &name, std::vector<int64_t> shape,
                     DType dtype, float scale, float bias = 0.f) {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    std::vector<float> vals(n);
    size_t es = dtype == DType::F32 ? 4 : 2;
    while (m->weights.size() % 64)
      m->weights.push_back(0);
    uint64_t off = m->weights.size();
    if (dtype == DType::Q8C || dtype == DType::Q4G32 ||
        dtype == DType::Q4G128 || dtype == DType::Q4G32R8) {
      if (shape.size() != 2)
        throw std::runtime_error(name + ": a quantized weight is 2-D");
      for (float &v : vals)
        v = bias + scale * Rand();
      m->values[name] =
          QuantizeMatrix(vals, shape[0], shape[1], dtype, &m->weights);
      auto t = std::make_unique<schema::TensorT>();
      t->name = name;
      t->dtype = dtype;
      t->shape = shape;
      t->storage = schema::StorageKind::Weight;
      t->segment = 0;
      t->offset = off;
      t->size_bytes = m->weights.size() - off;
      m->program.tensors.push_back(std::move(t));
      return uint32_t(m->program.tensors.size() - 1);
    }
    for (int64_t i = 0; i < n; ++i) {
      float v = bias + scale * Rand();
      if (dtype == DType::BF16) {
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        uint16_t h = uint16_t(bits >> 16); // truncate: exact in bf16
        bits = uint32_t(h) << 16;
        std::memcpy(&v, &bits, 4);
        m->weights.push_back(h & 0xFF);
        m->weights.push_back(h >> 8);
      } else {
        uint8_t b[4];
        std::memcpy(b, &v, 4);
        m->weights.insert(m->weights.end(), b, b + 4);
      }
      vals[i] = v;
    }
    m->values[name] = vals;
    auto t = std::make_unique<schema::TensorT>();
    t->name = name;
    t->dtype = dtype;
    t->shape = shape;
    t->storage = schema::StorageKind::Weight;
    t->segment = 0;
    t->offset = off;
    t->size_bytes = n * es;
    m->program.tensors.push_back(std::move(t));
    return uint32_t(m->program.tensors.size() - 1);
  }

  uint32_t AddArena(const std::string &name, std::vector<int64_t> shape,
                    DType dtype = DType::F32) {
    uint64_t n = 1;
    for (int64_t d : shape)
      n *= d == kTokensDim ? uint64_t(m->cfg.prefill_max) : uint64_t(d);
    auto t = std::make_unique<schema::TensorT>();
    t->name = name;
    t->dtype = dtype;
    t->shape = shape;
    t->storage = schema::StorageKind::Arena;
    arena = (arena + 63) / 64 * 64;
    t->offset = arena;
    t->size_bytes = n * 4;
    arena += n * 4;
    m->program.tensors.push_back(std::move(t));
    return uint32_t(m->program.tensors.size() - 1);
  }

  std::unique_ptr<schema::InstructionT>
  Ins(OpCode op, std::vector<uint32_t> in, uint32_t out,
      std::function<void(schema::OpAttributesT &)> attrs = {}) {
    return Ins(op, std::move(in), std::vector<uint32_t>{out}, attrs);
  }
  std::unique_ptr<schema::InstructionT>
  Ins(OpCode op, std::vector<uint32_t> in, std::vector<uint32_t> out,
      std::function<void(schema::OpAttributesT &)> attrs = {}) {
    auto i = std::make_unique<schema::InstructionT>();
    i->op = op;
    i->inputs = std::move(in);
    i->outputs = std::move(out);
    i->attrs = std::make_unique<schema::OpAttributesT>();
    if (attrs)
      attrs(*i->attrs);
    i->location = "test.mlir:" + std::to_string(arena % 1000);
    return i;
  }
};

} // namespace

uint16_t FloatToHalf(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  uint16_t sign = uint16_t((bits >> 16) & 0x8000);
  double a = std::fabs(double(f));
  if (a == 0)
    return sign;
  if (a < std::ldexp(1.0, -14)) // subnormal: units of 2^-24
    return uint16_t(sign | uint16_t(std::nearbyint(a * std::ldexp(1.0, 24))));
  int e = 0;
  std::frexp(a, &e); // a = m * 2^e, m in [0.5, 1)
  int E = e - 1;     // a = 1.f * 2^E
  long man = std::lrint((a / std::ldexp(1.0, E) - 1.0) * 1024.0);
  if (man == 1024) {
    man = 0;
    ++E;
  }
  if (E > 15)
    return uint16_t(sign | 0x7C00); // overflow: inf
  return uint16_t(sign | uint16_t((E + 15) << 10) | uint16_t(man));
}

float HalfToFloat(uint16_t h) {
  int exp = (h >> 10) & 31, man = h & 1023;
  double v = exp == 0    ? std::ldexp(double(man), -24)
             : exp == 31 ? (man ? NAN : INFINITY)
                         : std::ldexp(double(man | 1024), exp - 25);
  return float(h & 0x8000 ? -v : v);
}

std::vector<float> QuantizeMatrix(const std::vector<float> &w, int64_t rows,
                                  int64_t cols, schema::DType dtype,
                                  std::vector<uint8_t> *out) {
  std::vector<float> deq(w.size());
  auto put16 = [&](uint16_t v) {
    out->push_back(uint8_t(v & 0xFF));
    out->push_back(uint8_t(v >> 8));
  };
  if (dtype == DType::Q8C) {
    // int8 q[rows][cols], then f32 scale[rows]; scale = max|w_row| / 127.
    std::vector<float> scales(rows);
    for (int64_t r = 0; r < rows; ++r) {
      float mx = 0;
      for (int64_t c = 0; c < cols; ++c)
        mx = std::max(mx, std::fabs(w[r * cols + c]));
      scales[r] = mx / 127.0f;
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        float v = w[r * cols + c];
        long q = scales[r] > 0 ? std::lrint(v / scales[r]) : 0;
        q = std::max(-127L, std::min(127L, q));
        out->push_back(uint8_t(int8_t(q)));
        deq[r * cols + c] = float(q) * scales[r];
      }
    for (float sc : scales) {
      uint8_t b[4];
      std::memcpy(b, &sc, 4);
      out->insert(out->end(), b, b + 4);
    }
    return deq;
  }
  if (dtype == DType::Q4G32R8) {
    // Q4G32's blocks, moved so that each group of 8 rows stores, per
    // 32-column block, the 8 rows' f16 d and then their 16-byte qs.
    if (rows % 8 != 0)
      throw std::runtime_error("QuantizeMatrix: q4g32r8 rows not a multiple "
                               "of 8");
    std::vector<uint8_t> q4;
    std::vector<float> deq4 = QuantizeMatrix(w, rows, cols, DType::Q4G32, &q4);
    const int64_t blocks = cols / 32;
    const size_t start = out->size();
    out->resize(start + q4.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t *blk = &q4[size_t((r * blocks + b) * 18)];
        uint8_t *run = out->data() + start + ((r / 8) * blocks + b) * 144;
        std::memcpy(run + 2 * (r % 8), blk, 2);
        std::memcpy(run + 16 + 16 * (r % 8), blk + 2, 16);
      }
    return deq4;
  }
  const int64_t G = dtype == DType::Q4G32 ? 32 : 128;
  if (dtype != DType::Q4G32 && dtype != DType::Q4G128)
    throw std::runtime_error("QuantizeMatrix: not a quantized dtype");
  if (cols % G != 0)
    throw std::runtime_error("QuantizeMatrix: cols not a multiple of the "
                             "group");
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b0 = 0; b0 < cols; b0 += G) {
      const float *x = &w[r * cols + b0];
      float *y = &deq[r * cols + b0];
      std::vector<int> nib(G);
      if (G == 32) {
        // Symmetric: d = m / -8, m the element of largest magnitude.
        float m = 0;
        for (int64_t j = 0; j < G; ++j)
          if (std::fabs(x[j]) > std::fabs(m))
            m = x[j];
        uint16_t dh = FloatToHalf(m / -8.0f);
        float d = HalfToFloat(dh);
        put16(dh);
        for (int64_t j = 0; j < G; ++j) {
          long q = d != 0 ? std::lrint(x[j] / d) + 8 : 8;
          nib[j] = int(std::max(0L, std::min(15L, q)));
          y[j] = float(nib[j] - 8) * d;
        }
      } else {
        // Asymmetric: w = nibble * d + m, m the minimum, d = (max-min)/15.
        float lo = x[0], hi = x[0];
        for (int64_t j = 0; j < G; ++j) {
          lo = std::min(lo, x[j]);
          hi = std::max(hi, x[j]);
        }
        uint16_t dh = FloatToHalf((hi - lo) / 15.0f), mh = FloatToHalf(lo);
        float d = HalfToFloat(dh), m = HalfToFloat(mh);
        put16(dh);
        put16(mh);
        for (int64_t j = 0; j < G; ++j) {
          long q = d != 0 ? std::lrint((x[j] - m) / d) : 0;
          nib[j] = int(std::max(0L, std::min(15L, q)));
          y[j] = float(nib[j]) * d + m;
        }
      }
      // Element j < G/2 is the low nibble of byte j, the rest the high
      // nibble of byte j - G/2.
      for (int64_t j = 0; j < G / 2; ++j)
        out->push_back(uint8_t(nib[j] | (nib[j + G / 2] << 4)));
    }
  return deq;
}

std::string ReadFile(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string TestTokenizerBytes() { return ReadFile(GEMMAC_RUNTIME_TEST_SPM); }

std::string TempPath(const std::string &name) {
  const char *dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/gemmac_rt_" +
         std::to_string(getpid()) + "_" + name;
}

TestModule BuildTinyGemma(const TinyConfig &cfg) {
  TestModule m;
  m.cfg = cfg;
  Builder b{&m, cfg.seed};
  std::string tok = TestTokenizerBytes();
  if (tok.empty())
    throw std::runtime_error("test tokenizer missing");
  auto &p = m.program;
  p.producer = "runtime unit test";
  p.tokenizer.assign(tok.begin(), tok.end());
  // The vocabulary size: count pieces by loading is the runtime's job; the
  // test trains with --vocab_size=GEMMAC_RUNTIME_TEST_VOCAB.
  m.rows = GEMMAC_RUNTIME_TEST_VOCAB;
  p.tokenizer_vocab_size = m.rows;
  const int H = cfg.hidden, NH = cfg.heads, KV = cfg.kv_heads, D = cfg.head_dim,
            F = cfg.ff, V = m.rows + cfg.pad_rows;

  p.config = std::make_unique<schema::ModelConfigT>();
  auto &c = *p.config;
  c.family = schema::ModelFamily::Gemma3;
  c.architecture = "Gemma3ForCausalLM";
  c.hidden_size = H;
  c.intermediate_size = F;
  c.num_layers = cfg.layers;
  c.num_heads = NH;
  c.num_kv_heads = KV;
  c.head_dim = D;
  c.vocab_size = V;
  c.max_context = cfg.max_context;
  c.sliding_window = cfg.window;
  c.rope_theta = 1000000.f;
  c.rope_local_theta = 10000.f;
  c.rms_norm_eps = 1e-6f;
  c.query_pre_attn_scalar = float(D);
  c.final_softcap = cfg.final_softcap;
  p.special_tokens = std::make_unique<schema::SpecialTokensT>();
  auto &st = *p.special_tokens;
  st.pad = 0;
  st.eos = 1;
  st.bos = 2;
  st.unk = 3;
  st.start_of_turn = 4;
  st.end_of_turn = 5;
  st.stop = {1, 5};
  p.chat = std::make_unique<schema::ChatFormatT>();
  p.chat->turn_start = "<start_of_turn>";
  p.chat->turn_end = "<end_of_turn>";
  p.chat->user_role = "user";
  p.chat->model_role = "model";
  p.chat->system = schema::SystemPrompt::FoldIntoFirstUser;

  const int64_t T = kTokensDim;
  const uint32_t kNone = 0xFFFFFFFFu; // an absent optional input
  if (cfg.last_logits_only && !cfg.fused)
    throw std::runtime_error("last_logits_only needs fused (final_head)");
  uint32_t tokens = b.AddArena("tokens", {T}, DType::I32);
  DType embed_dtype = cfg.embed_quant != DType::F32 ? cfg.embed_quant
                      : cfg.bf16_embed              ? DType::BF16
                                                    : DType::F32;
  uint32_t table = b.AddWeight("embed", {V, H}, embed_dtype, 1.0f);

  // Every layer's weights first, in one fixed order, so that a fused and an
  // unfused module of one seed hold the same weights.
  struct LayerWeights {
    uint32_t input_norm, q, q_norm = kNone, k, k_norm = kNone, v, o,
                            post_attn_norm, pre_ff_norm, gate, up, down,
                            post_ff_norm;
  };
  std::vector<LayerWeights> lw(cfg.layers);
  for (int l = 0; l < cfg.layers; ++l) {
    std::string L = "l" + std::to_string(l) + ".";
    auto norm_w = [&](const std::string &n, int64_t d) {
      return b.AddWeight(L + n, {d}, DType::F32, 0.2f);
    };
    auto lin_w = [&](const std::string &n, int64_t rows, int64_t cols) {
      return b.AddWeight(L + n, {rows, cols}, cfg.linear_dtype,
                         1.0f / std::sqrt(float(cols)));
    };
    LayerWeights &w = lw[l];
    w.input_norm = norm_w("input_norm", H);
    w.q = lin_w("q", NH * D, H);
    if (cfg.qk_norm)
      w.q_norm = norm_w("q_norm", D);
    w.k = lin_w("k", KV * D, H);
    if (cfg.qk_norm)
      w.k_norm = norm_w("k_norm", D);
    w.v = lin_w("v", KV * D, H);
    w.o = lin_w("o", H, NH * D);
    w.post_attn_norm = norm_w("post_attn_norm", H);
    w.pre_ff_norm = norm_w("pre_ff_norm", H);
    w.gate = lin_w("gate", F, H);
    w.up = lin_w("up", F, H);
    w.down = lin_w("down", H, F);
    w.post_ff_norm = norm_w("post_ff_norm", H);
  }
  uint32_t fw = b.AddWeight("final_norm", {H}, DType::F32, 0.2f);

  std::vector<std::unique_ptr<schema::InstructionT>> ins;
  uint32_t x = b.AddArena("x0", {T, H});
  ins.push_back(b.Ins(OpCode::Embed, {tokens, table}, x,
                      [&](auto &a) { a.scale = std::sqrt(float(H)); }));
  // Fused: the normalized input of the next layer, when add_rms_norm made
  // it (then qkv_proj leaves its `norm` absent).
  uint32_t h_next = kNone;
  for (int l = 0; l < cfg.layers; ++l) {
    std::string L = "l" + std::to_string(l) + ".";
    const LayerWeights &w = lw[l];
    bool sliding = l % 2 == 0;
    float theta = sliding ? 10000.f : 1000000.f;
    auto norm = [&](uint32_t in, uint32_t wt, const std::string &n,
                    int64_t width) {
      uint32_t out = b.AddArena(L + n + ".out", {T, width});
      ins.push_back(b.Ins(OpCode::RmsNorm, {in, wt}, out,
                          [&](auto &a) { a.eps = 1e-6f; }));
      return out;
    };
    auto linear = [&](uint32_t in, uint32_t wt, const std::string &n,
                      int64_t width) {
      uint32_t out = b.AddArena(L + n + ".out", {T, width});
      ins.push_back(b.Ins(OpCode::Linear, {in, wt}, out));
      return out;
    };
    auto rope = [&](uint32_t in, int64_t width, const std::string &n) {
      uint32_t out = b.AddArena(L + n, {T, width});
      ins.push_back(b.Ins(OpCode::Rope, {in}, out, [&](auto &a) {
        a.head_dim = D;
        a.theta = theta;
      }));
      return out;
    };
    uint32_t q, k, v;
    if (cfg.fused) {
      q = b.AddArena(L + "q_rope", {T, NH * D});
      k = b.AddArena(L + "k_rope", {T, KV * D});
      v = b.AddArena(L + "v.out", {T, KV * D});
      bool folded = h_next == kNone; // the input norm is done here
      ins.push_back(b.Ins(OpCode::QkvProj,
                          {folded ? x : h_next, folded ? w.input_norm : kNone,
                           w.q, w.k, w.v, w.q_norm, w.k_norm},
                          {q, k, v}, [&](auto &a) {
                            a.head_dim = D;
                            a.num_heads = NH;
                            a.num_kv_heads = KV;
                            a.theta = theta;
                            a.eps = 1e-6f;
                          }));
    } else {
      uint32_t h = norm(x, w.input_norm, "input_norm", H);
      uint32_t qa = linear(h, w.q, "q", NH * D);
      if (cfg.qk_norm)
        qa = norm(qa, w.q_norm, "q_norm", NH * D);
      q = rope(qa, NH * D, "q_rope");
      uint32_t ka = linear(h, w.k, "k", KV * D);
      if (cfg.qk_norm)
        ka = norm(ka, w.k_norm, "k_norm", KV * D);
      k = rope(ka, KV * D, "k_rope");
      v = linear(h, w.v, "v", KV * D);
    }
    uint32_t att = b.AddArena(L + "att", {T, NH * D});
    ins.push_back(b.Ins(OpCode::Attention, {q, k, v}, att, [&](auto &a) {
      a.layer = l;
      a.num_heads = NH;
      a.num_kv_heads = KV;
      a.head_dim = D;
      a.scale = 1.0f / std::sqrt(float(D));
      a.window = sliding ? cfg.window : 0;
      a.softcap = l == 1 ? 5.0f : 0.0f; // Gemma 2's attention soft-cap
    }));
    uint32_t o =
        norm(linear(att, w.o, "o", H), w.post_attn_norm, "post_attn_norm", H);
    uint32_t x1 = b.AddArena(L + "x1", {T, H});
    uint32_t mm;
    if (cfg.fused) {
      mm = b.AddArena(L + "mlp", {T, F});
      if (sliding) {
        // add_rms_norm hands gated_mlp a normalized input: `norm` absent.
        uint32_t h2 = b.AddArena(L + "pre_ff_norm.out", {T, H});
        ins.push_back(b.Ins(OpCode::AddRmsNorm, {x, o, w.pre_ff_norm}, {x1, h2},
                            [&](auto &a) { a.eps = 1e-6f; }));
        ins.push_back(b.Ins(OpCode::GatedMlp, {h2, kNone, w.gate, w.up}, mm,
                            [&](auto &a) { a.eps = 1e-6f; }));
      } else {
        // A plain add, and gated_mlp folds the norm itself.
        ins.push_back(b.Ins(OpCode::Add, {x, o}, x1));
        ins.push_back(b.Ins(OpCode::GatedMlp, {x1, w.pre_ff_norm, w.gate, w.up},
                            mm, [&](auto &a) { a.eps = 1e-6f; }));
      }
    } else {
      ins.push_back(b.Ins(OpCode::Add, {x, o}, x1));
      uint32_t h2 = norm(x1, w.pre_ff_norm, "pre_ff_norm", H);
      uint32_t g = linear(h2, w.gate, "gate", F);
      uint32_t gg = b.AddArena(L + "gelu", {T, F});
      ins.push_back(b.Ins(OpCode::GeluTanh, {g}, gg));
      uint32_t u = linear(h2, w.up, "up", F);
      mm = b.AddArena(L + "mul", {T, F});
      ins.push_back(b.Ins(OpCode::Mul, {gg, u}, mm));
    }
    uint32_t dn = linear(mm, w.down, "down", H);
    uint32_t sc = b.AddArena(L + "half", {T, H});
    ins.push_back(
        b.Ins(OpCode::Scale, {dn}, sc, [](auto &a) { a.scale = 0.5f; }));
    uint32_t post = norm(sc, w.post_ff_norm, "post_ff_norm", H);
    uint32_t x2 = b.AddArena(L + "x2", {T, H});
    h_next = kNone;
    if (cfg.fused && l + 1 < cfg.layers) {
      // The residual add and the next layer's input norm in one op.
      h_next = b.AddArena(L + "next_input_norm.out", {T, H});
      ins.push_back(b.Ins(OpCode::AddRmsNorm, {x1, post, lw[l + 1].input_norm},
                          {x2, h_next}, [&](auto &a) { a.eps = 1e-6f; }));
    } else {
      ins.push_back(b.Ins(OpCode::Add, {x1, post}, x2));
    }
    x = x2;

    auto kv = std::make_unique<schema::KvLayerT>();
    kv->num_kv_heads = KV;
    kv->head_dim = D;
    kv->window = sliding ? cfg.window : 0;
    kv->capacity = sliding ? cfg.window + cfg.prefill_max - 1 : 0;
    kv->dtype = cfg.kv_i8 ? DType::I8 : DType::F32;
    p.kv_layers.push_back(std::move(kv));
  }
  uint32_t logits, logits_last = kNone;
  if (cfg.fused) {
    logits = b.AddArena("logits", {T, m.rows});
    auto head = [&](auto &a) {
      a.rows = m.rows;
      a.eps = 1e-6f;
      a.softcap = cfg.final_softcap;
    };
    ins.push_back(b.Ins(OpCode::FinalHead, {x, fw, table}, logits, head));
    if (cfg.last_logits_only)
      logits_last = b.AddArena("logits.last", {1, m.rows});
  } else {
    uint32_t xn = b.AddArena("final_norm.out", {T, H});
    ins.push_back(b.Ins(OpCode::RmsNorm, {x, fw}, xn));
    uint32_t raw = b.AddArena("lm_head.out", {T, m.rows});
    ins.push_back(b.Ins(OpCode::LmHead, {xn, table}, raw,
                        [&](auto &a) { a.rows = m.rows; }));
    logits = b.AddArena("logits", {T, m.rows});
    ins.push_back(b.Ins(OpCode::Softcap, {raw}, logits,
                        [&](auto &a) { a.softcap = cfg.final_softcap; }));
  }

  // What a runtime must know to run this module, as gemma-compile lists it.
  auto need = [&](const std::string &f) {
    if (std::find(p.required_features.begin(), p.required_features.end(), f) ==
        p.required_features.end())
      p.required_features.push_back(f);
  };
  static const std::map<DType, std::string> kQuantName = {
      {DType::Q8C, "q8c"},
      {DType::Q4G32, "q4g32"},
      {DType::Q4G128, "q4g128"},
      {DType::Q4G32R8, "q4g32r8"}};
  if (cfg.fused)
    for (const char *f :
         {"op:qkv_proj", "op:add_rms_norm", "op:gated_mlp", "op:final_head"})
      need(f);
  std::string quant;
  if (kQuantName.count(cfg.linear_dtype)) {
    need("dtype:" + kQuantName.at(cfg.linear_dtype));
    quant = kQuantName.at(cfg.linear_dtype);
  }
  if (kQuantName.count(cfg.embed_quant)) {
    need("dtype:" + kQuantName.at(cfg.embed_quant));
    quant += (quant.empty() ? "" : ", ") + std::string("embed=") +
             kQuantName.at(cfg.embed_quant);
  }
  if (cfg.kv_i8)
    need("kv:i8");
  p.quantization = quant;

  for (const char *name : {"prefill", "decode"}) {
    bool prefill = std::string(name) == "prefill";
    auto f = std::make_unique<schema::FunctionT>();
    f->name = name;
    f->max_tokens = prefill ? cfg.prefill_max : 1;
    f->arena_bytes = b.arena;
    f->inputs = {tokens};
    f->outputs = {logits};
    for (const auto &i : ins) {
      auto copy = std::make_unique<schema::InstructionT>();
      copy->op = i->op;
      copy->inputs = i->inputs;
      copy->outputs = i->outputs;
      copy->attrs = std::make_unique<schema::OpAttributesT>(*i->attrs);
      copy->location = i->location;
      f->instructions.push_back(std::move(copy));
    }
    if (prefill && logits_last != kNone) {
      // --prefill-logits=last: final_head writes one row.
      f->instructions.back()->outputs = {logits_last};
      f->outputs = {logits_last};
    }
    p.functions.push_back(std::move(f));
  }
  while (m.weights.size() % 64)
    m.weights.push_back(0);
  auto seg = std::make_unique<schema::SegmentT>();
  seg->size = m.weights.size();
  seg->checksum = Fnv1a64(m.weights.data(), m.weights.size());
  p.segments.push_back(std::move(seg));
  return m;
}

std::vector<uint8_t>
WriteModule(const TestModule &m, const std::string &path,
            const std::function<void(ModuleHeader &)> &tweak_header) {
  // The object API's unique_ptrs make ModuleT move-only: pack, then unpack
  // a private copy to place the segment offsets in.
  flatbuffers::FlatBufferBuilder fbb0;
  fbb0.Finish(schema::Module::Pack(fbb0, &m.program),
              schema::ModuleIdentifier());
  std::unique_ptr<schema::ModuleT> copy(
      schema::GetModule(fbb0.GetBufferPointer())->UnPack());
  uint64_t seg_offset = uint64_t(1) << 40; // placeholder, same encoded size
  std::vector<uint8_t> program;
  for (int pass = 0; pass < 3; ++pass) {
    for (auto &s : copy->segments)
      if (s->offset == 0 || pass > 0)
        s->offset = seg_offset;
    flatbuffers::FlatBufferBuilder fbb;
    fbb.Finish(schema::Module::Pack(fbb, copy.get()),
               schema::ModuleIdentifier());
    program.assign(fbb.GetBufferPointer(),
                   fbb.GetBufferPointer() + fbb.GetSize());
    uint64_t next = (64 + program.size() + 4095) / 4096 * 4096;
    if (next == seg_offset)
      break;
    seg_offset = next;
  }
  ModuleHeader h{};
  std::memcpy(h.magic, kModuleMagic, 8);
  h.version_major = kModuleVersionMajor;
  h.version_minor = kModuleVersionMinor;
  h.program_offset = 64;
  h.program_size = program.size();
  h.weights_offset = seg_offset;
  h.weights_size = m.weights.size();
  h.file_size = seg_offset + m.weights.size();
  if (tweak_header)
    tweak_header(h);
  std::vector<uint8_t> bytes(seg_offset + m.weights.size(), 0);
  std::memcpy(bytes.data(), &h, 64);
  std::memcpy(bytes.data() + 64, program.data(), program.size());
  std::memcpy(bytes.data() + seg_offset, m.weights.data(), m.weights.size());
  WriteBytes(path, bytes);
  return bytes;
}

void WriteBytes(const std::string &path, const std::vector<uint8_t> &bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
}

// ---- the reference: whole sequence at once, causal mask, no cache ---------

namespace {

using Mat = std::vector<float>; // row-major [T, width]

Mat RmsNorm(const Mat &x, int64_t width, const std::vector<float> &w) {
  int64_t D = w.size();
  Mat y(x.size());
  for (size_t r = 0; r < x.size() / width; ++r)
    for (int64_t g = 0; g < width; g += D) {
      double ss = 0;
      for (int64_t i = 0; i < D; ++i)
        ss += double(x[r * width + g + i]) * x[r * width + g + i];
      double inv = 1.0 / std::sqrt(ss / D + 1e-6);
      for (int64_t i = 0; i < D; ++i)
        y[r * width + g + i] = float(x[r * width + g + i] * inv * (1.0 + w[i]));
    }
  return y;
}

Mat Linear(const Mat &x, int64_t k, const std::vector<float> &w, int64_t n) {
  size_t rows = x.size() / k;
  Mat y(rows * n);
  for (size_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < n; ++o) {
      double acc = 0;
      for (int64_t i = 0; i < k; ++i)
        acc += double(x[r * k + i]) * w[o * k + i];
      y[r * n + o] = float(acc);
    }
  return y;
}

void Rope(Mat &x, int64_t width, int64_t D, double theta) {
  size_t rows = x.size() / width;
  for (size_t t = 0; t < rows; ++t)
    for (int64_t h = 0; h < width / D; ++h)
      for (int64_t i = 0; i < D / 2; ++i) {
        double freq = 1.0 / std::pow(theta, double(2 * i) / D);
        double c = std::cos(t * freq), s = std::sin(t * freq);
        float &a = x[t * width + h * D + i];
        float &b = x[t * width + h * D + i + D / 2];
        float a0 = a, b0 = b;
        a = float(a0 * c - b0 * s);
        b = float(b0 * c + a0 * s);
      }
}

// What an int8 KV cache keeps of rows [T, KV*D]: per position and KV head,
// scale = max|x| / 127 and x ~ round(x / scale) * scale (plugin.h,
// gemmac_kv_cache). Computed in f32, as the cache stores f32 scales.
void KvInt8RoundTrip(Mat &x, int64_t KV, int64_t D) {
  for (size_t r = 0; r < x.size() / (KV * D); ++r)
    for (int64_t g = 0; g < KV; ++g) {
      float *p = &x[(r * KV + g) * D];
      float mx = 0;
      for (int64_t i = 0; i < D; ++i)
        mx = std::max(mx, std::fabs(p[i]));
      float scale = mx / 127.0f;
      for (int64_t i = 0; i < D; ++i) {
        float q = scale > 0 ? std::nearbyint(p[i] / scale) : 0.0f;
        p[i] = std::max(-127.0f, std::min(127.0f, q)) * scale;
      }
    }
}

} // namespace

std::vector<float> ReferenceLogits(const TestModule &m,
                                   const std::vector<int32_t> &tokens) {
  const TinyConfig &cfg = m.cfg;
  const int64_t H = cfg.hidden, NH = cfg.heads, KV = cfg.kv_heads,
                D = cfg.head_dim, F = cfg.ff, T = tokens.size();
  auto W = [&](const std::string &n) -> const std::vector<float> & {
    return m.values.at(n);
  };
  Mat x(T * H);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h)
      x[t * H + h] = W("embed")[tokens[t] * H + h] * std::sqrt(float(H));
  for (int l = 0; l < cfg.layers; ++l) {
    std::string L = "l" + std::to_string(l) + ".";
    bool sliding = l % 2 == 0;
    double theta = sliding ? 10000.0 : 1000000.0;
    Mat h = RmsNorm(x, H, W(L + "input_norm"));
    Mat q = Linear(h, H, W(L + "q"), NH * D);
    Mat k = Linear(h, H, W(L + "k"), KV * D);
    if (cfg.qk_norm) {
      q = RmsNorm(q, NH * D, W(L + "q_norm"));
      k = RmsNorm(k, KV * D, W(L + "k_norm"));
    }
    Mat v = Linear(h, H, W(L + "v"), KV * D);
    Rope(q, NH * D, D, theta);
    Rope(k, KV * D, D, theta);
    if (cfg.kv_i8)
      for (Mat *kv : {&k, &v})
        KvInt8RoundTrip(*kv, KV, D);
    Mat att(T * NH * D, 0.f);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t hd = 0; hd < NH; ++hd) {
        int64_t g = hd / (NH / KV);
        std::vector<double> s(T, -INFINITY);
        double mx = -INFINITY;
        for (int64_t j = 0; j <= t; ++j) {
          if (sliding && t - j >= cfg.window)
            continue;
          double d = 0;
          for (int64_t i = 0; i < D; ++i)
            d += double(q[(t * NH + hd) * D + i]) * k[(j * KV + g) * D + i];
          d /= std::sqrt(double(D));
          if (l == 1)
            d = 5.0 * std::tanh(d / 5.0);
          s[j] = d;
          mx = std::max(mx, d);
        }
        double sum = 0;
        for (int64_t j = 0; j <= t; ++j)
          sum += s[j] == -INFINITY ? 0 : std::exp(s[j] - mx);
        for (int64_t j = 0; j <= t; ++j) {
          if (s[j] == -INFINITY)
            continue;
          double p = std::exp(s[j] - mx) / sum;
          for (int64_t i = 0; i < D; ++i)
            att[(t * NH + hd) * D + i] += float(p * v[(j * KV + g) * D + i]);
        }
      }
    Mat o =
        RmsNorm(Linear(att, NH * D, W(L + "o"), H), H, W(L + "post_attn_norm"));
    for (int64_t i = 0; i < T * H; ++i)
      x[i] += o[i];
    Mat h2 = RmsNorm(x, H, W(L + "pre_ff_norm"));
    Mat g = Linear(h2, H, W(L + "gate"), F);
    Mat u = Linear(h2, H, W(L + "up"), F);
    for (int64_t i = 0; i < T * F; ++i) {
      double a = g[i];
      g[i] = float(0.5 * a *
                   (1 + std::tanh(std::sqrt(2 / M_PI) *
                                  (a + 0.044715 * a * a * a)))) *
             u[i];
    }
    Mat dn = Linear(g, F, W(L + "down"), H);
    for (float &f : dn)
      f *= 0.5f;
    Mat post = RmsNorm(dn, H, W(L + "post_ff_norm"));
    for (int64_t i = 0; i < T * H; ++i)
      x[i] += post[i];
  }
  Mat xn = RmsNorm(x, H, W("final_norm"));
  Mat logits = Linear(xn, H, W("embed"), m.rows);
  for (float &f : logits)
    f = float(cfg.final_softcap * std::tanh(f / cfg.final_softcap));
  return logits;
}

} // namespace test
} // namespace gemmac
