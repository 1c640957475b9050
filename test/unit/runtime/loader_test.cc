// The loader and verifier: a good module loads; each kind of corruption is
// refused with a message naming the file, the field and what was expected,
// and nothing crashes.
#include <algorithm>
#include <cstring>
#include <gtest/gtest.h>
#include <stdexcept>

#include "gemmac/plugin.h"
#include "module.h"
#include "test_module.h"

namespace gemmac {
namespace {

using test::BuildTinyGemma;
using test::TempPath;
using test::TestModule;
using test::TinyConfig;
using test::WriteModule;

Status LoadPath(const std::string &path, std::shared_ptr<Module> *m = nullptr) {
  std::shared_ptr<Module> tmp;
  return Module::Load(path, m ? m : &tmp);
}

// Writes a module changed by `mutate` and returns the load status.
Status LoadMutated(const std::string &name,
                   const std::function<void(TestModule &)> &mutate,
                   const TinyConfig &cfg = TinyConfig()) {
  TestModule m = BuildTinyGemma(cfg);
  mutate(m);
  std::string path = TempPath(name);
  WriteModule(m, path);
  Status s = LoadPath(path);
  if (!s.ok())
    EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  std::remove(path.c_str());
  return s;
}

schema::InstructionT &Instr(TestModule &m, size_t i) {
  return *m.program.functions[0]->instructions[i];
}

// The first instruction of `op` in prefill.
schema::InstructionT &FirstOf(TestModule &m, schema::OpCode op) {
  for (auto &i : m.program.functions[0]->instructions)
    if (i->op == op)
      return *i;
  throw std::runtime_error("no such instruction");
}

schema::TensorT &TensorNamed(TestModule &m, const std::string &name) {
  for (auto &t : m.program.tensors)
    if (t->name == name)
      return *t;
  throw std::runtime_error("no tensor " + name);
}

// A model whose projections fill q4 groups: hidden 32 (or 128 for Q4G128).
TinyConfig QuantConfig(schema::DType linear, bool fused = false) {
  TinyConfig c;
  c.hidden = linear == schema::DType::Q4G128 ? 128 : 32;
  c.head_dim = c.hidden / c.heads;
  c.ff = 2 * c.hidden;
  c.linear_dtype = linear;
  c.fused = fused;
  return c;
}

// Everything module format 1.1 added, in one module.
TinyConfig AllNewFeatures(schema::DType linear) {
  TinyConfig c = QuantConfig(linear, /*fused=*/true);
  c.embed_quant = schema::DType::Q8C;
  c.kv_i8 = true;
  c.last_logits_only = true;
  c.qk_norm = false;
  return c;
}

constexpr uint32_t kAbsent = 0xFFFFFFFFu;

TEST(Loader, GoodModuleLoads) {
  TestModule tm = BuildTinyGemma(TinyConfig());
  std::string path = TempPath("good.gmc");
  WriteModule(tm, path);
  std::shared_ptr<Module> m;
  Status s = LoadPath(path, &m);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(m->program().config()->hidden_size(), 16u);
  EXPECT_EQ(m->tokenizer().vocab_size(), GEMMAC_RUNTIME_TEST_VOCAB);
  ASSERT_NE(m->FindFunction("prefill"), nullptr);
  EXPECT_EQ(m->FindFunction("prefill")->max_tokens(), 8u);
  EXPECT_EQ(m->FindFunction("nope"), nullptr);
  EXPECT_TRUE(m->VerifyChecksums().ok());
  // Weights are read in place: the pointer lies inside the mapping and holds
  // the bytes the builder wrote.
  const schema::Tensor *embed = m->program().tensors()->Get(1);
  ASSERT_EQ(embed->name()->str(), "embed");
  EXPECT_EQ(std::memcmp(m->WeightData(*embed),
                        tm.weights.data() + embed->offset(),
                        embed->size_bytes()),
            0);
  std::remove(path.c_str());
}

TEST(Loader, MissingFile) {
  Status s = LoadPath("/nonexistent/model.gmc");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("/nonexistent/model.gmc"), std::string::npos);
}

TEST(Loader, BadMagic) {
  TestModule m = BuildTinyGemma(TinyConfig());
  std::string path = TempPath("magic.gmc");
  WriteModule(m, path, [](ModuleHeader &h) { h.magic[0] = 'X'; });
  Status s = LoadPath(path);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("bad magic"), std::string::npos) << s.message();
  std::remove(path.c_str());
}

