// Gemma chat template: exact strings (as HF's chat template renders them) and
// the agreement between the text and the token renderings.
#include "text/chat_format.h"

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "text_test_util.h"

namespace gemmac {
namespace text {
namespace {

using testing::LoadTestTokenizer;

std::string Render(const std::vector<ChatMessage> &messages,
                   bool add_generation_prompt,
                   const ChatFormatSpec &spec = ChatFormatSpec()) {
  std::string out;
  Status s = RenderChatText(spec, messages, add_generation_prompt, &out);
  EXPECT_TRUE(s.ok()) << s.message();
  return out;
}

TEST(ChatFormatTest, SingleTurnWithGenerationPrompt) {
  EXPECT_EQ(Render({{"user", "Why is the sky blue?"}}, true),
            "<bos><start_of_turn>user\nWhy is the sky blue?<end_of_turn>\n"
            "<start_of_turn>model\n");
  EXPECT_EQ(Render({{"user", "Hi"}}, false),
            "<bos><start_of_turn>user\nHi<end_of_turn>\n");
}

TEST(ChatFormatTest, MultiTurnTrimsAndAcceptsAssistant) {
  EXPECT_EQ(Render({{"user", "  Hello!\n"},
                    {"assistant", "\nHi, how can I help?  "},
                    {"user", "Tell me a story."}},
                   true),
            "<bos><start_of_turn>user\nHello!<end_of_turn>\n"
            "<start_of_turn>model\nHi, how can I help?<end_of_turn>\n"
            "<start_of_turn>user\nTell me a story.<end_of_turn>\n"
            "<start_of_turn>model\n");
  EXPECT_EQ(Render({{"user", "a"}, {"model", "b"}}, false),
            "<bos><start_of_turn>user\na<end_of_turn>\n"
            "<start_of_turn>model\nb<end_of_turn>\n");
}

TEST(ChatFormatTest, SystemFoldsIntoFirstUserTurn) {
  EXPECT_EQ(Render({{"system", "Be brief. "},
                    {"user", "What is 2+2?"},
                    {"model", "4"},
                    {"user", "And 3+3?"}},
                   true),
            "<bos><start_of_turn>user\nBe brief.\n\nWhat is 2+2?<end_of_turn>\n"
            "<start_of_turn>model\n4<end_of_turn>\n"
            "<start_of_turn>user\nAnd 3+3?<end_of_turn>\n"
            "<start_of_turn>model\n");
}

TEST(ChatFormatTest, EmptyConversation) {
  EXPECT_EQ(Render({}, false), "<bos>");
  EXPECT_EQ(Render({}, true), "<bos><start_of_turn>model\n");
}

TEST(ChatFormatTest, RejectsSystemWhenTheModelHasNoSystemRole) {
  ChatFormatSpec spec;
  spec.system_folds_into_first_user = false;
  std::string out;
  Status s = RenderChatText(spec, {{"system", "x"}, {"user", "y"}}, true, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("this model's chat format has no system role"),
            std::string::npos)
      << s.message();
  // Without a system message the same spec renders normally.
  EXPECT_EQ(Render({{"user", "y"}}, false, spec),
            "<bos><start_of_turn>user\ny<end_of_turn>\n");
}

TEST(ChatFormatTest, RejectsBadAlternationNamingTheIndex) {
  struct Case {
    std::vector<ChatMessage> messages;
    const char *expected;
  };
  const Case cases[] = {
      {{{"model", "hi"}}, "chat message 0"},
      {{{"user", "a"}, {"user", "b"}}, "chat message 1"},
      {{{"user", "a"}, {"model", "b"}, {"assistant", "c"}}, "chat message 2"},
      {{{"system", "s"}, {"model", "b"}}, "chat message 0"},
      {{{"system", "s"}}, "chat message 0"},
      {{{"user", "a"}, {"system", "s"}}, "chat message 1"},
      {{{"user", "a"}, {"tool", "t"}}, "chat message 1"},
  };
  for (const Case &c : cases) {
    std::string out;
    Status s = RenderChatText(ChatFormatSpec(), c.messages, true, &out);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.expected;
    EXPECT_NE(s.message().find(c.expected), std::string::npos)
        << "expected \"" << c.expected << "\" in: " << s.message();
  }
}

// Gemma 1/2 modules store system = reject: the token path refuses a system
// message as the text path does (HF's Gemma 1/2 templates raise "System role
// not supported"), and renders everything else exactly as Gemma 3.
TEST(ChatFormatTest, Gemma1And2RejectSystemInBothRenderings) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  ChatFormatSpec gemma12;
  gemma12.system_folds_into_first_user = false;
  std::vector<int32_t> ids;
  Status s =
      RenderChatTokens(gemma12, *tok, 2, 4, 5,
                       {{"system", "Be brief."}, {"user", "Hi"}}, true, &ids);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("has no system role"), std::string::npos)
      << s.message();
  const std::vector<ChatMessage> turns = {
      {"user", "Hi"}, {"model", "Hello"}, {"user", "Bye"}};
  std::vector<int32_t> gemma3_ids;
  ASSERT_TRUE(RenderChatTokens(gemma12, *tok, 2, 4, 5, turns, true, &ids).ok());
  ASSERT_TRUE(RenderChatTokens(ChatFormatSpec(), *tok, 2, 4, 5, turns, true,
                               &gemma3_ids)
                  .ok());
  EXPECT_EQ(ids, gemma3_ids);
  EXPECT_EQ(Render(turns, true, gemma12), Render(turns, true));
}

// The turn markers are single ids that differ per vocabulary (Gemma 1/2:
// 106/107 of 256000; Gemma 3: 105/106 of 262144); the module carries them and
// the renderer writes exactly those, never a spelling of the marker text.
TEST(ChatFormatTest, TurnIdsOfEachVocabularyAreWrittenAsGiven) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  ASSERT_GT(tok->vocab_size(), 107);
  for (const auto &[start, end] : {std::pair<int32_t, int32_t>{106, 107},
                                   std::pair<int32_t, int32_t>{105, 106}}) {
    std::vector<int32_t> ids;
    ASSERT_TRUE(RenderChatTokens(ChatFormatSpec(), *tok, 2, start, end,
                                 {{"user", "Hi"}, {"model", "Yo"}}, true, &ids)
                    .ok());
    std::vector<int32_t> expected = {2}, part;
    for (const char *text : {"user\nHi", "model\nYo"}) {
      expected.push_back(start);
      ASSERT_TRUE(tok->Encode(text, &part).ok());
      expected.insert(expected.end(), part.begin(), part.end());
      expected.push_back(end);
      ASSERT_TRUE(tok->Encode("\n", &part).ok());
      expected.insert(expected.end(), part.begin(), part.end());
    }
    expected.push_back(start);
    ASSERT_TRUE(tok->Encode("model\n", &part).ok());
    expected.insert(expected.end(), part.begin(), part.end());
    EXPECT_EQ(ids, expected) << "turn ids " << start << "/" << end;
  }
}

