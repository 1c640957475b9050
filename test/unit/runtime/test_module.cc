#include "test_module.h"

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
    auto i = std::make_unique<schema::InstructionT>();
    i->op = op;
    i->inputs = std::move(in);
    i->outputs = {out};
    i->attrs = std::make_unique<schema::OpAttributesT>();
    if (attrs)
      attrs(*i->attrs);
    i->location = "test.mlir:" + std::to_string(arena % 1000);
    return i;
  }
};

} // namespace

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
  uint32_t tokens = b.AddArena("tokens", {T}, DType::I32);
  uint32_t table = b.AddWeight("embed", {V, H},
                               cfg.bf16_embed ? DType::BF16 : DType::F32, 1.0f);
  std::vector<std::unique_ptr<schema::InstructionT>> ins;
  uint32_t x = b.AddArena("x0", {T, H});
  ins.push_back(b.Ins(OpCode::Embed, {tokens, table}, x,
                      [&](auto &a) { a.scale = std::sqrt(float(H)); }));
  for (int l = 0; l < cfg.layers; ++l) {
    std::string L = "l" + std::to_string(l) + ".";
    bool sliding = l % 2 == 0;
    auto norm = [&](uint32_t in, const std::string &w, int64_t width,
                    int64_t d) {
      uint32_t wt = b.AddWeight(L + w, {d}, DType::F32, 0.2f);
      uint32_t out = b.AddArena(L + w + ".out", {T, width});
      ins.push_back(b.Ins(OpCode::RmsNorm, {in, wt}, out,
                          [&](auto &a) { a.eps = 1e-6f; }));
      return out;
    };
    auto linear = [&](uint32_t in, const std::string &w, int64_t n, int64_t k) {
      uint32_t wt =
          b.AddWeight(L + w, {n, k}, DType::F32, 1.0f / std::sqrt(float(k)));
      uint32_t out = b.AddArena(L + w + ".out", {T, n});
      ins.push_back(b.Ins(OpCode::Linear, {in, wt}, out));
      return out;
    };
    float theta = sliding ? 10000.f : 1000000.f;
    auto rope = [&](uint32_t in, int64_t width, const std::string &n) {
      uint32_t out = b.AddArena(L + n, {T, width});
      ins.push_back(b.Ins(OpCode::Rope, {in}, out, [&](auto &a) {
        a.head_dim = D;
        a.theta = theta;
      }));
      return out;
    };
    uint32_t h = norm(x, "input_norm", H, H);
    uint32_t q = rope(norm(linear(h, "q", NH * D, H), "q_norm", NH * D, D),
                      NH * D, "q_rope");
    uint32_t k = rope(norm(linear(h, "k", KV * D, H), "k_norm", KV * D, D),
                      KV * D, "k_rope");
    uint32_t v = linear(h, "v", KV * D, H);
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
    uint32_t o = norm(linear(att, "o", H, NH * D), "post_attn_norm", H, H);
    uint32_t x1 = b.AddArena(L + "x1", {T, H});
    ins.push_back(b.Ins(OpCode::Add, {x, o}, x1));
    uint32_t h2 = norm(x1, "pre_ff_norm", H, H);
    uint32_t g = linear(h2, "gate", F, H);
    uint32_t gg = b.AddArena(L + "gelu", {T, F});
    ins.push_back(b.Ins(OpCode::GeluTanh, {g}, gg));
    uint32_t u = linear(h2, "up", F, H);
    uint32_t mm = b.AddArena(L + "mul", {T, F});
    ins.push_back(b.Ins(OpCode::Mul, {gg, u}, mm));
    uint32_t dn = linear(mm, "down", H, F);
    uint32_t sc = b.AddArena(L + "half", {T, H});
    ins.push_back(
        b.Ins(OpCode::Scale, {dn}, sc, [](auto &a) { a.scale = 0.5f; }));
    uint32_t post = norm(sc, "post_ff_norm", H, H);
    uint32_t x2 = b.AddArena(L + "x2", {T, H});
    ins.push_back(b.Ins(OpCode::Add, {x1, post}, x2));
    x = x2;

    auto kv = std::make_unique<schema::KvLayerT>();
    kv->num_kv_heads = KV;
    kv->head_dim = D;
    kv->window = sliding ? cfg.window : 0;
    kv->capacity = sliding ? cfg.window + cfg.prefill_max - 1 : 0;
    p.kv_layers.push_back(std::move(kv));
  }
  uint32_t fw = b.AddWeight("final_norm", {H}, DType::F32, 0.2f);
  uint32_t xn = b.AddArena("final_norm.out", {T, H});
  ins.push_back(b.Ins(OpCode::RmsNorm, {x, fw}, xn));
  uint32_t raw = b.AddArena("lm_head.out", {T, m.rows});
  ins.push_back(b.Ins(OpCode::LmHead, {xn, table}, raw,
                      [&](auto &a) { a.rows = m.rows; }));
  uint32_t logits = b.AddArena("logits", {T, m.rows});
  ins.push_back(b.Ins(OpCode::Softcap, {raw}, logits,
                      [&](auto &a) { a.softcap = cfg.final_softcap; }));

  for (const char *name : {"prefill", "decode"}) {
    auto f = std::make_unique<schema::FunctionT>();
    f->name = name;
    f->max_tokens = std::string(name) == "prefill" ? cfg.prefill_max : 1;
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
    Mat q = RmsNorm(Linear(h, H, W(L + "q"), NH * D), NH * D, W(L + "q_norm"));
    Mat k = RmsNorm(Linear(h, H, W(L + "k"), KV * D), KV * D, W(L + "k_norm"));
    Mat v = Linear(h, H, W(L + "v"), KV * D);
    Rope(q, NH * D, D, theta);
    Rope(k, KV * D, D, theta);
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