TEST(Loader, NewerMajorVersion) {
  TestModule m = BuildTinyGemma(TinyConfig());
  std::string path = TempPath("version.gmc");
  WriteModule(m, path, [](ModuleHeader &h) {
    h.version_major = 2;
    h.version_minor = 3;
  });
  Status s = LoadPath(path);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_EQ(s.message(), path + ": module version 2.3 is not supported; this "
                                "runtime reads 1.x");
  std::remove(path.c_str());
}

TEST(Loader, NewerMinorVersionLoads) {
  TestModule m = BuildTinyGemma(TinyConfig());
  std::string path = TempPath("minor.gmc");
  WriteModule(m, path, [](ModuleHeader &h) { h.version_minor = 7; });
  EXPECT_TRUE(LoadPath(path).ok());
  std::remove(path.c_str());
}

TEST(Loader, Truncated) {
  TestModule m = BuildTinyGemma(TinyConfig());
  std::string path = TempPath("trunc.gmc");
  std::vector<uint8_t> bytes = WriteModule(m, path);
  for (size_t keep :
       {size_t(10), size_t(64), bytes.size() / 2, bytes.size() - 1}) {
    test::WriteBytes(path,
                     std::vector<uint8_t>(bytes.begin(), bytes.begin() + keep));
    Status s = LoadPath(path);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << keep;
    EXPECT_NE(s.message().find("truncated"), std::string::npos)
        << keep << ": " << s.message();
  }
  std::remove(path.c_str());
}

TEST(Loader, FlatBufferGarbage) {
  TestModule m = BuildTinyGemma(TinyConfig());
  std::string path = TempPath("garbage.gmc");
  std::vector<uint8_t> bytes = WriteModule(m, path);
  ModuleHeader h;
  std::memcpy(&h, bytes.data(), 64);
  // Keep the identifier so the Verifier itself must catch it.
  uint32_t seed = 7;
  for (uint64_t i = h.program_offset + 8; i < h.program_offset + h.program_size;
       ++i) {
    seed = seed * 1103515245u + 12345u;
    bytes[i] = uint8_t(seed >> 16);
  }
  test::WriteBytes(path, bytes);
  Status s = LoadPath(path);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("fails verification"), std::string::npos)
      << s.message();
  // Without the identifier.
  bytes[h.program_offset + 4] ^= 0xFF;
  test::WriteBytes(path, bytes);
  s = LoadPath(path);
  EXPECT_NE(s.message().find("GMC1"), std::string::npos) << s.message();
  std::remove(path.c_str());
}

TEST(Loader, WeightOffsetPastSegment) {
  Status s = LoadMutated("weight.gmc", [](TestModule &m) {
    m.program.tensors[1]->offset = m.weights.size() - 8;
  });
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("tensor 1 'embed'"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("past the end of segment 0"), std::string::npos)
      << s.message();
}

TEST(Loader, SegmentOutsideFileOrMisaligned) {
  Status s = LoadMutated(
      "seg.gmc", [](TestModule &m) { m.program.segments[0]->size += 4096; });
  EXPECT_NE(s.message().find("segment 0: bytes"), std::string::npos)
      << s.message();
}

TEST(Loader, TensorIdOutOfRange) {
  Status s = LoadMutated("id.gmc",
                         [](TestModule &m) { Instr(m, 3).inputs[1] = 9999; });
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("function 'prefill' instruction 3"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("tensor id 9999 out of range"), std::string::npos)
      << s.message();
}

