// Tokenizer: sentencepiece behind gemmac::Status, plus the per-piece surface
// table StreamDecoder uses.
#include "text/tokenizer.h"

#include <sentencepiece_processor.h>

#include <exception>
#include <new>
#include <utility>

namespace gemmac {
namespace text {
namespace {

// The whitespace marker sentencepiece writes instead of ' ' (U+2581).
constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";

StatusCode MapCode(sentencepiece::util::StatusCode code) {
  using SpCode = sentencepiece::util::StatusCode;
  switch (code) {
  case SpCode::kOk:
    return StatusCode::kOk;
  case SpCode::kInvalidArgument:
  case SpCode::kOutOfRange:
    return StatusCode::kInvalidArgument;
  case SpCode::kNotFound:
    return StatusCode::kNotFound;
  case SpCode::kUnimplemented:
    return StatusCode::kUnimplemented;
  case SpCode::kResourceExhausted:
    return StatusCode::kResourceExhausted;
  case SpCode::kFailedPrecondition:
    return StatusCode::kFailedPrecondition;
  case SpCode::kCancelled:
    return StatusCode::kCancelled;
  case SpCode::kDataLoss:
    return StatusCode::kDataLoss;
  default:
    return StatusCode::kInternal;
  }
}

Status FromSp(const sentencepiece::util::Status &s, StatusCode code,
              const std::string &context) {
  if (s.ok())
    return Status::Ok();
  std::string message = context + ": " + s.message();
  return Status(code == StatusCode::kOk ? MapCode(s.code()) : code,
                std::move(message));
}

// "<0x41>" -> 0x41; -1 when the piece is not in that form.
int ParseBytePiece(const std::string &piece) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>')
    return -1;
  int value = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = piece[i];
    int digit;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if (c >= 'A' && c <= 'F')
      digit = c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      digit = c - 'a' + 10;
    else
      return -1;
    value = value * 16 + digit;
  }
  return value;
}

void AppendWithSpaces(std::string_view piece, std::string *out) {
  size_t pos = 0;
  while (pos < piece.size()) {
    const size_t hit = piece.find(kSpaceSymbol, pos);
    if (hit == std::string_view::npos) {
      out->append(piece.substr(pos));
      return;
    }
    out->append(piece.substr(pos, hit - pos));
    out->push_back(' ');
    pos = hit + kSpaceSymbol.size();
  }
}

} // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

Status Tokenizer::Load(const void *bytes, size_t size,
                       std::unique_ptr<Tokenizer> *out) {
  if (out == nullptr)
    return Status(StatusCode::kInvalidArgument,
                  "Tokenizer::Load: output pointer is null");
  out->reset();
  if (bytes == nullptr || size == 0)
    return Status(StatusCode::kDataLoss,
                  "tokenizer model: found 0 bytes, expected a serialized "
                  "sentencepiece ModelProto");
  try {
    std::unique_ptr<Tokenizer> tok(new Tokenizer());
    GEMMAC_RETURN_IF_ERROR(tok->Init(bytes, size));
    *out = std::move(tok);
    return Status::Ok();
  } catch (const std::bad_alloc &) {
    return Status(StatusCode::kResourceExhausted,
                  "tokenizer model: out of memory while loading " +
                      std::to_string(size) + " bytes");
  } catch (const std::exception &e) {
    return Status(StatusCode::kInternal,
                  std::string("tokenizer model: sentencepiece failed: ") +
                      e.what());
  }
}

Status Tokenizer::Init(const void *bytes, size_t size) {
  sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const std::string context = "tokenizer model (" + std::to_string(size) +
                              " bytes): not a usable sentencepiece ModelProto";
  GEMMAC_RETURN_IF_ERROR(FromSp(sp_->LoadFromSerializedProto(std::string_view(
                                    static_cast<const char *>(bytes), size)),
                                StatusCode::kDataLoss, context));
  const int n = sp_->GetPieceSize();
  if (n <= 0)
    return Status(StatusCode::kDataLoss,
                  context + ": found 0 pieces, expected at least 1");
  vocab_size_ = n;
  unk_id_ = sp_->unk_id();
  return BuildSurfaceTable();
}

