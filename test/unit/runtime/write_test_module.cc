// Writes the runtime tests' tiny module to a path, for the tool tests
// (gemma-run, gemma-dump) and for trying the embedding example by hand.
#include <cstdio>

#include "test_module.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT.gmc\n", argv[0]);
    return 2;
  }
  gemmac::test::WriteModule(
      gemmac::test::BuildTinyGemma(gemmac::test::TinyConfig()), argv[1]);
  return 0;
}
