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

  // Module format 1.1 (docs/quantization.md, docs/ops.md "Fused ops").
  // The dtype of every projection (q, k, v, o, gate, up, down): F32, or a
  // quantized format (cols must fill its groups: hidden, heads * head_dim
  // and ff multiples of 32 or 128).
  schema::DType linear_dtype = schema::DType::F32;
  // Q8C/Q4G32/Q4G128: the embedding table in that format (overrides
  // bf16_embed); F32 leaves it to bf16_embed.
  schema::DType embed_quant = schema::DType::F32;
  // Gemma 3's QK-norm; without it a fused module leaves q_norm and k_norm
  // absent (tensor id 0xFFFFFFFF).
  bool qk_norm = true;
  // The same model written with the fused ops: qkv_proj (layer 0 folds its
  // input norm, later layers get it from add_rms_norm and leave `norm`
  // absent), add_rms_norm, gated_mlp (with and without its norm) and
  // final_head.
  bool fused = false;
  // Prefill returns f32[1,R], the last position's logits (needs fused).
  bool last_logits_only = false;
  // Int8 KV caches (KvLayer.dtype I8).
  bool kv_i8 = false;
};

struct TestModule {
  TinyConfig cfg;
  schema::ModuleT program;
  std::vector<uint8_t> weights; // segment 0
  // Every weight as the kernels must read it: quantized ones dequantized
  // from the bytes written (docs/quantization.md), so the reference runs on
  // exactly the stored weights.
  std::map<std::string, std::vector<float>> values;
  int32_t rows = 0; // tokenizer vocabulary
};

// IEEE half <-> float (round to nearest even), for the f16 scales of the
// q4 formats.
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);

// Quantizes a row-major [rows, cols] matrix into `dtype`'s layout (Q8C,
// Q4G32, Q4G128, or Q4G32R8 with rows a multiple of 8; docs/quantization.md),
// appending the bytes to *out, and returns the matrix those bytes decode to.
std::vector<float> QuantizeMatrix(const std::vector<float> &w, int64_t rows,
                                  int64_t cols, schema::DType dtype,
                                  std::vector<uint8_t> *out);

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

// Logits [tokens.size(), rows] of the whole sequence, computed directly in
// double precision from TestModule::values. With cfg.kv_i8 the keys and
// values go through the int8 round trip of the KV cache (scale = max|x| /
// 127 per position and KV head) as they would in the cache. The same for
// fused and unfused modules: the fused ops are defined as the chains they
// replace.
std::vector<float> ReferenceLogits(const TestModule &m,
                                   const std::vector<int32_t> &tokens);

// A fresh path under the test's temporary directory.
std::string TempPath(const std::string &name);

} // namespace test
} // namespace gemmac

#endif // GEMMAC_TEST_UNIT_RUNTIME_TEST_MODULE_H_
