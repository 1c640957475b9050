// Text <-> token ids for a Gemma module: a thin, exception-free wrapper over
// the sentencepiece model stored in the module file, plus a streaming
// detokenizer for the generate loop.
//
// The session loads one Tokenizer from the module's tokenizer bytes, encodes
// prompts (RenderChatTokens in chat_format.h builds on it) and gives each
// generated token to a StreamDecoder, which hands back exactly the text that
// became printable with that token. Everything reports errors through
// gemmac::Status; nothing throws or aborts on bad input.
#ifndef GEMMAC_RUNTIME_TEXT_TOKENIZER_H_
#define GEMMAC_RUNTIME_TEXT_TOKENIZER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "status.h"

namespace sentencepiece {
class SentencePieceProcessor;
} // namespace sentencepiece

namespace gemmac {
namespace text {

class StreamDecoder;

class Tokenizer {
public:
  // `bytes` is a serialized sentencepiece ModelProto (the `tokenizer.model`
  // file). The bytes are copied; the caller may unmap them afterwards.
  static Status Load(const void *bytes, size_t size,
                     std::unique_ptr<Tokenizer> *out);

  ~Tokenizer();
  Tokenizer(const Tokenizer &) = delete;
  Tokenizer &operator=(const Tokenizer &) = delete;

  // Never adds BOS/EOS: the chat renderer places every special token itself.
  Status Encode(std::string_view text, std::vector<int32_t> *ids) const;
  // Control tokens decode to nothing; an id outside [0, vocab_size) is an
  // error.
  Status Decode(const std::vector<int32_t> &ids, std::string *text) const;

  // -1 when `piece` is not in the vocabulary (sentencepiece itself would
  // answer with the unknown token's id).
  int32_t PieceToId(std::string_view piece) const;
  // The empty string for an id outside [0, vocab_size).
  std::string IdToPiece(int32_t id) const;
  int32_t vocab_size() const;
  // bos, eos, pad and the other control pieces; false out of range.
  bool IsControl(int32_t id) const;

private:
  friend class StreamDecoder;

  // How StreamDecoder turns one id into text without calling sentencepiece:
  // every piece's decoded surface is precomputed once at load time.
  // kTurnMarker: Gemma's <start_of_turn>/<end_of_turn> are user-defined
  // pieces (so they encode from text), but a stream must not print them.
  enum class PieceKind : uint8_t { kText, kByte, kControl, kTurnMarker };

  Tokenizer();
  Status Init(const void *bytes, size_t size);
  Status BuildSurfaceTable();

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  int32_t vocab_size_ = 0;
  int32_t unk_id_ = -1;
  // Decoded text of piece i is surfaces_[offsets_[i], offsets_[i + 1]); for a
  // byte piece it is the single raw byte.
  std::string surfaces_;
  std::vector<uint32_t> offsets_;
  std::vector<PieceKind> kinds_;
  // sentencepiece drops the leading space of the first piece when the model
  // adds a dummy prefix (not Gemma's case, but other models do).
  bool strips_leading_space_ = false;
};

// Turns a stream of generated ids into text incrementally. Push returns only
// the text completed by this id: byte-fallback pieces that together make one
// UTF-8 character produce nothing until the character is complete, control
// tokens (bos, eos) and the turn markers <start_of_turn>/<end_of_turn>
// produce nothing, and '▁' becomes a space. The concatenation of every Push
// followed by Flush equals Tokenizer::Decode of the whole sequence, except
// that Decode spells out the turn markers (sentencepiece stores them as
// ordinary user-defined pieces). Amortized O(1) per token; the returned view
// stays valid until the next call on this decoder.
class StreamDecoder {
public:
  explicit StreamDecoder(const Tokenizer &tokenizer);

  // Forget any partial character; start a new sequence.
  void Reset();
  // Out-of-range ids produce no text.
  std::string_view Push(int32_t id);
  // End of sequence: bytes of an unfinished character become U+FFFD each,
  // as Tokenizer::Decode renders them. Leaves the decoder reset.
  std::string_view Flush();

private:
  // Emits every complete or definitely-invalid character from pending_; with
  // `end_of_run` an incomplete tail is invalid too.
  void DrainPending(bool end_of_run);

  const Tokenizer &tok_;
  std::string out_;
  unsigned char pending_[4] = {0, 0, 0, 0};
  int num_pending_ = 0;
  // Still before any text and before the dummy-prefix space was dropped.
  bool at_bos_ = true;
};

} // namespace text
} // namespace gemmac

#endif // GEMMAC_RUNTIME_TEXT_TOKENIZER_H_
