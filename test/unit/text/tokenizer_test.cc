// Tokenizer against a Gemma-like sentencepiece model trained from corpus.txt.
#include "text/tokenizer.h"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "text_test_util.h"

namespace gemmac {
namespace text {
namespace {

using testing::LoadTestTokenizer;
using testing::ReadFileBytes;

std::string RoundTrip(const Tokenizer &tok, const std::string &text,
                      std::vector<int32_t> *ids) {
  EXPECT_TRUE(tok.Encode(text, ids).ok());
  std::string back;
  Status s = tok.Decode(*ids, &back);
  EXPECT_TRUE(s.ok()) << s.message();
  return back;
}

TEST(TokenizerTest, SpecialIdsMatchGemmaLayout) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 400);
  EXPECT_EQ(tok->PieceToId("<pad>"), 0);
  EXPECT_EQ(tok->PieceToId("<eos>"), 1);
  EXPECT_EQ(tok->PieceToId("<bos>"), 2);
  EXPECT_EQ(tok->PieceToId("<unk>"), 3);
  EXPECT_EQ(tok->PieceToId("<start_of_turn>"), 4);
  EXPECT_EQ(tok->PieceToId("<end_of_turn>"), 5);
  EXPECT_EQ(tok->IdToPiece(2), "<bos>");
  EXPECT_EQ(tok->IdToPiece(5), "<end_of_turn>");
  EXPECT_TRUE(tok->IsControl(0));
  EXPECT_TRUE(tok->IsControl(1));
  EXPECT_TRUE(tok->IsControl(2));
  EXPECT_FALSE(tok->IsControl(3)); // unknown, not control
  EXPECT_FALSE(tok->IsControl(4)); // user-defined
  EXPECT_FALSE(tok->IsControl(-1));
  EXPECT_FALSE(tok->IsControl(400));
}

TEST(TokenizerTest, PieceToIdIsMinusOneForAbsentPieces) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->PieceToId("<start_of_image>"), -1);
  EXPECT_EQ(tok->PieceToId(""), -1);
  EXPECT_EQ(tok->PieceToId("definitely not a piece"), -1);
  EXPECT_EQ(tok->IdToPiece(-1), "");
  EXPECT_EQ(tok->IdToPiece(400), "");
  // Every piece maps back to its own id.
  for (int32_t id = 0; id < tok->vocab_size(); ++id)
    EXPECT_EQ(tok->PieceToId(tok->IdToPiece(id)), id) << tok->IdToPiece(id);
}

TEST(TokenizerTest, EncodeNeverAddsBosOrEos) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  std::vector<int32_t> ids;
  ASSERT_TRUE(tok->Encode("the", &ids).ok());
  ASSERT_FALSE(ids.empty());
  for (int32_t id : ids)
    EXPECT_FALSE(tok->IsControl(id));
  ASSERT_TRUE(tok->Encode("", &ids).ok());
  EXPECT_TRUE(ids.empty());
}

TEST(TokenizerTest, RoundTripsEnglishWithSpacesKept) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  std::vector<int32_t> ids;
  for (const std::string text :
       {"The quick brown fox jumps over the lazy dog.",
        "  leading and trailing spaces  ", "line one\nline two\n\ttabbed",
        "What is the capital of France?"}) {
    EXPECT_EQ(RoundTrip(*tok, text, &ids), text);
  }
  // No dummy prefix: text starting with a word has no leading space piece.
  ASSERT_TRUE(tok->Encode("the", &ids).ok());
  EXPECT_NE(tok->IdToPiece(ids[0]).rfind("\xE2\x96\x81", 0), 0u);
}

TEST(TokenizerTest, DigitsAreSplitOneByOne) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  std::vector<int32_t> ids;
  EXPECT_EQ(RoundTrip(*tok, "2048", &ids), "2048");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(tok->IdToPiece(ids[0]), "2");
  EXPECT_EQ(tok->IdToPiece(ids[1]), "0");
  EXPECT_EQ(tok->IdToPiece(ids[2]), "4");
  EXPECT_EQ(tok->IdToPiece(ids[3]), "8");
}

TEST(TokenizerTest, EmojiAndCjkGoThroughByteFallback) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  std::vector<int32_t> ids;
  // U+1F600 is F0 9F 98 80: not in the vocabulary, so four byte pieces.
  EXPECT_EQ(RoundTrip(*tok, "\xF0\x9F\x98\x80", &ids), "\xF0\x9F\x98\x80");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(tok->IdToPiece(ids[0]), "<0xF0>");
  EXPECT_EQ(tok->IdToPiece(ids[1]), "<0x9F>");
  EXPECT_EQ(tok->IdToPiece(ids[2]), "<0x98>");
  EXPECT_EQ(tok->IdToPiece(ids[3]), "<0x80>");
  // 日本語 is three 3-byte characters.
  const std::string cjk = "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E";
  EXPECT_EQ(RoundTrip(*tok, cjk, &ids), cjk);
  EXPECT_EQ(ids.size(), 9u);
  const std::string mixed = "Hello \xF0\x9F\x98\x80, " + cjk + " 42!";
  EXPECT_EQ(RoundTrip(*tok, mixed, &ids), mixed);
  // No <unk> anywhere: byte fallback covers every byte.
  for (int32_t id : ids)
    EXPECT_NE(id, 3);
}

TEST(TokenizerTest, TurnMarkersEncodeAsSingleIds) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  std::vector<int32_t> ids;
  ASSERT_TRUE(tok->Encode("<start_of_turn>user", &ids).ok());
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 4);
}

TEST(TokenizerTest, DecodeRejectsOutOfRangeIds) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  std::string text = "stale";
  Status s = tok->Decode({10, 400, 11}, &text);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("400"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("position 1"), std::string::npos) << s.message();
  EXPECT_EQ(tok->Decode({-1}, &text).code(), StatusCode::kInvalidArgument);
}

TEST(TokenizerTest, ControlTokensDecodeToNothing) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  std::vector<int32_t> ids;
  ASSERT_TRUE(tok->Encode("hello there", &ids).ok());
  ids.insert(ids.begin(), 2);
  ids.push_back(1);
  std::string text;
  ASSERT_TRUE(tok->Decode(ids, &text).ok());
  EXPECT_EQ(text, "hello there");
}

TEST(TokenizerTest, LoadRejectsGarbageWithoutCrashing) {
  std::unique_ptr<Tokenizer> tok;
  Status s = Tokenizer::Load(nullptr, 0, &tok);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("0 bytes"), std::string::npos) << s.message();
  EXPECT_EQ(tok, nullptr);

  std::mt19937 rng(1234);
  for (size_t size : {1u, 7u, 64u, 1000u, 65536u}) {
    std::string junk(size, '\0');
    for (char &c : junk)
      c = static_cast<char>(rng() & 0xFF);
    s = Tokenizer::Load(junk.data(), junk.size(), &tok);
    EXPECT_FALSE(s.ok()) << "accepted " << size << " random bytes";
    EXPECT_FALSE(s.message().empty());
    EXPECT_EQ(tok, nullptr);
  }

  const std::string text = "this is plain text, not a protobuf at all";
  s = Tokenizer::Load(text.data(), text.size(), &tok);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("sentencepiece"), std::string::npos)
      << s.message();

  // A real model cut in half.
  const std::string model = ReadFileBytes(GEMMAC_TEXT_TEST_MODEL);
  ASSERT_GT(model.size(), 100u);
  s = Tokenizer::Load(model.data(), model.size() / 2, &tok);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(tok, nullptr);
}

} // namespace
} // namespace text
} // namespace gemmac
