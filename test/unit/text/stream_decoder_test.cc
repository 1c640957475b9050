// StreamDecoder: the concatenated stream must equal sentencepiece's own
// Decode of the whole sequence, and multi-byte characters must appear only
// once complete.
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
using testing::LoadTokenizer;

std::string StreamAll(StreamDecoder *dec, const std::vector<int32_t> &ids) {
  std::string out;
  for (int32_t id : ids)
    out.append(dec->Push(id));
  out.append(dec->Flush());
  return out;
}

// What the stream must print: Decode's text, with the turn markers silent.
// Swapping them for <bos> (a control piece, also silent) keeps sentencepiece's
// grouping of byte pieces identical.
std::string Reference(const Tokenizer &tok, std::vector<int32_t> ids) {
  const int32_t start = tok.PieceToId("<start_of_turn>");
  const int32_t end = tok.PieceToId("<end_of_turn>");
  for (int32_t &id : ids)
    if (id == start || id == end)
      id = 2;
  std::string text;
  EXPECT_TRUE(tok.Decode(ids, &text).ok());
  return text;
}

std::string RandomText(std::mt19937 *rng) {
  static const char *const kParts[] = {
      "the",
      "model",
      "answers",
      " ",
      " ",
      "  ",
      "\n",
      "\t",
      ",",
      ".",
      "?",
      "0",
      "7",
      "2048",
      "3.14159",
      "Paris",
      "caf\xC3\xA9",                                      // café
      "na\xC3\xAFve",                                     // naïve
      "\xF0\x9F\x98\x80",                                 // 😀
      "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",                 // 👍🏽
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",             // 日本語
      "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82", // Привет
      "<start_of_turn>",
      "<end_of_turn>",
      "\xEF\xBF\xBD", // U+FFFD itself
      "quick brown fox",
      "harbour",
      "lighthouse"};
  constexpr size_t kNum = sizeof(kParts) / sizeof(kParts[0]);
  std::uniform_int_distribution<size_t> pick(0, kNum - 1);
  std::uniform_int_distribution<int> len(0, 30);
  std::string text;
  const int n = len(*rng);
  for (int i = 0; i < n; ++i)
    text += kParts[pick(*rng)];
  return text;
}

TEST(StreamDecoderTest, StreamEqualsFullDecodeForRandomTexts) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  StreamDecoder dec(*tok);
  std::mt19937 rng(42);
  std::vector<int32_t> ids;
  for (int trial = 0; trial < 300; ++trial) {
    const std::string text = RandomText(&rng);
    ASSERT_TRUE(tok->Encode(text, &ids).ok());
    std::string full;
    ASSERT_TRUE(tok->Decode(ids, &full).ok());
    ASSERT_EQ(full, text);
    EXPECT_EQ(StreamAll(&dec, ids), Reference(*tok, ids)) << "trial " << trial;
  }
}

TEST(StreamDecoderTest, StreamEqualsFullDecodeForRandomIdSequences) {
  // Arbitrary ids, byte pieces in any order included: broken UTF-8 must come
  // out as the same U+FFFD characters sentencepiece writes.
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  StreamDecoder dec(*tok);
  std::mt19937 rng(7);
  const int32_t first_byte = tok->PieceToId("<0x00>");
  ASSERT_GE(first_byte, 0);
  std::uniform_int_distribution<int32_t> any(0, tok->vocab_size() - 1);
  std::uniform_int_distribution<int32_t> byte(0, 255);
  std::uniform_int_distribution<int> coin(0, 2);
  std::uniform_int_distribution<int> len(0, 40);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<int32_t> ids(len(rng));
    for (int32_t &id : ids)
      id = coin(rng) == 0 ? any(rng) : first_byte + byte(rng);
    EXPECT_EQ(StreamAll(&dec, ids), Reference(*tok, ids)) << "trial " << trial;
  }
}

