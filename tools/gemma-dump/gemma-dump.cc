// gemma-dump: prints a gemmac module file as readable text (or JSON) after
// the runtime's verifier has accepted it: header, quantization policy and
// required features, model config, tokenizer and special ids, chat format,
// functions, KV layers and the KV plan per layer kind, segments and tensors;
// with --instructions, every instruction with its operands and attributes.
#include <cstdio>
#include <map>
#include <string>
#include <tuple>

#include "kv_cache.h"
#include "module.h"

namespace {

using namespace gemmac;

std::string Shape(const schema::Tensor &t) {
  std::string r = std::string(DTypeName(t.dtype())) + "[";
  for (uint32_t i = 0; t.shape() && i < t.shape()->size(); ++i) {
    int64_t d = t.shape()->Get(i);
    r += (i ? "," : "") +
         (d == kTokensDim ? std::string("T") : std::to_string(d));
  }
  return r + "]";
}

std::string Str(const flatbuffers::String *s) { return s ? s->str() : ""; }

// An operand, or "-" for an absent optional input.
std::string
Operand(const flatbuffers::Vector<flatbuffers::Offset<schema::Tensor>> &tensors,
        uint32_t id) {
  if (id == kNoTensor)
    return "-";
  const schema::Tensor *t = tensors.Get(id);
  std::string n = Str(t->name());
  return (n.empty() ? "%" + std::to_string(id) : n) + ": " + Shape(*t);
}

// Layers that share a KV layout (window, ring, heads, head_dim, dtype): the
// KV plan prints one line per kind, with its bytes per position.
struct KvKind {
  uint32_t window, capacity, heads, head_dim;
  schema::DType dtype;
  bool operator<(const KvKind &o) const {
    return std::tie(window, capacity, heads, head_dim, dtype) <
           std::tie(o.window, o.capacity, o.heads, o.head_dim, o.dtype);
  }
};

struct KvKindLayers {
  const schema::KvLayer *first = nullptr; // any layer of the kind
  std::vector<uint32_t> layers;
};

std::map<KvKind, KvKindLayers> KvKinds(const schema::Module &m) {
  std::map<KvKind, KvKindLayers> kinds;
  for (uint32_t i = 0; m.kv_layers() && i < m.kv_layers()->size(); ++i) {
    const schema::KvLayer *l = m.kv_layers()->Get(i);
    KvKindLayers &k = kinds[{l->window(), l->capacity(), l->num_kv_heads(),
                             l->head_dim(), l->dtype()}];
    k.first = l;
    k.layers.push_back(i);
  }
  return kinds;
}

std::string KvDtype(schema::DType d) {
  return d == schema::DType::I8 ? "i8 (+ f32 scale per position and head)"
                                : DTypeName(d);
}

std::string Json(const std::string &s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\')
      o += '\\', o += char(c);
    else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof(b), "\\u%04x", c);
      o += b;
    } else
      o += char(c);
  }
  return o + "\"";
}

// Attributes that differ from their defaults, as "name=value" pairs.
std::vector<std::pair<std::string, std::string>>
Attrs(const schema::Instruction &ins) {
  std::vector<std::pair<std::string, std::string>> r;
  const schema::OpAttributes *a = ins.attrs();
  if (a == nullptr)
    return r;
  schema::OpAttributesT d;
  auto f = [&](const char *n, float v, float def) {
    if (v != def) {
      char b[32];
      std::snprintf(b, sizeof(b), "%g", v);
      r.emplace_back(n, b);
    }
  };
  auto i = [&](const char *n, int32_t v, int32_t def) {
    if (v != def)
      r.emplace_back(n, std::to_string(v));
  };
  f("scale", a->scale(), d.scale);
  f("eps", a->eps(), d.eps);
  f("offset", a->offset(), d.offset);
  f("theta", a->theta(), d.theta);
  f("rope_scale", a->rope_scale(), d.rope_scale);
  f("softcap", a->softcap(), d.softcap);
  i("head_dim", a->head_dim(), d.head_dim);
  i("num_heads", a->num_heads(), d.num_heads);
  i("num_kv_heads", a->num_kv_heads(), d.num_kv_heads);
  i("window", a->window(), d.window);
  i("layer", a->layer(), d.layer);
  i("rows", a->rows(), d.rows);
  return r;
}

} // namespace