TEST(Loader, ShapeMismatchInInstruction) {
  // Instruction 2 is the q projection (Linear); give it a weight with the
  // wrong input width.
  Status s = LoadMutated("shape.gmc", [](TestModule &m) {
    ASSERT_EQ(Instr(m, 2).op, schema::OpCode::Linear);
    uint32_t w = Instr(m, 2).inputs[1];
    m.program.tensors[w]->shape = {16, 8};
    m.program.tensors[w]->size_bytes = 16 * 8 * 4;
  });
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("instruction 2 (Linear at "), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("expected [N,16]"), std::string::npos)
      << s.message();
}

TEST(Loader, OtherSemanticChecks) {
  struct Case {
    const char *name;
    std::function<void(TestModule &)> mutate;
    const char *expect;
  };
  std::vector<Case> cases = {
      {"kvlayer",
       [](TestModule &m) {
         for (auto &f : m.program.functions)
           for (auto &i : f->instructions)
             if (i->op == schema::OpCode::Attention)
               i->attrs->layer = 7;
       },
       "layer 7 out of range"},
      {"arena",
       [](TestModule &m) { m.program.functions[0]->arena_bytes = 128; },
       "exceed arena_bytes 128"},
      {"special", [](TestModule &m) { m.program.special_tokens->bos = 100000; },
       "special_tokens.bos is 100000"},
      {"stop",
       [](TestModule &m) {
         m.program.special_tokens->stop = {1, -4};
       },
       "special_tokens.stop[1] is -4"},
      {"nodecode",
       [](TestModule &m) { m.program.functions[1]->name = "other"; },
       "function \"decode\" is missing"},
      {"weightout", [](TestModule &m) { Instr(m, 0).outputs[0] = 1; },
       "is a weight; outputs must be arena tensors"},
      {"ring", [](TestModule &m) { m.program.kv_layers[0]->capacity = 5; },
       "ring capacity 5 is below"},
      {"dtype",
       [](TestModule &m) {
         uint32_t x = Instr(m, 1).inputs[0];
         m.program.tensors[x]->dtype = schema::DType::I32;
       },
       "expected f32"},
      {"vocab", [](TestModule &m) { m.program.tokenizer_vocab_size = 399; },
       "tokenizer has 400 pieces"},
  };
  for (const Case &c : cases) {
    Status s = LoadMutated(std::string(c.name) + ".gmc", c.mutate);
    EXPECT_FALSE(s.ok()) << c.name;
    EXPECT_NE(s.message().find(c.expect), std::string::npos)
        << c.name << ": " << s.message();
  }
}

TEST(Loader, ChecksumMismatchIsReportedOnlyWhenAsked) {
  TestModule m = BuildTinyGemma(TinyConfig());
  std::string path = TempPath("sum.gmc");
  std::vector<uint8_t> bytes = WriteModule(m, path);
  bytes[bytes.size() - 100] ^= 0x40; // flip a weight bit
  test::WriteBytes(path, bytes);
  std::shared_ptr<Module> mod;
  ASSERT_TRUE(LoadPath(path, &mod).ok());
  Status s = mod->VerifyChecksums();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("segment 0 checksum mismatch"), std::string::npos)
      << s.message();
  std::remove(path.c_str());
}

// ---- module format 1.1: quantized weights, fused ops, absent inputs, int8
// KV, one-row prefill logits, required features -------------------------

