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
#include <vector>

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
  // The first byte of weight segment `index` inside the mapping.
  const uint8_t *SegmentData(uint32_t index) const {
    return base_ + program_->segments()->Get(index)->offset();
  }

private:
  Module() = default;

  std::string path_;
  const uint8_t *base_ = nullptr;
  uint64_t size_ = 0;
  ModuleHeader header_{};
  const schema::Module *program_ = nullptr;
  std::unique_ptr<text::Tokenizer> tokenizer_;
};

// The tensor id an instruction writes for an absent optional input
// (module.fbs, Instruction.inputs; docs/ops.md, "Fused ops"). The VM hands
// the plugin a tensor with data == NULL, rank 0, dtype GEMMAC_DTYPE_NONE.
inline constexpr uint32_t kNoTensor = 0xFFFFFFFFu;

// The semantic checks (module_verifier.cc), run by Load after the
// FlatBuffers Verifier: every reference in range, every instruction
// consistent with docs/ops.md. `file` only names the file in messages.
Status VerifyModuleProgram(const std::string &file, const ModuleHeader &header,
                           uint64_t file_size, const schema::Module &program);

// Bytes of one element of a dense dtype (f32, bf16, f16, i32, i8); 0 for the
// block-quantized weight formats (their sizes come from gemmac_weight_bytes)
// and for unknown values.
size_t DTypeSize(schema::DType dtype);
// "f32", "q4g32", ...; "unknown" for a value this runtime does not know.
const char *DTypeName(schema::DType dtype);
// Q8C, Q4G32, Q4G128, Q4G32R8: block formats over a [rows, cols] weight.
bool IsQuantizedDType(schema::DType dtype);
// Dtypes a weight tensor may have: f32, bf16, f16, i32 and the quantized
// formats (i8 is a KV cache dtype only).
bool IsWeightDType(schema::DType dtype);
// The dialect mnemonic of an op ("rms_norm", "qkv_proj"); nullptr when the
// value is not an op this runtime knows.
const char *OpMnemonic(schema::OpCode op);

// The Module.required_features this runtime can honour: "op:<mnemonic>" for
// every op it knows, "dtype:<name>" for every weight dtype, "kv:f32" and
// "kv:i8". A module naming anything else is refused at load.
const std::vector<std::string> &KnownFeatures();
// This runtime's version and the module format it writes/reads, for
// messages: "gemmac runtime 0.1.0 (module format 1.1)".
std::string RuntimeVersionString();

} // namespace gemmac

#endif // GEMMAC_RUNTIME_MODULE_H_
