// Shared by the text unit tests: loads the sentencepiece models that the test
// CMake step trains from corpus.txt.
#ifndef GEMMAC_TEST_UNIT_TEXT_TEXT_TEST_UTIL_H_
#define GEMMAC_TEST_UNIT_TEXT_TEXT_TEST_UTIL_H_

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "text/tokenizer.h"

namespace gemmac {
namespace text {
namespace testing {

inline std::string ReadFileBytes(const char *path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Fails the calling test (and returns null) if the model cannot be loaded.
inline std::unique_ptr<Tokenizer> LoadTokenizer(const char *path) {
  const std::string bytes = ReadFileBytes(path);
  EXPECT_FALSE(bytes.empty()) << "cannot read " << path;
  std::unique_ptr<Tokenizer> tok;
  Status s = Tokenizer::Load(bytes.data(), bytes.size(), &tok);
  EXPECT_TRUE(s.ok()) << path << ": " << s.message();
  return tok;
}

inline std::unique_ptr<Tokenizer> LoadTestTokenizer() {
  return LoadTokenizer(GEMMAC_TEXT_TEST_MODEL);
}

} // namespace testing
} // namespace text
} // namespace gemmac

#endif // GEMMAC_TEST_UNIT_TEXT_TEXT_TEST_UTIL_H_