TEST(Loader, ModulesWithEveryNewFeatureLoad) {
  for (schema::DType d : {schema::DType::Q8C, schema::DType::Q4G32,
                          schema::DType::Q4G128, schema::DType::Q4G32R8}) {
    TinyConfig cfg = AllNewFeatures(d);
    TestModule tm = BuildTinyGemma(cfg);
    std::string path = TempPath("all_new.gmc");
    WriteModule(tm, path);
    std::shared_ptr<Module> m;
    Status s = LoadPath(path, &m);
    ASSERT_TRUE(s.ok()) << DTypeName(d) << ": " << s.message();
    const schema::Module &p = m->program();
    EXPECT_EQ(m->header().version_minor, kModuleVersionMinor);
    EXPECT_EQ(p.quantization()->str(),
              std::string(DTypeName(d)) + ", embed=q8c");
    std::vector<std::string> features;
    for (const auto *f : *p.required_features())
      features.push_back(f->str());
    EXPECT_NE(std::find(features.begin(), features.end(),
                        std::string("dtype:") + DTypeName(d)),
              features.end());
    EXPECT_NE(std::find(features.begin(), features.end(), "kv:i8"),
              features.end());
    EXPECT_EQ(p.kv_layers()->Get(0)->dtype(), schema::DType::I8);
    // Weight sizes are the layouts' (gemmac_weight_bytes), not elements x
    // element size.
    bool seen = false;
    for (const schema::Tensor *t : *p.tensors())
      if (t->name()->str() == "l0.q") {
        seen = true;
        EXPECT_EQ(t->dtype(), d);
        EXPECT_EQ(int64_t(t->size_bytes()),
                  gemmac_weight_bytes(int32_t(d), t->shape()->Get(0),
                                      t->shape()->Get(1)));
      }
    EXPECT_TRUE(seen);
    // prefill returns one row, decode every row.
    const schema::Function *prefill = m->FindFunction("prefill");
    EXPECT_EQ(p.tensors()->Get(prefill->outputs()->Get(0))->shape()->Get(0), 1);
    std::remove(path.c_str());
  }
}

TEST(Loader, DTypeNamesAndSizes) {
  EXPECT_STREQ(DTypeName(schema::DType::I8), "i8");
  EXPECT_STREQ(DTypeName(schema::DType::Q8C), "q8c");
  EXPECT_STREQ(DTypeName(schema::DType::Q4G32), "q4g32");
  EXPECT_STREQ(DTypeName(schema::DType::Q4G128), "q4g128");
  EXPECT_STREQ(DTypeName(schema::DType::Q4G32R8), "q4g32r8");
  EXPECT_STREQ(DTypeName(static_cast<schema::DType>(99)), "unknown");
  EXPECT_EQ(DTypeSize(schema::DType::I8), 1u);
  EXPECT_EQ(DTypeSize(schema::DType::Q4G32), 0u); // a block format
  EXPECT_EQ(DTypeSize(schema::DType::Q4G32R8), 0u);
  EXPECT_FALSE(IsWeightDType(schema::DType::I8));
  EXPECT_TRUE(IsWeightDType(schema::DType::Q4G128));
  EXPECT_TRUE(IsWeightDType(schema::DType::Q4G32R8));
  EXPECT_TRUE(IsQuantizedDType(schema::DType::Q4G32R8));
}