Status Tokenizer::BuildSurfaceTable() {
  // sentencepiece renders the unknown piece as a fixed surface (" ⁇ " unless
  // the model overrides it); ask it rather than hard-coding it.
  std::string unk_surface;
  if (unk_id_ >= 0)
    GEMMAC_RETURN_IF_ERROR(
        FromSp(sp_->Decode(std::vector<int>{unk_id_}, &unk_surface),
               StatusCode::kDataLoss, "tokenizer model: decoding <unk>"));
  int probe_id = -1;
  offsets_.resize(static_cast<size_t>(vocab_size_) + 1);
  kinds_.resize(static_cast<size_t>(vocab_size_));
  surfaces_.clear();
  surfaces_.reserve(static_cast<size_t>(vocab_size_) * 4);
  for (int32_t id = 0; id < vocab_size_; ++id) {
    offsets_[id] = static_cast<uint32_t>(surfaces_.size());
    if (sp_->IsControl(id)) {
      kinds_[id] = PieceKind::kControl;
      continue;
    }
    const std::string &piece = sp_->IdToPiece(id);
    if (sp_->IsByte(id)) {
      const int byte = ParseBytePiece(piece);
      if (byte < 0)
        return Status(StatusCode::kDataLoss,
                      "tokenizer model: piece " + std::to_string(id) +
                          " is a byte piece named \"" + piece +
                          "\", expected the form <0xHH>");
      kinds_[id] = PieceKind::kByte;
      surfaces_.push_back(static_cast<char>(byte));
      continue;
    }
    kinds_[id] = PieceKind::kText;
    if (sp_->IsUnknown(id)) {
      surfaces_.append(unk_surface);
      continue;
    }
    if (probe_id < 0 && piece.size() > kSpaceSymbol.size() &&
        piece.compare(0, kSpaceSymbol.size(), kSpaceSymbol) == 0)
      probe_id = id;
    AppendWithSpaces(piece, &surfaces_);
  }
  offsets_[vocab_size_] = static_cast<uint32_t>(surfaces_.size());
  for (const char *marker : {"<start_of_turn>", "<end_of_turn>"}) {
    const int32_t id = PieceToId(marker);
    if (id >= 0 && kinds_[id] == PieceKind::kText)
      kinds_[id] = PieceKind::kTurnMarker;
  }
  if (surfaces_.size() > UINT32_MAX)
    return Status(StatusCode::kResourceExhausted,
                  "tokenizer model: decoded pieces total " +
                      std::to_string(surfaces_.size()) +
                      " bytes, expected at most 4 GiB");
  // Whether this model drops the leading space of the first piece is a
  // normalizer setting the public sentencepiece API does not expose; decode
  // one '▁'-prefixed piece and look.
  strips_leading_space_ = false;
  if (probe_id >= 0) {
    std::string probe;
    GEMMAC_RETURN_IF_ERROR(FromSp(
        sp_->Decode(std::vector<int>{probe_id}, &probe), StatusCode::kDataLoss,
        "tokenizer model: decoding a probe piece"));
    strips_leading_space_ = probe.empty() || probe[0] != ' ';
  }
  return Status::Ok();
}

Status Tokenizer::Encode(std::string_view text,
                         std::vector<int32_t> *ids) const {
  if (ids == nullptr)
    return Status(StatusCode::kInvalidArgument,
                  "Tokenizer::Encode: output pointer is null");
  ids->clear();
  try {
    std::vector<int> raw;
    GEMMAC_RETURN_IF_ERROR(FromSp(sp_->Encode(text, &raw), StatusCode::kOk,
                                  "tokenizer: encoding " +
                                      std::to_string(text.size()) +
                                      " bytes of text"));
    ids->assign(raw.begin(), raw.end());
    return Status::Ok();
  } catch (const std::bad_alloc &) {
    return Status(StatusCode::kResourceExhausted,
                  "tokenizer: out of memory encoding " +
                      std::to_string(text.size()) + " bytes of text");
  }
}

Status Tokenizer::Decode(const std::vector<int32_t> &ids,
                         std::string *text) const {
  if (text == nullptr)
    return Status(StatusCode::kInvalidArgument,
                  "Tokenizer::Decode: output pointer is null");
  text->clear();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size_)
      return Status(StatusCode::kInvalidArgument,
                    "tokenizer: id " + std::to_string(ids[i]) +
                        " at position " + std::to_string(i) +
                        " is outside the vocabulary [0, " +
                        std::to_string(vocab_size_) + ")");
  }
  try {
    std::vector<int> raw(ids.begin(), ids.end());
    return FromSp(sp_->Decode(raw, text), StatusCode::kOk,
                  "tokenizer: decoding " + std::to_string(ids.size()) + " ids");
  } catch (const std::bad_alloc &) {
    return Status(StatusCode::kResourceExhausted,
                  "tokenizer: out of memory decoding " +
                      std::to_string(ids.size()) + " ids");
  }
}

int32_t Tokenizer::PieceToId(std::string_view piece) const {
  const int id = sp_->PieceToId(piece);
  if (id < 0 || id >= vocab_size_)
    return -1;
  // Unknown pieces map to <unk>; only "<unk>" itself really is that id.
  if (id == unk_id_ && sp_->IdToPiece(id) != piece)
    return -1;
  return id;
}

std::string Tokenizer::IdToPiece(int32_t id) const {
  if (id < 0 || id >= vocab_size_)
    return std::string();
  return sp_->IdToPiece(id);
}

int32_t Tokenizer::vocab_size() const { return vocab_size_; }

bool Tokenizer::IsControl(int32_t id) const {
  if (id < 0 || id >= vocab_size_)
    return false;
  return kinds_[id] == PieceKind::kControl;
}

} // namespace text
} // namespace gemmac