int main(int argc, char **argv) {
  std::string path;
  bool instructions = false, json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--instructions")
      instructions = true;
    else if (a == "--json")
      json = true;
    else if (a == "-h" || a == "--help") {
      std::puts("usage: gemma-dump MODEL.gmc [--instructions] [--json]");
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "gemma-dump: unknown option %s\n", a.c_str());
      return 2;
    } else if (path.empty())
      path = a;
    else {
      std::fprintf(stderr, "gemma-dump: unexpected argument %s\n", a.c_str());
      return 2;
    }
  }
  if (path.empty()) {
    std::fprintf(stderr,
                 "usage: gemma-dump MODEL.gmc [--instructions] [--json]\n");
    return 2;
  }
  std::shared_ptr<Module> mod;
  Status s = Module::Load(path, &mod);
  if (!s.ok()) {
    std::fprintf(stderr, "gemma-dump: %s\n", s.message().c_str());
    return 1;
  }
  const schema::Module &m = mod->program();
  const schema::ModelConfig &c = *m.config();
  const auto &tensors = *m.tensors();
  const schema::SpecialTokens *st = m.special_tokens();
  auto sp = [&](int32_t (schema::SpecialTokens::*get)() const) {
    return st ? (st->*get)() : -1;
  };
  std::string stop;
  if (st && st->stop())
    for (uint32_t i = 0; i < st->stop()->size(); ++i)
      stop += (i ? ", " : "") + std::to_string(st->stop()->Get(i));
  std::string sliding;
  if (c.layer_is_sliding())
    for (uint32_t i = 0; i < c.layer_is_sliding()->size(); ++i)
      sliding += c.layer_is_sliding()->Get(i) ? "S" : "G";

  std::string features, features_json;
  if (const auto *rf = m.required_features())
    for (uint32_t i = 0; i < rf->size(); ++i) {
      features += (i ? ", " : "") + Str(rf->Get(i));
      features_json += (i ? ", " : "") + Json(Str(rf->Get(i)));
    }
  std::string quant = Str(m.quantization());
  auto kinds = KvKinds(m);

  // Tensors by dtype and storage.
  struct Count {
    uint64_t n = 0, bytes = 0;
  };
  std::map<std::string, Count> by_kind;
  for (const schema::Tensor *t : tensors) {
    std::string k =
        std::string(t->storage() == schema::StorageKind::Weight ? "weight "
                                                                : "arena ") +
        DTypeName(t->dtype());
    by_kind[k].n++;
    by_kind[k].bytes += t->size_bytes();
  }
  auto tname = [&](uint32_t id) {
    const schema::Tensor *t = tensors.Get(id);
    std::string n = Str(t->name());
    return (n.empty() ? "%" + std::to_string(id) : n);
  };

  if (json) {
    std::printf("{\"file\": %s, \"version\": \"%u.%u\", \"producer\": %s,\n"
                " \"quantization\": %s, \"required_features\": [%s],\n",
                Json(path).c_str(), mod->header().version_major,
                mod->header().version_minor, Json(Str(m.producer())).c_str(),
                Json(quant).c_str(), features_json.c_str());
    std::printf(" \"config\": {\"family\": %s, \"architecture\": %s, "
                "\"hidden_size\": %u, \"intermediate_size\": %u, "
                "\"num_layers\": %u, \"num_heads\": %u, \"num_kv_heads\": %u, "
                "\"head_dim\": %u, \"vocab_size\": %u, \"max_context\": %u, "
                "\"sliding_window\": %u, \"layers\": %s},\n",
                Json(schema::EnumNameModelFamily(c.family())).c_str(),
                Json(Str(c.architecture())).c_str(), c.hidden_size(),
                c.intermediate_size(), c.num_layers(), c.num_heads(),
                c.num_kv_heads(), c.head_dim(), c.vocab_size(), c.max_context(),
                c.sliding_window(), Json(sliding).c_str());
    std::printf(
        " \"tokenizer\": {\"vocab_size\": %u, \"bytes\": %u, "
        "\"bos\": %d, \"eos\": %d, \"pad\": %d, \"unk\": %d, "
        "\"start_of_turn\": %d, \"end_of_turn\": %d, \"stop\": [%s]},\n",
        m.tokenizer_vocab_size(), m.tokenizer()->size(),
        sp(&schema::SpecialTokens::bos), sp(&schema::SpecialTokens::eos),
        sp(&schema::SpecialTokens::pad), sp(&schema::SpecialTokens::unk),
        sp(&schema::SpecialTokens::start_of_turn),
        sp(&schema::SpecialTokens::end_of_turn), stop.c_str());
    std::printf(" \"functions\": [");
    for (uint32_t fi = 0; fi < m.functions()->size(); ++fi) {
      const schema::Function *f = m.functions()->Get(fi);
      std::printf("%s\n  {\"name\": %s, \"max_tokens\": %u, "
                  "\"arena_bytes\": %llu, \"instructions\": %u",
                  fi ? "," : "", Json(Str(f->name())).c_str(), f->max_tokens(),
                  static_cast<unsigned long long>(f->arena_bytes()),
                  f->instructions()->size());
      if (instructions) {
        std::printf(", \"code\": [");
        for (uint32_t i = 0; i < f->instructions()->size(); ++i) {
          const schema::Instruction *ins = f->instructions()->Get(i);
          std::printf("%s\n   {\"op\": %s, \"inputs\": [", i ? "," : "",
                      Json(schema::EnumNameOpCode(ins->op())).c_str());
          // An absent optional input is null.
          for (uint32_t j = 0; j < ins->inputs()->size(); ++j) {
            uint32_t id = ins->inputs()->Get(j);
            std::printf(
                "%s%s", j ? ", " : "",
                id == kNoTensor
                    ? "null"
                    : Json(tname(id) + " " + Shape(*tensors.Get(id))).c_str());
          }
          std::printf("], \"outputs\": [");
          for (uint32_t j = 0; j < ins->outputs()->size(); ++j)
            std::printf("%s%s", j ? ", " : "",
                        Json(tname(ins->outputs()->Get(j)) + " " +
                             Shape(*tensors.Get(ins->outputs()->Get(j))))
                            .c_str());
          std::printf("], \"attrs\": {");
          auto at = Attrs(*ins);
          for (size_t k = 0; k < at.size(); ++k)
            std::printf("%s%s: %s", k ? ", " : "", Json(at[k].first).c_str(),
                        at[k].second.c_str());
          std::printf("}}");
        }
        std::printf("]");
      }
      std::printf("}");
    }
    std::printf("],\n \"kv_layers\": [");
    for (uint32_t i = 0; m.kv_layers() && i < m.kv_layers()->size(); ++i) {
      const schema::KvLayer *l = m.kv_layers()->Get(i);
      std::printf("%s{\"capacity\": %u, \"window\": %u, \"num_kv_heads\": %u, "
                  "\"head_dim\": %u, \"dtype\": %s}",
                  i ? ", " : "", l->capacity(), l->window(), l->num_kv_heads(),
                  l->head_dim(), Json(DTypeName(l->dtype())).c_str());
    }
    std::printf("],\n \"kv_plan\": [");
    bool first_kind = true;
    for (const auto &[k, kl] : kinds) {
      std::printf("%s{\"window\": %u, \"capacity\": %u, \"num_kv_heads\": %u, "
                  "\"head_dim\": %u, \"dtype\": %s, \"layers\": %zu, "
                  "\"bytes_per_position\": %llu}",
                  first_kind ? "" : ", ", k.window, k.capacity, k.heads,
                  k.head_dim, Json(DTypeName(k.dtype)).c_str(),
                  kl.layers.size(),
                  static_cast<unsigned long long>(
                      KvCache::BytesPerPosition(*kl.first)));
      first_kind = false;
    }
    std::printf(
        "],\n \"segments\": %u, \"weights_bytes\": %llu,\n \"tensors\": {",
        m.segments() ? m.segments()->size() : 0,
        static_cast<unsigned long long>(mod->weights_bytes()));
    bool first = true;
    for (const auto &[k, v] : by_kind) {
      std::printf("%s%s: {\"count\": %llu, \"bytes\": %llu}", first ? "" : ", ",
                  Json(k).c_str(), static_cast<unsigned long long>(v.n),
                  static_cast<unsigned long long>(v.bytes));
      first = false;
    }
    std::printf("}}\n");
    return 0;
  }

  std::printf("module %s\n", path.c_str());
  std::printf("  version %u.%u, producer \"%s\", %llu bytes\n",
              mod->header().version_major, mod->header().version_minor,
              Str(m.producer()).c_str(),
              static_cast<unsigned long long>(mod->file_size()));
  std::printf("  quantization: %s\n  required features: %s\n",
              quant.empty() ? "(not recorded)" : quant.c_str(),
              features.empty() ? "(none)" : features.c_str());
  std::printf("config\n  %s %s: hidden %u, intermediate %u, layers %u, heads "
              "%u, kv heads %u, head_dim %u\n  vocab %u, max_context %u, "
              "sliding_window %u, rope theta %g (local %g, scaling %g)\n"
              "  rms_norm_eps %g, query_pre_attn_scalar %g, attn_softcap %g, "
              "final_softcap %g, parameters %llu\n",
              schema::EnumNameModelFamily(c.family()),
              Str(c.architecture()).c_str(), c.hidden_size(),
              c.intermediate_size(), c.num_layers(), c.num_heads(),
              c.num_kv_heads(), c.head_dim(), c.vocab_size(), c.max_context(),
              c.sliding_window(), c.rope_theta(), c.rope_local_theta(),
              c.rope_scaling_factor(), c.rms_norm_eps(),
              c.query_pre_attn_scalar(), c.attn_softcap(), c.final_softcap(),
              static_cast<unsigned long long>(c.parameter_count()));
  if (!sliding.empty())
    std::printf("  layers (S sliding, G global): %s\n", sliding.c_str());
  std::printf("tokenizer\n  %u pieces, %u bytes; bos %d, eos %d, pad %d, unk "
              "%d, start_of_turn %d, end_of_turn %d, stop [%s]\n",
              m.tokenizer_vocab_size(), m.tokenizer()->size(),
              sp(&schema::SpecialTokens::bos), sp(&schema::SpecialTokens::eos),
              sp(&schema::SpecialTokens::pad), sp(&schema::SpecialTokens::unk),
              sp(&schema::SpecialTokens::start_of_turn),
              sp(&schema::SpecialTokens::end_of_turn), stop.c_str());
  if (const schema::ChatFormat *cf = m.chat())
    std::printf("chat format\n  turns %s ... %s, roles %s/%s, system prompt: "
                "%s\n",
                Str(cf->turn_start()).c_str(), Str(cf->turn_end()).c_str(),
                Str(cf->user_role()).c_str(), Str(cf->model_role()).c_str(),
                cf->system() == schema::SystemPrompt::FoldIntoFirstUser
                    ? "folded into the first user turn"
                    : "rejected");
  std::printf("functions\n");
  for (const schema::Function *f : *m.functions()) {
    std::printf("  %s: max_tokens %u, arena %llu bytes, %u instructions\n",
                Str(f->name()).c_str(), f->max_tokens(),
                static_cast<unsigned long long>(f->arena_bytes()),
                f->instructions()->size());
    if (!instructions)
      continue;
    for (uint32_t i = 0; i < f->instructions()->size(); ++i) {
      const schema::Instruction *ins = f->instructions()->Get(i);
      std::string line = "    " + std::to_string(i) + ": " +
                         schema::EnumNameOpCode(ins->op()) + "(";
      for (uint32_t j = 0; j < ins->inputs()->size(); ++j)
        line += (j ? ", " : "") + Operand(tensors, ins->inputs()->Get(j));
      line += ") -> ";
      for (uint32_t j = 0; j < ins->outputs()->size(); ++j)
        line += (j ? ", " : "") + Operand(tensors, ins->outputs()->Get(j));
      auto at = Attrs(*ins);
      if (!at.empty()) {
        line += " {";
        for (size_t k = 0; k < at.size(); ++k)
          line += (k ? ", " : "") + at[k].first + "=" + at[k].second;
        line += "}";
      }
      if (ins->location() && ins->location()->size())
        line += "  @ " + ins->location()->str();
      std::printf("%s\n", line.c_str());
    }
  }
  std::printf("kv layers\n");
  for (uint32_t i = 0; m.kv_layers() && i < m.kv_layers()->size(); ++i) {
    const schema::KvLayer *l = m.kv_layers()->Get(i);
    std::printf("  %u: %s, kv heads %u, head_dim %u, %s\n", i,
                l->window() ? ("window " + std::to_string(l->window()) +
                               ", ring of " + std::to_string(l->capacity()))
                                  .c_str()
                            : "global (context length)",
                l->num_kv_heads(), l->head_dim(), DTypeName(l->dtype()));
  }
  // One line per kind of layer: what a session pays for its KV cache.
  std::printf("kv plan\n");
  for (const auto &[k, kl] : kinds) {
    const std::vector<uint32_t> &layers = kl.layers;
    uint64_t per_pos = KvCache::BytesPerPosition(*kl.first);
    std::string what =
        k.window ? "sliding window " + std::to_string(k.window) + " (ring of " +
                       std::to_string(k.capacity) + ")"
        : k.capacity ? "global (capacity " + std::to_string(k.capacity) + ")"
                     : std::string("global (context length)");
    std::string size =
        k.capacity
            ? std::to_string(per_pos * k.capacity) + " bytes per layer"
            : std::to_string(per_pos) + " bytes per layer per token of context";
    std::printf("  %s: %zu layer%s, %s, kv heads %u x head_dim %u, %llu bytes "
                "per position, %s\n",
                what.c_str(), layers.size(), layers.size() == 1 ? "" : "s",
                KvDtype(k.dtype).c_str(), k.heads, k.head_dim,
                static_cast<unsigned long long>(per_pos), size.c_str());
  }
  std::printf("segments\n  %u segments, %llu bytes of weights\n",
              m.segments() ? m.segments()->size() : 0,
              static_cast<unsigned long long>(mod->weights_bytes()));
  std::printf("tensors\n  %u tensors\n", tensors.size());
  for (const auto &[k, v] : by_kind)
    std::printf("  %-12s %6llu tensors, %llu bytes\n", k.c_str(),
                static_cast<unsigned long long>(v.n),
                static_cast<unsigned long long>(v.bytes));
  return 0;
}
