// libFuzzer target: the tokenizer bytes a module carries (a serialized
// sentencepiece ModelProto) through text::Tokenizer::Load, then the calls the
// session makes with a loaded tokenizer. A bad model must be a Status.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::unique_ptr<gemmac::text::Tokenizer> tok;
  if (!gemmac::text::Tokenizer::Load(data, size, &tok).ok())
    return 0;
  const int32_t vocab = tok->vocab_size();
  if (vocab <= 0)
    std::abort();
  std::vector<int32_t> ids;
  if (tok->Encode("Hello, wörld! 123 <start_of_turn>user\n\xF0\x9F\x98\x80",
                  &ids)
          .ok()) {
    for (int32_t id : ids)
      if (id < 0 || id >= vocab)
        std::abort();
    std::string text;
    (void)tok->Decode(ids, &text);
  }
  // Every piece through the paths the generate loop takes, bounded so a
  // huge vocabulary does not turn one input into a slow one.
  gemmac::text::StreamDecoder stream(*tok);
  const int32_t limit = vocab < 4096 ? vocab : 4096;
  for (int32_t id = -2; id < limit + 2; ++id) {
    (void)tok->IdToPiece(id);
    (void)tok->IsControl(id);
    (void)stream.Push(id);
  }
  (void)stream.Flush();
  (void)tok->PieceToId("<end_of_turn>");
  return 0;
}
