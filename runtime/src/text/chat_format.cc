// Gemma chat template. Both renderers walk one list of segments so the text
// and the token ids cannot drift apart.
#include "text/chat_format.h"

#include <string_view>

namespace gemmac {
namespace text {
namespace {

enum class SegmentKind { kBos, kTurnStart, kTurnEnd, kText };

struct Segment {
  SegmentKind kind;
  std::string text; // only for kText
};

// Jinja's `trim` strips whitespace at both ends; ASCII whitespace covers what
// chat clients send.
std::string_view Trim(std::string_view s) {
  constexpr std::string_view kWhitespace = " \t\n\r\f\v";
  const size_t first = s.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos)
    return std::string_view();
  const size_t last = s.find_last_not_of(kWhitespace);
  return s.substr(first, last - first + 1);
}

enum class Role { kSystem, kUser, kModel, kUnknown };

Role ParseRole(const std::string &role) {
  if (role == "system")
    return Role::kSystem;
  if (role == "user")
    return Role::kUser;
  if (role == "model" || role == "assistant")
    return Role::kModel;
  return Role::kUnknown;
}

Status BuildSegments(const ChatFormatSpec &spec,
                     const std::vector<ChatMessage> &messages,
                     bool add_generation_prompt,
                     std::vector<Segment> *segments) {
  segments->clear();
  segments->push_back({SegmentKind::kBos, {}});
  size_t first = 0;
  std::string first_user_prefix;
  if (!messages.empty() && ParseRole(messages[0].role) == Role::kSystem) {
    if (!spec.system_folds_into_first_user)
      return Status(StatusCode::kInvalidArgument,
                    "chat message 0: role \"system\": this model's chat format "
                    "has no system role (Gemma 1 and 2 were not trained with "
                    "one; put the instructions in the first user message)");
    if (messages.size() < 2 || ParseRole(messages[1].role) != Role::kUser)
      return Status(StatusCode::kInvalidArgument,
                    "chat message 0: a system message must be followed by a "
                    "user message, found " +
                        (messages.size() < 2
                             ? std::string("nothing")
                             : "role \"" + messages[1].role + "\""));
    first_user_prefix = std::string(Trim(messages[0].content)) + "\n\n";
    first = 1;
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage &m = messages[i];
    const Role role = ParseRole(m.role);
    const bool expect_user = (i - first) % 2 == 0;
    if (role == Role::kUnknown)
      return Status(StatusCode::kInvalidArgument,
                    "chat message " + std::to_string(i) + ": role \"" + m.role +
                        "\" is unknown, expected \"system\", \"user\", "
                        "\"model\" or \"assistant\"");
    if (role == Role::kSystem)
      return Status(StatusCode::kInvalidArgument,
                    "chat message " + std::to_string(i) +
                        ": a system message is only allowed as message 0");
    if ((role == Role::kUser) != expect_user)
      return Status(StatusCode::kInvalidArgument,
                    "chat message " + std::to_string(i) + ": role \"" + m.role +
                        "\", expected \"" + (expect_user ? "user" : "model") +
                        "\" (roles must alternate user/model starting with "
                        "user)");
    const std::string &role_name =
        role == Role::kUser ? spec.user_role : spec.model_role;
    segments->push_back({SegmentKind::kTurnStart, {}});
    std::string body = role_name + "\n";
    if (i == first)
      body += first_user_prefix;
    body.append(Trim(m.content));
    segments->push_back({SegmentKind::kText, std::move(body)});
    segments->push_back({SegmentKind::kTurnEnd, {}});
    segments->push_back({SegmentKind::kText, "\n"});
  }
  if (add_generation_prompt) {
    segments->push_back({SegmentKind::kTurnStart, {}});
    segments->push_back({SegmentKind::kText, spec.model_role + "\n"});
  }
  return Status::Ok();
}

} // namespace

Status RenderChatText(const ChatFormatSpec &spec,
                      const std::vector<ChatMessage> &messages,
                      bool add_generation_prompt, std::string *out) {
  if (out == nullptr)
    return Status(StatusCode::kInvalidArgument,
                  "RenderChatText: output pointer is null");
  out->clear();
  std::vector<Segment> segments;
  GEMMAC_RETURN_IF_ERROR(
      BuildSegments(spec, messages, add_generation_prompt, &segments));
  for (const Segment &s : segments) {
    switch (s.kind) {
    case SegmentKind::kBos:
      out->append("<bos>");
      break;
    case SegmentKind::kTurnStart:
      out->append(spec.turn_start);
      break;
    case SegmentKind::kTurnEnd:
      out->append(spec.turn_end);
      break;
    case SegmentKind::kText:
      out->append(s.text);
      break;
    }
  }
  return Status::Ok();
}

Status RenderChatTokens(const ChatFormatSpec &spec, const Tokenizer &tokenizer,
                        int32_t bos_id, int32_t turn_start_id,
                        int32_t turn_end_id,
                        const std::vector<ChatMessage> &messages,
                        bool add_generation_prompt, std::vector<int32_t> *ids) {
  if (ids == nullptr)
    return Status(StatusCode::kInvalidArgument,
                  "RenderChatTokens: output pointer is null");
  ids->clear();
  const int32_t vocab = tokenizer.vocab_size();
  const struct {
    const char *name;
    int32_t id;
  } specials[] = {{"bos_id", bos_id},
                  {"turn_start_id", turn_start_id},
                  {"turn_end_id", turn_end_id}};
  for (const auto &s : specials) {
    if (s.id < 0 || s.id >= vocab)
      return Status(StatusCode::kInvalidArgument,
                    std::string("RenderChatTokens: ") + s.name + " is " +
                        std::to_string(s.id) + ", expected an id in [0, " +
                        std::to_string(vocab) + ")");
  }
  std::vector<Segment> segments;
  GEMMAC_RETURN_IF_ERROR(
      BuildSegments(spec, messages, add_generation_prompt, &segments));
  std::vector<int32_t> piece_ids;
  for (const Segment &s : segments) {
    switch (s.kind) {
    case SegmentKind::kBos:
      ids->push_back(bos_id);
      break;
    case SegmentKind::kTurnStart:
      ids->push_back(turn_start_id);
      break;
    case SegmentKind::kTurnEnd:
      ids->push_back(turn_end_id);
      break;
    case SegmentKind::kText:
      GEMMAC_RETURN_IF_ERROR(tokenizer.Encode(s.text, &piece_ids));
      ids->insert(ids->end(), piece_ids.begin(), piece_ids.end());
      break;
    }
  }
  return Status::Ok();
}

} // namespace text
} // namespace gemmac
