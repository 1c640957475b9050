//===- Safetensors.cpp - read safetensors headers, bounds-checked ---------===//
//
// A checkpoint is untrusted input: every length and offset is checked before
// use, so a truncated or hand-edited file produces a message, not a crash.
//
//===----------------------------------------------------------------------===//

#include "import/Safetensors.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using llvm::StringRef;

namespace gemmac {

unsigned safetensorsDtypeBytes(StringRef dtype) {
  if (dtype == "F32" || dtype == "I32" || dtype == "U32")
    return 4;
  if (dtype == "BF16" || dtype == "F16" || dtype == "I16" || dtype == "U16")
    return 2;
  if (dtype == "F64" || dtype == "I64" || dtype == "U64")
    return 8;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" ||
      dtype == "F8_E5M2")
    return 1;
  return 0;
}

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20; // the format's own limit

InFlightDiagnostic fileError(MLIRContext *context, StringRef file) {
  return emitError(FileLineColLoc::get(context, file, 0, 0));
}

/// Reads the header of one .safetensors file into `index`.
LogicalResult readOneFile(StringRef file, MLIRContext *context,
                          llvm::function_ref<bool(StringRef)> isIgnored,
                          SafetensorsIndex &index) {
  uint64_t fileSize = 0;
  if (std::error_code ec = llvm::sys::fs::file_size(file, fileSize))
    return fileError(context, file)
           << "cannot read safetensors file: " << ec.message();
  if (fileSize < 8)
    return fileError(context, file)
           << "truncated safetensors file: " << fileSize
           << " bytes, expected at least the 8-byte header length";
  auto lengthBuf = llvm::MemoryBuffer::getFileSlice(file, 8, 0);
  if (!lengthBuf)
    return fileError(context, file) << "cannot read safetensors file: "
                                    << lengthBuf.getError().message();
  const auto *p =
      reinterpret_cast<const unsigned char *>((*lengthBuf)->getBufferStart());
  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = (headerLen << 8) | p[i];
  if (headerLen > fileSize - 8 || headerLen > kMaxHeaderBytes)
    return fileError(context, file)
           << "safetensors header length " << headerLen
           << " runs past the end of the file (" << fileSize
           << " bytes; expected at most " << (fileSize - 8) << ")";

  // Maps (for large headers) or reads only the header, never the weights.
  auto headerBuf = llvm::MemoryBuffer::getFileSlice(file, headerLen, 8);
  if (!headerBuf)
    return fileError(context, file) << "cannot read safetensors header: "
                                    << headerBuf.getError().message();
  llvm::Expected<llvm::json::Value> json =
      llvm::json::parse((*headerBuf)->getBuffer());
  if (!json)
    return fileError(context, file) << "safetensors header is not valid JSON: "
                                    << llvm::toString(json.takeError());
  const llvm::json::Object *root = json->getAsObject();
  if (!root)
    return fileError(context, file)
           << "safetensors header: expected a JSON object";

  uint64_t dataStart = 8 + headerLen;
  uint64_t dataSize = fileSize - dataStart;
  for (const auto &entry : *root) {
    StringRef name = entry.first;
    if (name == "__metadata__")
      continue;
    auto bad = [&](StringRef field) {
      return fileError(context, file) << "safetensors tensor '" << name
                                      << "', field '" << field << "': ";
    };
    const llvm::json::Object *t = entry.second.getAsObject();
    if (!t)
      return bad("") << "expected an object";
    std::optional<StringRef> dtype = t->getString("dtype");
    if (!dtype)
      return bad("dtype") << "expected a string";
    const llvm::json::Array *shape = t->getArray("shape");
    if (!shape)
      return bad("shape") << "expected an array of dimensions";
    const llvm::json::Array *offsets = t->getArray("data_offsets");
    if (!offsets || offsets->size() != 2)
      return bad("data_offsets") << "expected [begin, end]";
    std::optional<uint64_t> begin = (*offsets)[0].getAsUINT64();
    std::optional<uint64_t> end = (*offsets)[1].getAsUINT64();
    if (!begin || !end || *begin > *end)
      return bad("data_offsets")
             << "expected two non-negative integers with begin <= end";
    if (*end > dataSize)
      return bad("data_offsets")
             << "[" << *begin << ", " << *end
             << ") lies outside the data section (" << dataSize << " bytes)";

    SafetensorsTensor tensor;
    tensor.file = file.str();
    tensor.dtype = dtype->str();
    uint64_t elements = 1;
    for (const llvm::json::Value &dim : *shape) {
      std::optional<int64_t> d = dim.getAsInteger();
      if (!d || *d < 0)
        return bad("shape") << "expected non-negative integer dimensions";
      tensor.shape.push_back(*d);
      if (*d != 0 && elements > UINT64_MAX / static_cast<uint64_t>(*d))
        return bad("shape") << "too many elements";
      elements *= static_cast<uint64_t>(*d);
    }
    unsigned bytes = safetensorsDtypeBytes(*dtype);
    bool known = *dtype == "F32" || *dtype == "BF16" || *dtype == "F16";
    if (!known && !isIgnored(name))
      return bad("dtype") << "\"" << *dtype
                          << "\" is not supported, expected F32, BF16 or F16";
    // The product below must not wrap: a wrapped size could match a tiny
    // byte range and pass a huge shape.
    if (bytes != 0 && elements > UINT64_MAX / bytes)
      return bad("shape") << "too many elements";
    if (bytes != 0 && elements * bytes != *end - *begin)
      return bad("data_offsets")
             << "size " << (*end - *begin) << " bytes does not match shape x "
             << "dtype (" << elements << " x " << bytes << " = "
             << elements * bytes << " bytes)";
    tensor.offset = dataStart + *begin;
    tensor.size = *end - *begin;
    auto [it, inserted] = index.try_emplace(name, std::move(tensor));
    if (!inserted)
      return bad("") << "tensor also defined in " << it->second.file;
  }
  return success();
}

} // namespace