TEST(Loader, QuantizedWeightErrors) {
  struct Case {
    const char *name;
    schema::DType dtype;
    std::function<void(TestModule &)> mutate;
    std::vector<std::string> expect;
  };
  std::vector<Case> cases = {
      {"q4size",
       schema::DType::Q4G32,
       [](TestModule &m) { TensorNamed(m, "l0.q").size_bytes += 18; },
       {"'l0.q'", "size_bytes 594 but [32,32] q4g32 needs 576"}},
      {"q4cols",
       schema::DType::Q4G32,
       [](TestModule &m) {
         // 48 columns: one and a half groups of 32.
         TensorNamed(m, "l0.q").shape = {24, 48};
       },
       {"'l0.q'",
        "q4g32[24,48]: cols 48 is not a multiple of the 32-element group "
        "of q4g32"}},
      // The packed layout: rows in whole groups of 8, cols in whole blocks
      // of 32, and Q4G32's size.
      {"r8rows",
       schema::DType::Q4G32R8,
       [](TestModule &m) {
         // 36 rows: four and a half groups of 8 (the bytes stay those of
         // [32,32], so only the rows rule can fail first).
         TensorNamed(m, "l0.q").shape = {36, 32};
       },
       {"'l0.q'",
        "q4g32r8[36,32]: rows 36 is not a multiple of 8 (the rows q4g32r8 "
        "packs together)"}},
      {"r8cols",
       schema::DType::Q4G32R8,
       [](TestModule &m) {
         TensorNamed(m, "l0.q").shape = {24, 48};
       },
       {"'l0.q'",
        "q4g32r8[24,48]: cols 48 is not a multiple of the 32-element group "
        "of q4g32r8"}},
      {"r8size",
       schema::DType::Q4G32R8,
       [](TestModule &m) { TensorNamed(m, "l0.q").size_bytes -= 144; },
       {"'l0.q'", "size_bytes 432 but [32,32] q4g32r8 needs 576"}},
      {"r8arena",
       schema::DType::Q4G32R8,
       [](TestModule &m) {
         TensorNamed(m, "l0.q.out").dtype = schema::DType::Q4G32R8;
       },
       {"'l0.q.out'", "an arena tensor of dtype q4g32r8"}},
      {"q4g128cols",
       schema::DType::Q4G128,
       [](TestModule &m) {
         TensorNamed(m, "l0.q").shape = {256, 64};
       },
       {"'l0.q'", "cols 64 is not a multiple of the 128-element group"}},
      {"q8size",
       schema::DType::Q8C,
       [](TestModule &m) {
         // The f32 row scales are part of the layout.
         TensorNamed(m, "l0.q").size_bytes = 32 * 32;
       },
       {"'l0.q'", "size_bytes 1024 but [32,32] q8c needs 1152"}},
      {"q4rank",
       schema::DType::Q4G32,
       [](TestModule &m) {
         TensorNamed(m, "l0.q").shape = {32, 2, 16};
       },
       {"'l0.q'", "a quantized weight is a [rows, cols] matrix"}},
      {"i8weight",
       schema::DType::Q8C,
       [](TestModule &m) { TensorNamed(m, "l0.q").dtype = schema::DType::I8; },
       {"'l0.q'", "a weight of dtype i8; i8 is a KV cache dtype"}},
      {"q4arena",
       schema::DType::Q4G32,
       [](TestModule &m) {
         TensorNamed(m, "l0.q.out").dtype = schema::DType::Q4G32;
       },
       {"'l0.q.out'", "an arena tensor of dtype q4g32"}},
      {"q4norm",
       schema::DType::Q4G32,
       [](TestModule &m) {
         // A norm weight must stay f32 even when it has a matrix shape.
         for (uint32_t id = 0; id < m.program.tensors.size(); ++id)
           if (m.program.tensors[id]->name == "l0.q")
             Instr(m, 1).inputs[1] = id;
       },
       {"instruction 1 (RmsNorm", "input 1 w (",
        "q4g32[32,32]); expected f32"}},
  };
  for (const Case &c : cases) {
    Status s = LoadMutated(std::string(c.name) + ".gmc", c.mutate,
                           QuantConfig(c.dtype));
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << c.name << ": " << s.message();
    for (const std::string &e : c.expect)
      EXPECT_NE(s.message().find(e), std::string::npos)
          << c.name << ": " << s.message();
  }
}