TEST(StreamDecoderTest, MultiByteCharacterAppearsOnlyWhenComplete) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  StreamDecoder dec(*tok);
  std::vector<int32_t> ids;
  ASSERT_TRUE(tok->Encode("a\xF0\x9F\x98\x80!", &ids).ok());
  ASSERT_EQ(ids.size(), 6u);
  EXPECT_EQ(dec.Push(ids[0]), "a");
  EXPECT_EQ(dec.Push(ids[1]), "");
  EXPECT_EQ(dec.Push(ids[2]), "");
  EXPECT_EQ(dec.Push(ids[3]), "");
  EXPECT_EQ(dec.Push(ids[4]), "\xF0\x9F\x98\x80");
  EXPECT_EQ(dec.Push(ids[5]), "!");
  EXPECT_EQ(dec.Flush(), "");
}

TEST(StreamDecoderTest, SpacesAndControlTokens) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  StreamDecoder dec(*tok);
  EXPECT_EQ(dec.Push(tok->PieceToId("\xE2\x96\x81the")), " the");
  EXPECT_EQ(dec.Push(2), "");  // <bos>
  EXPECT_EQ(dec.Push(1), "");  // <eos>
  EXPECT_EQ(dec.Push(-5), ""); // out of range
  EXPECT_EQ(dec.Push(400), "");
  // Turn markers are user-defined pieces that Decode spells out; the stream
  // keeps them silent, and like control pieces they end a byte run.
  EXPECT_EQ(dec.Push(tok->PieceToId("<end_of_turn>")), "");
  EXPECT_EQ(dec.Push(tok->PieceToId("<start_of_turn>")), "");
  EXPECT_EQ(dec.Push(tok->PieceToId("<0xC3>")), "");
  EXPECT_EQ(dec.Push(tok->PieceToId("<end_of_turn>")), "\xEF\xBF\xBD");
  std::string decoded;
  ASSERT_TRUE(tok->Decode({4, 5}, &decoded).ok());
  EXPECT_EQ(decoded, "<start_of_turn><end_of_turn>");
}

TEST(StreamDecoderTest, UnfinishedCharacterBecomesReplacementOnFlush) {
  auto tok = LoadTestTokenizer();
  ASSERT_NE(tok, nullptr);
  StreamDecoder dec(*tok);
  const int32_t f0 = tok->PieceToId("<0xF0>");
  const int32_t x9f = tok->PieceToId("<0x9F>");
  EXPECT_EQ(dec.Push(f0), "");
  EXPECT_EQ(dec.Push(x9f), "");
  EXPECT_EQ(dec.Flush(), "\xEF\xBF\xBD\xEF\xBF\xBD");
  // Reset drops a partial character without emitting it.
  EXPECT_EQ(dec.Push(f0), "");
  dec.Reset();
  EXPECT_EQ(dec.Push(tok->PieceToId("a")), "a");
  // A text piece ends the byte run, as in sentencepiece.
  EXPECT_EQ(dec.Push(f0), "");
  EXPECT_EQ(dec.Push(tok->PieceToId("a")), "\xEF\xBF\xBD"
                                           "a");
}

TEST(StreamDecoderTest, DummyPrefixModelDropsFirstSpaceLikeDecode) {
  auto tok = LoadTokenizer(GEMMAC_TEXT_TEST_MODEL_DUMMY_PREFIX);
  ASSERT_NE(tok, nullptr);
  StreamDecoder dec(*tok);
  std::mt19937 rng(99);
  std::vector<int32_t> ids;
  for (int trial = 0; trial < 200; ++trial) {
    const std::string text = RandomText(&rng);
    ASSERT_TRUE(tok->Encode(text, &ids).ok());
    if (trial % 3 == 0)
      ids.insert(ids.begin(), 2); // <bos> first
    EXPECT_EQ(StreamAll(&dec, ids), Reference(*tok, ids)) << "trial " << trial;
  }
}

} // namespace
} // namespace text
} // namespace gemmac
