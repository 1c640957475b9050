// Gemma's chat template, rendered without a Jinja engine.
//
// The session turns a conversation into the prompt the model was trained on:
// RenderChatText gives the exact text Hugging Face's chat template produces
// (for display, logging and tests), RenderChatTokens the ids the model reads,
// with each turn marker as its single special id and the plain text between
// markers encoded separately, as HF's tokenizer does around special tokens.
// The module file stores a ChatFormatSpec; Gemma 1/2 set
// system_folds_into_first_user = false, Gemma 3 true.
#ifndef GEMMAC_RUNTIME_TEXT_CHAT_FORMAT_H_
#define GEMMAC_RUNTIME_TEXT_CHAT_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "status.h"
#include "text/tokenizer.h"

namespace gemmac {
namespace text {

struct ChatFormatSpec {
  std::string turn_start = "<start_of_turn>";
  std::string turn_end = "<end_of_turn>";
  std::string user_role = "user";
  std::string model_role = "model";
  // Gemma has no system role: Gemma 3's template prepends the system text to
  // the first user turn, Gemma 1/2's rejects it.
  bool system_folds_into_first_user = true;
};

struct ChatMessage {
  std::string role; // "system", "user", "model" (or "assistant")
  std::string content;
};

// `<bos><start_of_turn>user\n{system}\n\n{user}<end_of_turn>\n`
// `<start_of_turn>model\n{reply}<end_of_turn>\n` ... and, with
// add_generation_prompt, a final `<start_of_turn>model\n`. Message text is
// trimmed. An optional system message must come first and be followed by a
// user message; after it roles alternate user/model starting with user.
// Errors name the offending message index.
Status RenderChatText(const ChatFormatSpec &spec,
                      const std::vector<ChatMessage> &messages,
                      bool add_generation_prompt, std::string *out);

// The ids of RenderChatText's text: bos_id, turn_start_id and turn_end_id
// stand for `<bos>` and the markers; each text run between them is encoded on
// its own (never with BOS/EOS). The ids must lie in the tokenizer's vocabulary.
Status RenderChatTokens(const ChatFormatSpec &spec, const Tokenizer &tokenizer,
                        int32_t bos_id, int32_t turn_start_id,
                        int32_t turn_end_id,
                        const std::vector<ChatMessage> &messages,
                        bool add_generation_prompt, std::vector<int32_t> *ids);

} // namespace text
} // namespace gemmac

#endif // GEMMAC_RUNTIME_TEXT_CHAT_FORMAT_H_
