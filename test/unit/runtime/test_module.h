// Builds tiny Gemma-3-shaped modules for the runtime tests with the
// FlatBuffers object API, writes them as .gmc files (header, program,
// 4 KiB-aligned weight segment), and computes their logits with a
// straightforward full-sequence reference (no KV cache, no plugin) to
// compare the VM against.
#ifndef GEMMAC_TEST_UNIT_RUNTIME_TEST_MODULE_H_
#define GEMMAC_TEST_UNIT_RUNTIME_TEST_MODULE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "gemmac/module_format.h"
#include "gemmac/module_generated.h"

namespace gemmac {
namespace test {

struct TinyConfig {
  int hidden = 16, heads = 2, kv_heads = 1, head_dim = 8, ff = 32;
  int layers = 2; // even layers slide (window), odd layers are global
  int window = 4;
  int prefill_max = 8;
  int max_context = 64;
  int pad_rows = 3; // embedding rows past the tokenizer's vocabulary
  bool bf16_embed = true;
  float final_softcap = 30.0f;
  uint32_t seed = 1;
};

struct TestModule {
  TinyConfig cfg;
  schema::ModuleT program;
  std::vector<uint8_t> weights;                     // segment 0
  std::map<std::string, std::vector<float>> values; // as the kernels read them
  int32_t rows = 0;                                 // tokenizer vocabulary
};

// The tokenizer model used by every test (trained at build time).
std::string ReadFile(const std::string &path);
std::string TestTokenizerBytes();

TestModule BuildTinyGemma(const TinyConfig &cfg);

// Writes `m` to `path`; `tweak_header` may corrupt the header before it is
// written. Returns the file's bytes too.
std::vector<uint8_t>
WriteModule(const TestModule &m, const std::string &path,
            const std::function<void(ModuleHeader &)> &tweak_header = {});
void WriteBytes(const std::string &path, const std::vector<uint8_t> &bytes);

// Logits [tokens.size(), rows] of the whole sequence, computed directly.
std::vector<float> ReferenceLogits(const TestModule &m,
                                   const std::vector<int32_t> &tokens);

// A fresh path under the test's temporary directory.
std::string TempPath(const std::string &name);

} // namespace test
} // namespace gemmac

#endif // GEMMAC_TEST_UNIT_RUNTIME_TEST_MODULE_H_
