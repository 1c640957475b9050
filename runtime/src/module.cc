// Maps a module file and runs the checks in the order that makes each one
// safe: the header before the offsets it gives, the FlatBuffers Verifier
// before any field is read, the semantic checks before the VM trusts ids.
#include "module.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flatbuffers/flatbuffers.h"

namespace gemmac {

Module::~Module() {
  if (base_ != nullptr)
    munmap(const_cast<uint8_t *>(base_), size_);
}

Status Module::Load(const std::string &path, std::shared_ptr<Module> *out) {
  std::shared_ptr<Module> m(new Module());
  m->path_ = path;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Status(StatusCode::kNotFound,
                  path + ": cannot open module: " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return Status(StatusCode::kInvalidArgument, path + ": not a regular file");
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < sizeof(ModuleHeader)) {
    close(fd);
    return Status(StatusCode::kDataLoss,
                  path + ": file is " + std::to_string(size) +
                      " bytes; a module starts with a " +
                      std::to_string(sizeof(ModuleHeader)) +
                      "-byte header (truncated or not a module)");
  }
  void *p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED)
    return Status(StatusCode::kInternal,
                  path + ": mmap failed: " + std::strerror(errno));
  m->base_ = static_cast<const uint8_t *>(p);
  m->size_ = size;

  ModuleHeader &h = m->header_;
  std::memcpy(&h, m->base_, sizeof(h));
  if (std::memcmp(h.magic, kModuleMagic, sizeof(kModuleMagic)) != 0)
    return Status(StatusCode::kDataLoss,
                  path + ": bad magic: expected \"GEMMACMD\"; not a gemmac "
                         "module file");
  if (h.version_major != kModuleVersionMajor)
    return Status(StatusCode::kUnimplemented,
                  path + ": module version " + std::to_string(h.version_major) +
                      "." + std::to_string(h.version_minor) +
                      " is not supported; this runtime reads " +
                      std::to_string(kModuleVersionMajor) + ".x");
  if (h.file_size != size)
    return Status(
        StatusCode::kDataLoss,
        path + ": header.file_size is " + std::to_string(h.file_size) +
            " bytes but the file has " + std::to_string(size) +
            (size < h.file_size ? " (truncated)" : " (trailing bytes)"));
  if (h.program_offset < sizeof(ModuleHeader) || h.program_offset % 8 != 0 ||
      h.program_size == 0 || h.program_offset > size ||
      h.program_size > size - h.program_offset)
    return Status(StatusCode::kDataLoss,
                  path + ": header.program_offset/program_size (" +
                      std::to_string(h.program_offset) + ", " +
                      std::to_string(h.program_size) +
                      ") must be an 8-aligned range after the header inside "
                      "the " +
                      std::to_string(size) + "-byte file");
  if (h.weights_offset > size || h.weights_size > size - h.weights_offset)
    return Status(StatusCode::kDataLoss,
                  path + ": header.weights_offset/weights_size (" +
                      std::to_string(h.weights_offset) + ", " +
                      std::to_string(h.weights_size) + ") lie outside the " +
                      std::to_string(size) + "-byte file");

  const uint8_t *prog = m->base_ + h.program_offset;
  if (!flatbuffers::BufferHasIdentifier(prog, schema::ModuleIdentifier()))
    return Status(StatusCode::kDataLoss,
                  path + ": program has no \"GMC1\" file identifier "
                         "(corrupt FlatBuffer)");
  flatbuffers::Verifier verifier(prog, h.program_size, /*max_depth=*/64,
                                 /*max_tables=*/100000000);
  if (!schema::VerifyModuleBuffer(verifier))
    return Status(StatusCode::kDataLoss,
                  path + ": the FlatBuffers program (" +
                      std::to_string(h.program_size) + " bytes at offset " +
                      std::to_string(h.program_offset) +
                      ") fails verification against schema/module.fbs");
  m->program_ = schema::GetModule(prog);
  GEMMAC_RETURN_IF_ERROR(VerifyModuleProgram(path, h, size, *m->program_));

  const auto *tok = m->program_->tokenizer();
  Status s = text::Tokenizer::Load(tok->data(), tok->size(), &m->tokenizer_);
  if (!s.ok())
    return Status(StatusCode::kDataLoss,
                  path + ": Module.tokenizer: " + s.message());
  if (static_cast<uint32_t>(m->tokenizer_->vocab_size()) !=
      m->program_->tokenizer_vocab_size())
    return Status(StatusCode::kDataLoss,
                  path + ": Module.tokenizer_vocab_size is " +
                      std::to_string(m->program_->tokenizer_vocab_size()) +
                      " but the tokenizer has " +
                      std::to_string(m->tokenizer_->vocab_size()) + " pieces");
  *out = std::move(m);
  return Status::Ok();
}

