// libFuzzer target: the chat-format renderer (runtime/src/text/chat_format.cc)
// on arbitrary conversations. Input: one flags byte (bit 0: add the generation
// prompt, bit 1: the system text folds into the first user turn), then
// messages separated by 0x1E, each "role 0x1F content". RenderChatText and
// RenderChatTokens walk the same segments, so they must agree on success,
// and every id must lie in the vocabulary.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/chat_format.h"
#include "text/tokenizer.h"

namespace {

const gemmac::text::Tokenizer &TestTokenizer() {
  static std::unique_ptr<gemmac::text::Tokenizer> tok = [] {
    std::ifstream in(GEMMAC_FUZZ_SPM_MODEL, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)),
                      std::istreambuf_iterator<char>());
    std::unique_ptr<gemmac::text::Tokenizer> t;
    gemmac::Status s =
        gemmac::text::Tokenizer::Load(bytes.data(), bytes.size(), &t);
    if (!s.ok()) {
      std::fprintf(stderr, "%s: %s\n", GEMMAC_FUZZ_SPM_MODEL,
                   s.message().c_str());
      std::abort();
    }
    return t;
  }();
  return *tok;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const gemmac::text::Tokenizer &tok = TestTokenizer();
  const bool generation_prompt = data[0] & 1;
  gemmac::text::ChatFormatSpec spec;
  spec.system_folds_into_first_user = data[0] & 2;

  std::vector<gemmac::text::ChatMessage> messages;
  std::string_view rest(reinterpret_cast<const char *>(data) + 1, size - 1);
  while (!rest.empty()) {
    size_t end = rest.find('\x1e');
    std::string_view m = rest.substr(0, end);
    size_t sep = m.find('\x1f');
    gemmac::text::ChatMessage msg;
    msg.role = std::string(m.substr(0, sep));
    if (sep != std::string_view::npos)
      msg.content = std::string(m.substr(sep + 1));
    messages.push_back(std::move(msg));
    rest = end == std::string_view::npos ? std::string_view()
                                         : rest.substr(end + 1);
  }

  std::string text;
  gemmac::Status st =
      gemmac::text::RenderChatText(spec, messages, generation_prompt, &text);
  const int32_t bos = 2, start = tok.PieceToId(spec.turn_start),
                end = tok.PieceToId(spec.turn_end);
  std::vector<int32_t> ids;
  gemmac::Status si = gemmac::text::RenderChatTokens(
      spec, tok, bos, start, end, messages, generation_prompt, &ids);
  if (st.ok() != si.ok()) {
    std::fprintf(stderr, "text: %s\ntokens: %s\n", st.message().c_str(),
                 si.message().c_str());
    std::abort();
  }
  if (!st.ok() && st.message().empty())
    std::abort();
  for (int32_t id : ids)
    if (id < 0 || id >= tok.vocab_size())
      std::abort();
  return 0;
}
