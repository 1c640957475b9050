//===- Gguf.cpp - read a GGUF header, bounds-checked ----------------------===//
//
// The file is mapped, not read: a multi-gigabyte GGUF costs only the pages
// its header touches. Every read goes through Cursor, which checks the bytes
// it needs against what is left before touching them, and every count is
// checked against the bytes left before anything is allocated for it, so a
// hostile count cannot make the reader allocate more than the file holds.
//
//===----------------------------------------------------------------------===//

#include "import/Gguf.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <cstring>

using namespace mlir;
using llvm::StringRef;

namespace gemmac {

StringRef ggufValueTypeName(GgufValueType type) {
  switch (type) {
  case GgufValueType::U8:
    return "u8";
  case GgufValueType::I8:
    return "i8";
  case GgufValueType::U16:
    return "u16";
  case GgufValueType::I16:
    return "i16";
  case GgufValueType::U32:
    return "u32";
  case GgufValueType::I32:
    return "i32";
  case GgufValueType::F32:
    return "f32";
  case GgufValueType::Bool:
    return "bool";
  case GgufValueType::String:
    return "string";
  case GgufValueType::Array:
    return "array";
  case GgufValueType::U64:
    return "u64";
  case GgufValueType::I64:
    return "i64";
  case GgufValueType::F64:
    return "f64";
  }
  return "unknown";
}

bool GgufValue::isInteger() const {
  switch (type) {
  case GgufValueType::U8:
  case GgufValueType::I8:
  case GgufValueType::U16:
  case GgufValueType::I16:
  case GgufValueType::U32:
  case GgufValueType::I32:
  case GgufValueType::U64:
  case GgufValueType::I64:
    return true;
  default:
    return false;
  }
}

GgmlTypeTraits ggmlTypeTraits(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
  case GgmlType::F32:
  case GgmlType::I32:
    return {1, 4};
  case GgmlType::F16:
  case GgmlType::BF16:
  case GgmlType::I16:
    return {1, 2};
  case GgmlType::I8:
    return {1, 1};
  case GgmlType::I64:
  case GgmlType::F64:
    return {1, 8};
  // Block layouts of ggml-common.h: f16 scale(s) then the codes.
  case GgmlType::Q4_0:
    return {32, 18};
  case GgmlType::Q4_1:
    return {32, 20};
  case GgmlType::Q5_0:
    return {32, 22};
  case GgmlType::Q5_1:
    return {32, 24};
  case GgmlType::Q8_0:
    return {32, 34};
  case GgmlType::Q8_1:
    return {32, 36};
  case GgmlType::Q2_K:
    return {256, 84};
  case GgmlType::Q3_K:
    return {256, 110};
  case GgmlType::Q4_K:
    return {256, 144};
  case GgmlType::Q5_K:
    return {256, 176};
  case GgmlType::Q6_K:
    return {256, 210};
  case GgmlType::Q8_K:
    return {256, 292};
  }
  return {0, 0};
}

std::string ggmlTypeName(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
  case GgmlType::F32:
    return "F32";
  case GgmlType::F16:
    return "F16";
  case GgmlType::BF16:
    return "BF16";
  case GgmlType::Q4_0:
    return "Q4_0";
  case GgmlType::Q4_1:
    return "Q4_1";
  case GgmlType::Q5_0:
    return "Q5_0";
  case GgmlType::Q5_1:
    return "Q5_1";
  case GgmlType::Q8_0:
    return "Q8_0";
  case GgmlType::Q8_1:
    return "Q8_1";
  case GgmlType::Q2_K:
    return "Q2_K";
  case GgmlType::Q3_K:
    return "Q3_K";
  case GgmlType::Q4_K:
    return "Q4_K";
  case GgmlType::Q5_K:
    return "Q5_K";
  case GgmlType::Q6_K:
    return "Q6_K";
  case GgmlType::Q8_K:
    return "Q8_K";
  case GgmlType::I8:
    return "I8";
  case GgmlType::I16:
    return "I16";
  case GgmlType::I32:
    return "I32";
  case GgmlType::I64:
    return "I64";
  case GgmlType::F64:
    return "F64";
  }
  return "unknown type " + std::to_string(type);
}

namespace {

constexpr uint32_t kMagic = 0x46554747; // "GGUF" read as a little-endian u32
/// Deeper nesting than this is no model's metadata, only a way to exhaust
/// the stack.
constexpr int kMaxArrayDepth = 8;
/// ggml's GGML_MAX_DIMS.
constexpr uint32_t kMaxDims = 4;

/// Reads little-endian values from the mapped header, never past the end.
class Cursor {
public:
  Cursor(const unsigned char *data, uint64_t size, StringRef path,
         MLIRContext *context)
      : data(data), size(size), path(path), context(context) {}

