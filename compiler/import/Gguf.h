//===- Gguf.h - the header of a GGUF file, bounds-checked ---------*- C++
//-*-===//
//
// Reads the header of a GGUF file (versions 2 and 3, little-endian): the
// typed metadata (every value type, arrays nested to any sane depth) and the
// tensor infos, with each tensor's absolute byte range in the file. Only the
// header is read; the weights stay in the file and the importer refers to
// them by (file, offset) as it does for safetensors. A GGUF file is untrusted
// input: every length, count, dimension and offset is checked against the
// file size with overflow-safe arithmetic before it is used, so a truncated
// or hand-edited file gives a message naming the file, the key or tensor,
// what was found and what was expected. Called by the GGUF importer.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_IMPORT_GGUF_H
#define GEMMAC_IMPORT_GGUF_H

#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/LogicalResult.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"

#include <optional>
#include <string>
#include <vector>

namespace gemmac {

/// Metadata value types, numbered as the GGUF spec numbers them.
enum class GgufValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

/// "u32", "string", "array", ...: how messages spell a value type.
llvm::StringRef ggufValueTypeName(GgufValueType type);

struct GgufValue {
  GgufValueType type = GgufValueType::U8;
  // The value of a scalar, in whichever of these fits its type (integers in
  // both when they fit; bools as 0/1).
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  std::string str;
  // An array: the element type and the elements.
  GgufValueType elementType = GgufValueType::U8;
  std::vector<GgufValue> elements;

  bool isInteger() const;
  bool isFloat() const {
    return type == GgufValueType::F32 || type == GgufValueType::F64;
  }
};

/// ggml tensor types, numbered as ggml numbers them. Only those whose block
/// layout the reader knows are listed; others are read as "unknown type N".
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

/// Elements per block and bytes per block of a ggml type; {0, 0} when the
/// reader does not know the type.
struct GgmlTypeTraits {
  uint64_t blockElements = 0;
  uint64_t blockBytes = 0;
};
GgmlTypeTraits ggmlTypeTraits(uint32_t type);
/// "Q4_K", or "unknown type N" for one the reader does not know.
std::string ggmlTypeName(uint32_t type);

struct GgufTensor {
  std::string name;
  /// ggml order: dims[0] is the innermost (contiguous) dimension, so a
  /// [rows, cols] matrix is stored as {cols, rows}.
  llvm::SmallVector<uint64_t, 4> dims;
  uint32_t type = 0;
  uint64_t offset = 0; // absolute byte offset of the data in the file
  uint64_t size = 0;   // bytes; 0 for a type the reader does not know
};

struct GgufFile {
  std::string path; // absolute
  uint32_t version = 0;
  uint64_t fileSize = 0;
  uint64_t alignment = 32;
  uint64_t dataOffset = 0; // start of the tensor data section
  /// Keys in file order, values by key.
  std::vector<std::string> keys;
  llvm::StringMap<GgufValue> metadata;
  std::vector<GgufTensor> tensors; // in file order
  llvm::StringMap<size_t> tensorIndex;

  const GgufValue *find(llvm::StringRef key) const {
    auto it = metadata.find(key);
    return it == metadata.end() ? nullptr : &it->second;
  }
  const GgufTensor *findTensor(llvm::StringRef name) const {
    auto it = tensorIndex.find(name);
    return it == tensorIndex.end() ? nullptr : &tensors[it->second];
  }
};

/// Reads the header of the GGUF file at `path`. Errors are emitted on
/// `context`, located at the file.
mlir::FailureOr<GgufFile> readGgufFile(llvm::StringRef path,
                                       mlir::MLIRContext *context);

/// True when `path` names a .gguf file or one that starts with the GGUF
/// magic (the reader then says what is wrong with a damaged one).
bool isGgufFile(llvm::StringRef path);

} // namespace gemmac

#endif // GEMMAC_IMPORT_GGUF_H