FailureOr<SafetensorsIndex>
readSafetensorsIndex(StringRef dir, MLIRContext *context,
                     llvm::function_ref<bool(StringRef)> isIgnored) {
  llvm::SmallString<256> absDir(dir);
  llvm::sys::fs::make_absolute(absDir);
  llvm::sys::path::remove_dots(absDir, /*remove_dot_dot=*/true);
  llvm::SmallString<256> single(absDir), indexPath(absDir);
  llvm::sys::path::append(single, "model.safetensors");
  llvm::sys::path::append(indexPath, "model.safetensors.index.json");

  SafetensorsIndex index;
  if (llvm::sys::fs::exists(indexPath)) {
    auto buffer = llvm::MemoryBuffer::getFile(indexPath, /*IsText=*/true);
    if (!buffer) {
      fileError(context, indexPath)
          << "cannot read: " << buffer.getError().message();
      return failure();
    }
    llvm::Expected<llvm::json::Value> json =
        llvm::json::parse((*buffer)->getBuffer());
    if (!json) {
      fileError(context, indexPath)
          << "invalid JSON: " << llvm::toString(json.takeError());
      return failure();
    }
    const llvm::json::Object *root = json->getAsObject();
    const llvm::json::Object *weightMap =
        root ? root->getObject("weight_map") : nullptr;
    if (!weightMap) {
      fileError(context, indexPath)
          << "missing required key 'weight_map': expected an object mapping "
             "tensor names to shard files";
      return failure();
    }
    // Shards in first-mention order, so diagnostics are deterministic.
    llvm::SmallVector<std::string> shards;
    llvm::StringSet<> seen;
    llvm::StringMap<std::string> expectedShard;
    for (const auto &entry : *weightMap) {
      std::optional<StringRef> shard = entry.second.getAsString();
      if (!shard || shard->contains('/') || shard->empty()) {
        fileError(context, indexPath)
            << "weight_map['" << entry.first.str()
            << "']: expected a shard file name in the same directory";
        return failure();
      }
      expectedShard[entry.first] = shard->str();
      if (seen.insert(*shard).second)
        shards.push_back(shard->str());
    }
    llvm::sort(shards);
    for (const std::string &shard : shards) {
      llvm::SmallString<256> path(absDir);
      llvm::sys::path::append(path, shard);
      if (failed(readOneFile(path, context, isIgnored, index)))
        return failure();
    }
    // The index and the shards must agree on where each tensor lives.
    for (const auto &entry : expectedShard) {
      auto it = index.find(entry.first());
      if (it == index.end()) {
        fileError(context, indexPath)
            << "weight_map names tensor '" << entry.first() << "' in "
            << entry.second << ", but that shard does not contain it";
        return failure();
      }
      if (llvm::sys::path::filename(it->second.file) != entry.second) {
        fileError(context, indexPath)
            << "weight_map puts tensor '" << entry.first() << "' in "
            << entry.second << ", but it was found in " << it->second.file;
        return failure();
      }
    }
    return index;
  }
  if (!llvm::sys::fs::exists(single)) {
    fileError(context, absDir)
        << "no weights: expected model.safetensors or "
           "model.safetensors.index.json in the checkpoint directory";
    return failure();
  }
  if (failed(readOneFile(single, context, isIgnored, index)))
    return failure();
  return index;
}

} // namespace gemmac