  uint64_t pos = 0;
  uint64_t left() const { return size - pos; }

  InFlightDiagnostic error() {
    return emitError(FileLineColLoc::get(context, path, 0, 0));
  }

  /// Fails with "truncated GGUF file" unless `n` bytes are left; `what`
  /// names what was being read.
  LogicalResult need(uint64_t n, const llvm::Twine &what) {
    if (n <= left())
      return success();
    return error() << "truncated GGUF file: " << what << " needs " << n
                   << " bytes at offset " << pos << ", but the file has "
                   << size << " bytes";
  }

  template <typename T> LogicalResult read(T &out, const llvm::Twine &what) {
    if (failed(need(sizeof(T), what)))
      return failure();
    std::memcpy(&out, data + pos, sizeof(T)); // the hosts we build for are LE
    pos += sizeof(T);
    return success();
  }

  LogicalResult readString(std::string &out, const llvm::Twine &what) {
    uint64_t length = 0;
    if (failed(read(length, what + " (string length)")))
      return failure();
    if (length > left())
      return error() << "GGUF header, " << what << ": string length " << length
                     << " at offset " << (pos - 8)
                     << " runs past the end of the file (" << left()
                     << " bytes left)";
    out.assign(reinterpret_cast<const char *>(data + pos), length);
    pos += length;
    return success();
  }

private:
  const unsigned char *data;
  uint64_t size;
  StringRef path;
  MLIRContext *context;
};

/// The smallest encoding of one value of `type`, to bound array counts.
uint64_t minValueBytes(GgufValueType type) {
  switch (type) {
  case GgufValueType::U8:
  case GgufValueType::I8:
  case GgufValueType::Bool:
    return 1;
  case GgufValueType::U16:
  case GgufValueType::I16:
    return 2;
  case GgufValueType::U32:
  case GgufValueType::I32:
  case GgufValueType::F32:
    return 4;
  case GgufValueType::U64:
  case GgufValueType::I64:
  case GgufValueType::F64:
  case GgufValueType::String: // the u64 length
    return 8;
  case GgufValueType::Array: // element type + count
    return 12;
  }
  return 1;
}

bool knownValueType(uint32_t t) { return t <= 12; }

LogicalResult readValue(Cursor &c, GgufValueType type, GgufValue &out,
                        const std::string &key, int depth) {
  out.type = type;
  auto scalar = [&](auto v) {
    using T = decltype(v);
    if (failed(c.read(v, "the value of key '" + key + "'")))
      return failure();
    if constexpr (std::is_floating_point_v<T>) {
      out.f = static_cast<double>(v);
    } else if constexpr (std::is_signed_v<T>) {
      out.i = static_cast<int64_t>(v);
      out.u = v < 0 ? 0 : static_cast<uint64_t>(v);
      out.f = static_cast<double>(v);
    } else {
      out.u = static_cast<uint64_t>(v);
      out.i = out.u > static_cast<uint64_t>(INT64_MAX)
                  ? INT64_MAX
                  : static_cast<int64_t>(out.u);
      out.f = static_cast<double>(v);
    }
    return success();
  };
  switch (type) {
  case GgufValueType::U8:
    return scalar(uint8_t());
  case GgufValueType::I8:
    return scalar(int8_t());
  case GgufValueType::U16:
    return scalar(uint16_t());
  case GgufValueType::I16:
    return scalar(int16_t());
  case GgufValueType::U32:
    return scalar(uint32_t());
  case GgufValueType::I32:
    return scalar(int32_t());
  case GgufValueType::U64:
    return scalar(uint64_t());
  case GgufValueType::I64:
    return scalar(int64_t());
  case GgufValueType::F32:
    return scalar(float());
  case GgufValueType::F64:
    return scalar(double());
  case GgufValueType::Bool: {
    uint8_t b = 0;
    if (failed(c.read(b, "the value of key '" + key + "'")))
      return failure();
    if (b > 1)
      return c.error() << "GGUF key '" << key << "': bool value " << int(b)
                       << " at offset " << (c.pos - 1) << ", expected 0 or 1";
    out.u = b;
    out.i = b;
    return success();
  }
  case GgufValueType::String:
    return c.readString(out.str, "the value of key '" + key + "'");
  case GgufValueType::Array: {
    if (depth >= kMaxArrayDepth)
      return c.error() << "GGUF key '" << key << "': arrays nested deeper than "
                       << kMaxArrayDepth << " levels";
    uint32_t elementType = 0;
    uint64_t count = 0;
    if (failed(c.read(elementType,
                      "the array element type of key '" + key + "'")) ||
        failed(c.read(count, "the array length of key '" + key + "'")))
      return failure();
    if (!knownValueType(elementType))
      return c.error() << "GGUF key '" << key << "': array element type "
                       << elementType << " is not a GGUF value type "
                       << "(expected 0..12)";
    out.elementType = static_cast<GgufValueType>(elementType);
    uint64_t minBytes = minValueBytes(out.elementType);
    if (count > c.left() / minBytes)
      return c.error() << "GGUF key '" << key << "': array of " << count << " "
                       << ggufValueTypeName(out.elementType)
                       << " runs past the end of the file (" << c.left()
                       << " bytes left, at least " << minBytes
                       << " bytes per element)";
    out.elements.resize(count);
    for (uint64_t n = 0; n < count; ++n)
      if (failed(
              readValue(c, out.elementType, out.elements[n], key, depth + 1)))
        return failure();
    return success();
  }
  }
  return c.error() << "GGUF key '" << key << "': unknown value type "
                   << static_cast<uint32_t>(type) << " (expected 0..12)";
}

uint64_t alignUp(uint64_t v, uint64_t a, bool &overflow) {
  uint64_t r = v % a;
  if (r == 0)
    return v;
  if (v > UINT64_MAX - (a - r)) {
    overflow = true;
    return v;
  }
  return v + (a - r);
}

} // namespace