Status Module::VerifyChecksums() const {
  const auto *segs = program_->segments();
  if (segs == nullptr)
    return Status::Ok();
  for (uint32_t i = 0; i < segs->size(); ++i) {
    const schema::Segment *seg = segs->Get(i);
    uint64_t got = Fnv1a64(base_ + seg->offset(), seg->size());
    if (got != seg->checksum()) {
      char buf[160];
      std::snprintf(buf, sizeof(buf),
                    ": segment %u checksum mismatch: stored 0x%016llx, "
                    "computed 0x%016llx (weights corrupted)",
                    i, static_cast<unsigned long long>(seg->checksum()),
                    static_cast<unsigned long long>(got));
      return Status(StatusCode::kDataLoss, path_ + buf);
    }
  }
  return Status::Ok();
}

const schema::Function *Module::FindFunction(std::string_view name) const {
  const auto *fns = program_->functions();
  for (uint32_t i = 0; i < fns->size(); ++i) {
    const schema::Function *f = fns->Get(i);
    if (f->name() != nullptr && f->name()->string_view() == name)
      return f;
  }
  return nullptr;
}

const void *Module::WeightData(const schema::Tensor &tensor) const {
  const schema::Segment *seg = program_->segments()->Get(tensor.segment());
  return base_ + seg->offset() + tensor.offset();
}

uint64_t Module::weights_bytes() const {
  uint64_t total = 0;
  if (const auto *segs = program_->segments())
    for (uint32_t i = 0; i < segs->size(); ++i)
      total += segs->Get(i)->size();
  return total;
}

size_t DTypeSize(schema::DType dtype) {
  switch (dtype) {
  case schema::DType::F32:
  case schema::DType::I32:
    return 4;
  case schema::DType::BF16:
  case schema::DType::F16:
    return 2;
  case schema::DType::I8:
    return 1;
  case schema::DType::Q8C:
  case schema::DType::Q4G32:
  case schema::DType::Q4G128:
  case schema::DType::Q4G32R8:
    return 0;
  }
  return 0;
}

const char *DTypeName(schema::DType dtype) {
  switch (dtype) {
  case schema::DType::F32:
    return "f32";
  case schema::DType::BF16:
    return "bf16";
  case schema::DType::F16:
    return "f16";
  case schema::DType::I32:
    return "i32";
  case schema::DType::I8:
    return "i8";
  case schema::DType::Q8C:
    return "q8c";
  case schema::DType::Q4G32:
    return "q4g32";
  case schema::DType::Q4G128:
    return "q4g128";
  case schema::DType::Q4G32R8:
    return "q4g32r8";
  }
  return "unknown";
}

bool IsQuantizedDType(schema::DType dtype) {
  return dtype == schema::DType::Q8C || dtype == schema::DType::Q4G32 ||
         dtype == schema::DType::Q4G128 || dtype == schema::DType::Q4G32R8;
}

bool IsWeightDType(schema::DType dtype) {
  switch (dtype) {
  case schema::DType::F32:
  case schema::DType::BF16:
  case schema::DType::F16:
  case schema::DType::I32:
    return true;
  default:
    return IsQuantizedDType(dtype);
  }
}

const char *OpMnemonic(schema::OpCode op) {
  // The names of compiler/dialect/GemmaOps.td, which the compiler writes
  // into Module.required_features as "op:<mnemonic>".
  switch (op) {
  case schema::OpCode::Embed:
    return "embed";
  case schema::OpCode::RmsNorm:
    return "rms_norm";
  case schema::OpCode::Linear:
    return "linear";
  case schema::OpCode::Rope:
    return "rope";
  case schema::OpCode::Attention:
    return "attention";
  case schema::OpCode::GeluTanh:
    return "gelu_tanh";
  case schema::OpCode::Mul:
    return "mul";
  case schema::OpCode::Add:
    return "add";
  case schema::OpCode::Softcap:
    return "softcap";
  case schema::OpCode::Scale:
    return "scale";
  case schema::OpCode::LmHead:
    return "lm_head";
  case schema::OpCode::AddRmsNorm:
    return "add_rms_norm";
  case schema::OpCode::QkvProj:
    return "qkv_proj";
  case schema::OpCode::GatedMlp:
    return "gated_mlp";
  case schema::OpCode::FinalHead:
    return "final_head";
  }
  return nullptr;
}

const std::vector<std::string> &KnownFeatures() {
  static const std::vector<std::string> known = [] {
    std::vector<std::string> k;
    for (uint32_t op = 0; op <= static_cast<uint32_t>(schema::OpCode::MAX);
         ++op)
      if (const char *n = OpMnemonic(static_cast<schema::OpCode>(op)))
        k.push_back(std::string("op:") + n);
    for (uint32_t d = 0; d <= static_cast<uint32_t>(schema::DType::MAX); ++d)
      if (IsWeightDType(static_cast<schema::DType>(d)))
        k.push_back(std::string("dtype:") +
                    DTypeName(static_cast<schema::DType>(d)));
    k.push_back("kv:f32");
    k.push_back("kv:i8");
    return k;
  }();
  return known;
}

std::string RuntimeVersionString() {
#ifndef GEMMAC_RUNTIME_VERSION
#define GEMMAC_RUNTIME_VERSION "unknown"
#endif
  return std::string("gemmac runtime ") + GEMMAC_RUNTIME_VERSION +
         " (module format " + std::to_string(kModuleVersionMajor) + "." +
         std::to_string(kModuleVersionMinor) + ")";
}

} // namespace gemmac