TEST(Loader, FusedOpErrors) {
  TinyConfig fused;
  fused.fused = true;
  TinyConfig last = fused;
  last.last_logits_only = true;
  struct Case {
    const char *name;
    TinyConfig cfg;
    std::function<void(TestModule &)> mutate;
    std::vector<std::string> expect;
  };
  std::vector<Case> cases = {
      {"absent_wq",
       fused,
       [](TestModule &m) {
         FirstOf(m, schema::OpCode::QkvProj).inputs[2] = kAbsent;
       },
       {"(QkvProj at ",
        "input 2 wq is absent (tensor id 0xFFFFFFFF), but QkvProj requires "
        "it"}},
      {"absent_final_norm",
       fused,
       [](TestModule &m) {
         FirstOf(m, schema::OpCode::FinalHead).inputs[1] = kAbsent;
       },
       {"input 1 norm is absent", "FinalHead requires it"}},
      {"absent_in_plain_op",
       fused,
       [](TestModule &m) {
         FirstOf(m, schema::OpCode::Linear).inputs[0] = kAbsent;
       },
       {"(Linear at ", "input 0 x is absent"}},
      {"absent_output",
       fused,
       [](TestModule &m) {
         FirstOf(m, schema::OpCode::QkvProj).outputs[1] = kAbsent;
       },
       {"tensor id 4294967295 out of range",
        "marks an absent input and cannot be an output"}},
      {"other_bad_id",
       fused,
       [](TestModule &m) {
         FirstOf(m, schema::OpCode::QkvProj).inputs[1] = 0xFFFFFFFEu;
       },
       {"tensor id 4294967294 out of range"}},
      {"qkv_two_outputs",
       fused,
       [](TestModule &m) {
         FirstOf(m, schema::OpCode::QkvProj).outputs.pop_back();
       },
       {"7 inputs and 2 outputs; expected 7 inputs (absent optional ones "
        "written as 0xFFFFFFFF) and 3 outputs"}},
      {"qkv_six_inputs",
       fused,
       [](TestModule &m) {
         FirstOf(m, schema::OpCode::QkvProj).inputs.pop_back();
       },
       {"6 inputs and 3 outputs; expected 7 inputs"}},
      {"qkv_wk_rows",
       fused,
       [](TestModule &m) {
         TensorNamed(m, "l0.k").shape = {16, 16};
         TensorNamed(m, "l0.k").size_bytes = 16 * 16 * 4;
       },
       {"input 3 wk (", "expected [8,16] (num_kv_heads * head_dim rows)"}},
      {"qkv_q_norm",
       fused,
       [](TestModule &m) {
         TensorNamed(m, "l0.q_norm").shape = {4};
         TensorNamed(m, "l0.q_norm").size_bytes = 16;
       },
       {"input 5 q_norm (", "expected [8]"}},
      {"qkv_v_shape",
       fused,
       [](TestModule &m) {
         uint32_t v = FirstOf(m, schema::OpCode::QkvProj).outputs[2];
         m.program.tensors[v]->shape = {kTokensDim, 4};
       },
       {"output 2 v (", "expected [T,8]"}},
      {"add_norm_w",
       fused,
       [](TestModule &m) {
         auto &i = FirstOf(m, schema::OpCode::AddRmsNorm);
         i.inputs[2] = FirstOf(m, schema::OpCode::QkvProj).inputs[5];
       },
       {"(AddRmsNorm at ", "input 2 w (", "expected [16]"}},
      {"add_norm_same_outputs",
       fused,
       [](TestModule &m) {
         auto &i = FirstOf(m, schema::OpCode::AddRmsNorm);
         i.outputs[1] = i.outputs[0];
       },
       {"outputs s and h are the same"}},
      {"mlp_up_shape",
       fused,
       [](TestModule &m) {
         TensorNamed(m, "l0.up").shape = {16, 16};
         TensorNamed(m, "l0.up").size_bytes = 16 * 16 * 4;
       },
       {"(GatedMlp at ", "input 3 w_up (",
        "expected the shape of w_gate "
        "[32,16]"}},
      {"head_rows",
       last,
       [](TestModule &m) {
         auto &fh = *m.program.functions[0]->instructions.back();
         m.program.tensors[fh.outputs[0]]->shape = {2, m.rows};
         m.program.functions[0]->outputs = {fh.outputs[0]};
       },
       {"expected an arena tensor f32[T,R] (every position) or f32[1,R]"}},
      {"head_out",
       last,
       [](TestModule &m) {
         // A [1,R] output in a [T,R] slot is fine; [T,R-1] is not.
         auto &fh = *m.program.functions[0]->instructions.back();
         uint32_t full = m.program.functions[1]->outputs[0];
         m.program.tensors[full]->shape = {kTokensDim, m.rows - 1};
         fh.outputs = {full};
         m.program.functions[0]->outputs = {full};
       },
       {"(FinalHead at ", "expected [T,400] or [1,400] (the last position "
                          "only)"}},
      {"head_softcap",
       fused,
       [](TestModule &m) {
         FirstOf(m, schema::OpCode::FinalHead).attrs->softcap = -1;
       },
       {"softcap -1", "expected >= 0"}},
  };
  for (const Case &c : cases) {
    Status s = LoadMutated(std::string(c.name) + ".gmc", c.mutate, c.cfg);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << c.name << ": " << s.message();
    for (const std::string &e : c.expect)
      EXPECT_NE(s.message().find(e), std::string::npos)
          << c.name << ": " << s.message();
  }
}