bool isGgufFile(StringRef path) {
  if (llvm::sys::path::extension(path).equals_insensitive(".gguf"))
    return true;
  auto buf = llvm::MemoryBuffer::getFileSlice(path, 4, 0);
  if (!buf || (*buf)->getBufferSize() != 4)
    return false;
  return (*buf)->getBuffer() == "GGUF";
}

FailureOr<GgufFile> readGgufFile(StringRef path, MLIRContext *context) {
  GgufFile file;
  llvm::SmallString<256> absPath(path);
  llvm::sys::fs::make_absolute(absPath);
  llvm::sys::path::remove_dots(absPath, /*remove_dot_dot=*/true);
  file.path = absPath.str().str();
  Location loc = FileLineColLoc::get(context, file.path, 0, 0);

  auto mapped = llvm::MemoryBuffer::getFile(file.path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!mapped) {
    emitError(loc) << "cannot read GGUF file: " << mapped.getError().message();
    return failure();
  }
  const auto *data =
      reinterpret_cast<const unsigned char *>((*mapped)->getBufferStart());
  file.fileSize = (*mapped)->getBufferSize();
  Cursor c(data, file.fileSize, file.path, context);

  uint32_t magic = 0;
  if (failed(c.read(magic, "the magic")))
    return failure();
  if (magic != kMagic) {
    char shown[5] = {};
    std::memcpy(shown, &magic, 4);
    for (char &ch : llvm::MutableArrayRef<char>(shown, 4))
      if (ch < 0x20 || ch > 0x7e)
        ch = '?';
    emitError(loc) << "not a GGUF file: the magic is \"" << shown
                   << "\", expected \"GGUF\"";
    return failure();
  }
  if (failed(c.read(file.version, "the version")))
    return failure();
  if (file.version != 2 && file.version != 3) {
    InFlightDiagnostic diag = emitError(loc);
    diag << "unsupported GGUF version " << file.version << ", expected 2 or 3";
    if (file.version == 1)
      diag << " (version 1 used 32-bit counts; convert the file again with "
              "a current llama.cpp)";
    else if ((file.version & 0xffff) == 0)
      diag << " (a big-endian file?)";
    return failure();
  }
  uint64_t tensorCount = 0, kvCount = 0;
  if (failed(c.read(tensorCount, "the tensor count")) ||
      failed(c.read(kvCount, "the metadata count")))
    return failure();
  // Each entry takes at least a key length, a type and a value byte.
  if (kvCount > c.left() / 13) {
    emitError(loc) << "GGUF metadata count " << kvCount
                   << " cannot fit in the file (" << c.left()
                   << " bytes left after the header)";
    return failure();
  }

  for (uint64_t n = 0; n < kvCount; ++n) {
    std::string key;
    if (failed(
            c.readString(key, "the key of metadata entry " + llvm::Twine(n))))
      return failure();
    uint32_t type = 0;
    if (failed(c.read(type, "the type of key '" + key + "'")))
      return failure();
    if (!knownValueType(type)) {
      emitError(loc) << "GGUF key '" << key << "': unknown value type " << type
                     << " (expected 0..12)";
      return failure();
    }
    GgufValue value;
    if (failed(readValue(c, static_cast<GgufValueType>(type), value, key, 0)))
      return failure();
    if (file.metadata.count(key)) {
      emitError(loc) << "GGUF key '" << key << "' appears twice";
      return failure();
    }
    file.keys.push_back(key);
    file.metadata[key] = std::move(value);
  }

  if (const GgufValue *align = file.find("general.alignment")) {
    if (!align->isInteger() || align->u == 0 ||
        (align->u & (align->u - 1)) != 0) {
      emitError(loc) << "GGUF key 'general.alignment': expected a power of "
                        "two (u32), got "
                     << (align->isInteger() ? std::to_string(align->u)
                                            : ggufValueTypeName(align->type))
                     << "";
      return failure();
    }
    file.alignment = align->u;
  }

  // Name length + n_dims + one dim + type + offset.
  if (tensorCount > c.left() / 32) {
    emitError(loc) << "GGUF tensor count " << tensorCount
                   << " cannot fit in the file (" << c.left()
                   << " bytes left after the metadata)";
    return failure();
  }
  file.tensors.resize(tensorCount);
  for (uint64_t n = 0; n < tensorCount; ++n) {
    GgufTensor &t = file.tensors[n];
    if (failed(c.readString(t.name, "the name of tensor " + llvm::Twine(n))))
      return failure();
    uint32_t nDims = 0;
    if (failed(c.read(nDims, "the dimension count of tensor '" + t.name + "'")))
      return failure();
    if (nDims == 0 || nDims > kMaxDims) {
      emitError(loc) << "GGUF tensor '" << t.name << "': " << nDims
                     << " dimensions, expected 1 to " << kMaxDims;
      return failure();
    }
    for (uint32_t d = 0; d < nDims; ++d) {
      uint64_t dim = 0;
      if (failed(c.read(dim, "the dimensions of tensor '" + t.name + "'")))
        return failure();
      t.dims.push_back(dim);
    }
    uint64_t relOffset = 0;
    if (failed(c.read(t.type, "the type of tensor '" + t.name + "'")) ||
        failed(c.read(relOffset, "the offset of tensor '" + t.name + "'")))
      return failure();
    if (relOffset % file.alignment != 0) {
      emitError(loc) << "GGUF tensor '" << t.name << "': data offset "
                     << relOffset << " is not a multiple of the alignment "
                     << file.alignment;
      return failure();
    }
    t.offset = relOffset; // made absolute once the data section is known
    if (!file.tensorIndex.try_emplace(t.name, n).second) {
      emitError(loc) << "GGUF tensor '" << t.name << "' appears twice";
      return failure();
    }
    GgmlTypeTraits traits = ggmlTypeTraits(t.type);
    if (traits.blockElements == 0)
      continue; // a type we cannot size; the importer refuses it if used
    uint64_t elements = 1;
    for (uint64_t dim : t.dims) {
      if (dim != 0 && elements > UINT64_MAX / dim) {
        emitError(loc) << "GGUF tensor '" << t.name
                       << "': the element count overflows 64 bits";
        return failure();
      }
      elements *= dim;
    }
    if (t.dims[0] % traits.blockElements != 0) {
      emitError(loc) << "GGUF tensor '" << t.name << "' ("
                     << ggmlTypeName(t.type) << "): the row length "
                     << t.dims[0] << " is not a multiple of the block size "
                     << traits.blockElements;
      return failure();
    }
    uint64_t blocks = elements / traits.blockElements;
    if (blocks > UINT64_MAX / traits.blockBytes) {
      emitError(loc) << "GGUF tensor '" << t.name
                     << "': the byte size overflows 64 bits";
      return failure();
    }
    t.size = blocks * traits.blockBytes;
  }

  bool overflow = false;
  file.dataOffset = alignUp(c.pos, file.alignment, overflow);
  if (overflow || file.dataOffset > file.fileSize) {
    emitError(loc) << "truncated GGUF file: the tensor data starts at offset "
                   << file.dataOffset << " (the header ends at " << c.pos
                   << ", aligned to " << file.alignment
                   << "), but the file has " << file.fileSize << " bytes";
    return failure();
  }
  uint64_t dataSize = file.fileSize - file.dataOffset;
  for (GgufTensor &t : file.tensors) {
    if (t.offset > dataSize || t.size > dataSize - t.offset) {
      emitError(loc) << "GGUF tensor '" << t.name << "': " << t.size
                     << " bytes of data at offset " << t.offset
                     << " of the data section run past the end of the file "
                        "(the data section has "
                     << dataSize << " bytes)";
      return failure();
    }
    t.offset += file.dataOffset;
  }
  return file;
}

} // namespace gemmac
