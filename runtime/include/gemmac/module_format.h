// The byte layout of a gemmac module file (.gmc) around its FlatBuffers
// program. Written by the compiler's bytecode emitter, read by the runtime's
// loader; docs/module-format.md describes it for humans.
//
//   [ModuleHeader, 64 bytes][program: FlatBuffer (schema/module.fbs)]
//   [zero padding to 4 KiB][weight segment 0][padding][segment 1]...
//
// All integers are little-endian.
#ifndef GEMMAC_MODULE_FORMAT_H_
#define GEMMAC_MODULE_FORMAT_H_

#include <cstdint>

namespace gemmac {

inline constexpr char kModuleMagic[8] = {'G', 'E', 'M', 'M', 'A', 'C', 'M', 'D'};
// Bump the major version for a change an older runtime cannot read; bump the
// minor version for fields an older runtime may safely ignore. 1.1 added
// quantized weight dtypes, fused ops, absent optional inputs, int8 KV caches,
// one-row prefill logits, Module.required_features and Module.quantization
// (docs/module-format.md, "Versioning", says what a 1.0 runtime does).
inline constexpr uint32_t kModuleVersionMajor = 1;
inline constexpr uint32_t kModuleVersionMinor = 1;
inline constexpr uint64_t kSegmentAlignment = 4096;
// The symbolic token dimension in Tensor.shape.
inline constexpr int64_t kTokensDim = -1;

struct ModuleHeader {
  char magic[8];
  uint32_t version_major;
  uint32_t version_minor;
  uint64_t program_offset; // the FlatBuffer, from the start of the file
  uint64_t program_size;
  uint64_t weights_offset; // first weight segment (4 KiB aligned)
  uint64_t weights_size;   // from weights_offset to the end of the last segment
  uint64_t file_size;      // the whole file, to detect truncation
  uint64_t reserved;
};
static_assert(sizeof(ModuleHeader) == 64, "ModuleHeader is 64 bytes on disk");

// FNV-1a, 64 bit: the per-segment checksum stored in Segment.checksum.
inline uint64_t Fnv1a64(const void* data, uint64_t size,
                        uint64_t hash = 0xcbf29ce484222325ull) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (uint64_t i = 0; i < size; ++i) {
    hash ^= p[i];
    hash *= 0x100000001b3ull;
  }
  return hash;
}

} // namespace gemmac

#endif // GEMMAC_MODULE_FORMAT_H_
