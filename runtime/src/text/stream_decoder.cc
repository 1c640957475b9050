// StreamDecoder: incremental detokenization that matches sentencepiece's
// Decode byte for byte, using the surface table Tokenizer precomputes.
#include "text/tokenizer.h"

#include <cstring>

namespace gemmac {
namespace text {
namespace {

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD"; // U+FFFD

enum class Utf8 { kComplete, kIncomplete, kInvalid };

// Classifies the character starting at p[0] with the same strictness as
// sentencepiece (no overlongs, no surrogates, nothing above U+10FFFF). A
// prefix that may still become valid is kIncomplete; one that never can is
// kInvalid.
Utf8 Classify(const unsigned char *p, int avail, int *len) {
  const unsigned char lead = p[0];
  if (lead < 0x80) {
    *len = 1;
    return Utf8::kComplete;
  }
  int need;
  if (lead >= 0xC2 && lead <= 0xDF)
    need = 2;
  else if (lead >= 0xE0 && lead <= 0xEF)
    need = 3;
  else if (lead >= 0xF0 && lead <= 0xF4)
    need = 4;
  else
    return Utf8::kInvalid;
  const int have = avail < need ? avail : need;
  for (int k = 1; k < have; ++k) {
    unsigned char lo = 0x80, hi = 0xBF;
    if (k == 1) {
      if (lead == 0xE0)
        lo = 0xA0; // overlong
      if (lead == 0xED)
        hi = 0x9F; // surrogates
      if (lead == 0xF0)
        lo = 0x90; // overlong
      if (lead == 0xF4)
        hi = 0x8F; // above U+10FFFF
    }
    if (p[k] < lo || p[k] > hi)
      return Utf8::kInvalid;
  }
  *len = need;
  return avail >= need ? Utf8::kComplete : Utf8::kIncomplete;
}

} // namespace

StreamDecoder::StreamDecoder(const Tokenizer &tokenizer) : tok_(tokenizer) {
  // Longer pieces grow the buffer once; after that Push never allocates.
  out_.reserve(64);
}

void StreamDecoder::Reset() {
  out_.clear();
  num_pending_ = 0;
  at_bos_ = true;
}

void StreamDecoder::DrainPending(bool end_of_run) {
  int start = 0;
  while (start < num_pending_) {
    int len = 1;
    const Utf8 kind = Classify(pending_ + start, num_pending_ - start, &len);
    if (kind == Utf8::kComplete) {
      out_.append(reinterpret_cast<const char *>(pending_ + start), len);
      start += len;
    } else if (kind == Utf8::kInvalid || end_of_run) {
      // Like sentencepiece: each byte that cannot start a character becomes
      // one U+FFFD, and decoding resumes at the next byte.
      out_.append(kReplacementChar);
      start += 1;
    } else {
      break;
    }
  }
  // At most three bytes of an unfinished character remain.
  const int left = num_pending_ - start;
  if (left > 0 && start > 0)
    std::memmove(pending_, pending_ + start, left);
  num_pending_ = left;
}

std::string_view StreamDecoder::Push(int32_t id) {
  out_.clear();
  if (id < 0 || id >= tok_.vocab_size_)
    return std::string_view();
  const uint32_t begin = tok_.offsets_[id];
  const uint32_t end = tok_.offsets_[id + 1];
  switch (tok_.kinds_[id]) {
  case Tokenizer::PieceKind::kByte:
    pending_[num_pending_++] =
        static_cast<unsigned char>(tok_.surfaces_[begin]);
    DrainPending(/*end_of_run=*/false);
    break;
  case Tokenizer::PieceKind::kControl:
  case Tokenizer::PieceKind::kTurnMarker:
    // A control or user-defined piece ends a run of byte pieces in
    // sentencepiece too.
    DrainPending(/*end_of_run=*/true);
    break;
  case Tokenizer::PieceKind::kText: {
    DrainPending(/*end_of_run=*/true);
    std::string_view surface(tok_.surfaces_.data() + begin, end - begin);
    // sentencepiece drops one leading space (the dummy prefix) from the
    // first piece that starts with one, as long as no text came before it.
    // The <unk> surface is never trimmed.
    if (tok_.strips_leading_space_ && at_bos_ && out_.empty() &&
        id != tok_.unk_id_ && !surface.empty() && surface[0] == ' ') {
      surface.remove_prefix(1);
      at_bos_ = false;
    }
    out_.append(surface);
    break;
  }
  }
  if (!out_.empty())
    at_bos_ = false;
  return out_;
}

std::string_view StreamDecoder::Flush() {
  out_.clear();
  DrainPending(/*end_of_run=*/true);
  num_pending_ = 0;
  at_bos_ = true;
  return out_;
}

} // namespace text
} // namespace gemmac