// Detokenizes with the markers spelled out, the way RenderChatText writes
// them: bos is a control token that Decode would drop.
std::string Detokenize(const Tokenizer &tok, const std::vector<int32_t> &ids,
                       int32_t bos, int32_t start, int32_t end) {
  std::string out, part;
  std::vector<int32_t> run;
  auto flush = [&] {
    EXPECT_TRUE(tok.Decode(run, &part).ok());
    out += part;
    run.clear();
  };
  for (int32_t id : ids) {
    if (id == bos || id == start || id == end) {
      flush();
      out += tok.IdToPiece(id);
    } else {
      run.push_back(id);
    }
  }
  flush();
  return out;
}

TEST(ChatFormatTest, TokensDetokenizeToTheRenderedText) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  const int32_t bos = tok->PieceToId("<bos>");
  const int32_t start = tok->PieceToId("<start_of_turn>");
  const int32_t end = tok->PieceToId("<end_of_turn>");
  const std::vector<std::vector<ChatMessage>> conversations = {
      {{"user", "Why is the sky blue?"}},
      {{"system", "You answer in 12 words. "},
       {"user", "Tell me about the harbour \xF0\x9F\x98\x80"},
       {"model", " The harbour had 3 boats in the morning. "},
       {"user", "\xE6\x97\xA5\xE6\x9C\xAC?"}},
      {},
  };
  for (const auto &messages : conversations) {
    for (bool gen : {false, true}) {
      std::string text;
      ASSERT_TRUE(RenderChatText(ChatFormatSpec(), messages, gen, &text).ok());
      std::vector<int32_t> ids;
      Status s = RenderChatTokens(ChatFormatSpec(), *tok, bos, start, end,
                                  messages, gen, &ids);
      ASSERT_TRUE(s.ok()) << s.message();
      ASSERT_FALSE(ids.empty());
      EXPECT_EQ(ids[0], bos);
      EXPECT_EQ(Detokenize(*tok, ids, bos, start, end), text);
    }
  }
}

TEST(ChatFormatTest, TokensHaveMarkersAsSingleIdsAndSeparateSegments) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  const int32_t bos = 2, start = 4, end = 5;
  std::vector<int32_t> ids;
  ASSERT_TRUE(RenderChatTokens(ChatFormatSpec(), *tok, bos, start, end,
                               {{"user", "Hi"}}, true, &ids)
                  .ok());
  // <bos> <start> enc("user\nHi") <end> enc("\n") <start> enc("model\n")
  std::vector<int32_t> expected = {bos, start};
  std::vector<int32_t> part;
  ASSERT_TRUE(tok->Encode("user\nHi", &part).ok());
  expected.insert(expected.end(), part.begin(), part.end());
  expected.push_back(end);
  ASSERT_TRUE(tok->Encode("\n", &part).ok());
  expected.insert(expected.end(), part.begin(), part.end());
  expected.push_back(start);
  ASSERT_TRUE(tok->Encode("model\n", &part).ok());
  expected.insert(expected.end(), part.begin(), part.end());
  EXPECT_EQ(ids, expected);
}

TEST(ChatFormatTest, TokensRejectOutOfRangeSpecialIds) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  std::vector<int32_t> ids;
  Status s = RenderChatTokens(ChatFormatSpec(), *tok, 2, 4, 400,
                              {{"user", "Hi"}}, true, &ids);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("turn_end_id"), std::string::npos) << s.message();
  s = RenderChatTokens(ChatFormatSpec(), *tok, 2, 4, 5, {{"model", "Hi"}}, true,
                       &ids);
  EXPECT_NE(s.message().find("chat message 0"), std::string::npos)
      << s.message();
}

} // namespace
} // namespace text
} // namespace gemmac