TEST(Loader, OptionalInputsMayBeAbsent) {
  // qk_norm off: every qkv_proj leaves q_norm and k_norm absent, and the
  // second layer's also leaves `norm` absent; gated_mlp likewise.
  TinyConfig c;
  c.fused = true;
  c.qk_norm = false;
  Status s = LoadMutated(
      "optional.gmc",
      [](TestModule &m) {
        auto &q = FirstOf(m, schema::OpCode::QkvProj);
        ASSERT_EQ(q.inputs[5], kAbsent);
        ASSERT_EQ(q.inputs[6], kAbsent);
      },
      c);
  EXPECT_TRUE(s.ok()) << s.message();
}

TEST(Loader, UnknownRequiredFeatureIsRefused) {
  Status s = LoadMutated("features.gmc", [](TestModule &m) {
    m.program.required_features = {"op:qkv_proj", "op:flash_decode",
                                   "dtype:q2k", "kv:i8"};
  });
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented) << s.message();
  EXPECT_NE(s.message().find("Module.required_features names features this "
                             "runtime does not know: \"op:flash_decode\", "
                             "\"dtype:q2k\"; this is gemmac runtime "),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("(module format 1." +
                             std::to_string(kModuleVersionMinor) + ")"),
            std::string::npos)
      << s.message();
  // Known ones are not listed as unknown.
  EXPECT_EQ(s.message().find("\"op:qkv_proj\""), std::string::npos);
  EXPECT_EQ(s.message().find("\"kv:i8\""), std::string::npos);

  // Checked before anything else: a module for a newer runtime is refused
  // for the feature, not for the unknown dtype it also holds.
  s = LoadMutated("features2.gmc", [](TestModule &m) {
    m.program.required_features = {"dtype:q3k"};
    m.program.tensors[1]->dtype = static_cast<schema::DType>(9);
  });
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented) << s.message();
  EXPECT_NE(s.message().find("a feature this runtime does not know: "
                             "\"dtype:q3k\""),
            std::string::npos)
      << s.message();
}

TEST(Loader, EveryKnownFeatureIsAccepted) {
  const std::vector<std::string> &known = KnownFeatures();
  for (const char *f :
       {"op:embed", "op:rms_norm", "op:lm_head", "op:add_rms_norm",
        "op:qkv_proj", "op:gated_mlp", "op:final_head", "dtype:q8c",
        "dtype:q4g32", "dtype:q4g128", "dtype:q4g32r8", "kv:i8", "kv:f32"})
    EXPECT_NE(std::find(known.begin(), known.end(), f), known.end()) << f;
  Status s = LoadMutated(
      "known.gmc", [&](TestModule &m) { m.program.required_features = known; });
  EXPECT_TRUE(s.ok()) << s.message();
}

TEST(Loader, KvDtypeMustBeF32OrI8) {
  for (schema::DType d : {schema::DType::BF16, schema::DType::Q8C,
                          static_cast<schema::DType>(42)}) {
    Status s = LoadMutated("kvdtype.gmc", [&](TestModule &m) {
      m.program.kv_layers[1]->dtype = d;
    });
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.message();
    EXPECT_NE(s.message().find(
                  "kv_layers[1]: dtype " + std::string(DTypeName(d)) + " (" +
                  std::to_string(int(d)) + "); a KV cache is f32 or i8"),
              std::string::npos)
        << s.message();
  }
  TinyConfig c;
  c.kv_i8 = true;
  EXPECT_TRUE(LoadMutated(
                  "kvi8.gmc", [](TestModule &) {}, c)
                  .ok());
}

} // namespace
} // namespace gemmac
