//===- Safetensors.h - tensor index of safetensors checkpoints ----*- C++
//-*-===//
//
// Reads the headers of a checkpoint's safetensors files (one
// `model.safetensors`, or the shards a `model.safetensors.index.json` names)
// into an index: tensor name -> file, dtype, shape and absolute byte offset.
// Only the headers are read; the weights stay in the files and the IR refers
// to them by (file, offset). Every size and offset is bounds-checked against
// the file. Called by the HF importer.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_IMPORT_SAFETENSORS_H
#define GEMMAC_IMPORT_SAFETENSORS_H

#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/LogicalResult.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"

#include <string>

namespace gemmac {

struct SafetensorsTensor {
  std::string file;  // absolute path of the .safetensors file
  std::string dtype; // "F32", "BF16" or "F16"
  llvm::SmallVector<int64_t> shape;
  uint64_t offset = 0; // absolute byte offset of the data in `file`
  uint64_t size = 0;   // bytes
};

/// All tensors of a checkpoint directory, by name.
using SafetensorsIndex = llvm::StringMap<SafetensorsTensor>;

/// Reads `dir`'s safetensors headers. Errors (emitted on `context`, located
/// at the offending file) name the file, the tensor and the field. Tensors of
/// dtypes other than F32/BF16/F16 are an error only when `isIgnored` does not
/// accept their name (vision towers may hold other dtypes).
mlir::FailureOr<SafetensorsIndex>
readSafetensorsIndex(llvm::StringRef dir, mlir::MLIRContext *context,
                     llvm::function_ref<bool(llvm::StringRef)> isIgnored);

/// Bytes per element of a safetensors dtype, 0 when unknown.
unsigned safetensorsDtypeBytes(llvm::StringRef dtype);

} // namespace gemmac

#endif // GEMMAC_IMPORT_SAFETENSORS_H
