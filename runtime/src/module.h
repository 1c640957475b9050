// A loaded, verified gemmac module file.
//
// The session and the tools (gemma-run, gemma-dump) hold a Module through a
// shared_ptr: it owns the read-only mapping of the .gmc file, the tokenizer
// built from the module's bytes and a view of the FlatBuffers program. Load()
// runs every check before anything trusts the file (header, FlatBuffers
// Verifier, then the semantic checks of module_verifier.cc), so the VM can
// index tensors and compute from weight pointers without re-checking.
// Weights are never copied: WeightData() points into the mapping.
#ifndef GEMMAC_RUNTIME_MODULE_H_
#define GEMMAC_RUNTIME_MODULE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "gemmac/module_format.h"
#include "gemmac/module_generated.h"
#include "status.h"
#include "text/tokenizer.h"

namespace gemmac {

class Module {
public:
  // Maps `path`, checks it and loads its tokenizer. Every failure is a
  // Status naming the file; nothing aborts on a corrupt file.
  static Status Load(const std::string &path, std::shared_ptr<Module> *out);

  ~Module();
  Module(const Module &) = delete;
  Module &operator=(const Module &) = delete;

  // FNV-1a-64 over every weight segment against Segment.checksum. Reads
  // every weight byte, so it is opt-in (gemma-run --verify-weights).
  Status VerifyChecksums() const;

  const std::string &path() const { return path_; }
  const ModuleHeader &header() const { return header_; }
  const schema::Module &program() const { return *program_; }
  const text::Tokenizer &tokenizer() const { return *tokenizer_; }
  uint64_t file_size() const { return size_; }

  // nullptr when absent (Load guarantees "prefill" and "decode" exist).
  const schema::Function *FindFunction(std::string_view name) const;
  // The first byte of a weight tensor inside the mapping (read-only).
  const void *WeightData(const schema::Tensor &tensor) const;
  // Bytes of all weight segments together.
  uint64_t weights_bytes() const;

private:
  Module() = default;

  std::string path_;
  const uint8_t *base_ = nullptr;
  uint64_t size_ = 0;
  ModuleHeader header_{};
  const schema::Module *program_ = nullptr;
  std::unique_ptr<text::Tokenizer> tokenizer_;
};

// The semantic checks (module_verifier.cc), run by Load after the
// FlatBuffers Verifier: every reference in range, every instruction
// consistent with docs/ops.md. `file` only names the file in messages.
Status VerifyModuleProgram(const std::string &file, const ModuleHeader &header,
                           uint64_t file_size, const schema::Module &program);

// Bytes of one element of `dtype`; 0 for an unknown dtype.
size_t DTypeSize(schema::DType dtype);
const char *DTypeName(schema::DType dtype);

} // namespace gemmac

#endif // GEMMAC_RUNTIME_MODULE_H_
