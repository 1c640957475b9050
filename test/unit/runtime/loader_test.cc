// The loader and verifier: a good module loads; each kind of corruption is
// refused with a message naming the file, the field and what was expected,
// and nothing crashes.
#include <cstring>
#include <gtest/gtest.h>

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
                   const std::function<void(TestModule &)> &mutate) {
  TestModule m = BuildTinyGemma(TinyConfig());
  mutate(m);
  std::string path = TempPath(name);
  WriteModule(m, path);
  Status s = LoadPath(path);
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  std::remove(path.c_str());
  return s;
}

schema::InstructionT &Instr(TestModule &m, size_t i) {
  return *m.program.functions[0]->instructions[i];
}

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

} // namespace
} // namespace gemmac
