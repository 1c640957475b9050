// Writes the runtime tests' tiny module to a path, for the tool tests
// (gemma-run, gemma-dump) and for trying the embedding example by hand.
//
//   gemmac_write_test_module OUT.gmc [--fused] [--quant q8c|q4g32|q4g128]
//                            [--kv-i8] [--prefill-logits-last]
//
// The options write the module format 1.1 features: fused ops, quantized
// projections (and a q8c embedding), int8 KV caches, a one-row prefill.
#include <cstdio>
#include <cstring>
#include <string>

#include "test_module.h"

int main(int argc, char **argv) {
  using gemmac::schema::DType;
  gemmac::test::TinyConfig cfg;
  const char *out = nullptr;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--fused") {
      cfg.fused = true;
    } else if (a == "--kv-i8") {
      cfg.kv_i8 = true;
    } else if (a == "--prefill-logits-last") {
      cfg.fused = true;
      cfg.last_logits_only = true;
    } else if (a == "--quant" && i + 1 < argc) {
      std::string q = argv[++i];
      cfg.linear_dtype = q == "q8c"      ? DType::Q8C
                         : q == "q4g32"  ? DType::Q4G32
                         : q == "q4g128" ? DType::Q4G128
                                         : DType::F32;
      if (cfg.linear_dtype == DType::F32) {
        std::fprintf(stderr, "unknown --quant %s\n", q.c_str());
        return 2;
      }
      // Projections whose columns fill the groups.
      cfg.hidden = cfg.linear_dtype == DType::Q4G128 ? 128 : 32;
      cfg.head_dim = cfg.hidden / cfg.heads;
      cfg.ff = 2 * cfg.hidden;
      cfg.embed_quant = DType::Q8C;
    } else if (a[0] != '-' && out == nullptr) {
      out = argv[i];
    } else {
      out = nullptr;
      break;
    }
  }
  if (out == nullptr) {
    std::fprintf(stderr,
                 "usage: %s OUT.gmc [--fused] [--quant q8c|q4g32|q4g128] "
                 "[--kv-i8] [--prefill-logits-last]\n",
                 argv[0]);
    return 2;
  }
  gemmac::test::WriteModule(gemmac::test::BuildTinyGemma(cfg), out);
  return 0;
}
