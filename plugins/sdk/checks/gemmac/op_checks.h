// The op set's rules (docs/ops.md) for a plugin's supports(), prepare() and
// launch(), from the plugin SDK (gemmac::plugin_sdk): the op descriptions and
// launch operands the reference plugin accepts, and messages that name the
// plugin, the op, the operand, what was found and what was expected. C++17,
// host code only; depends on plugin.h alone.
#ifndef GEMMAC_SDK_OP_CHECKS_H_
#define GEMMAC_SDK_OP_CHECKS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "gemmac/plugin.h"

namespace gemmac_sdk {

// The ABI's rule for every struct a plugin fills for its caller (the entry's
// table, device_info): write at most the caller's `size` bytes (an older
// caller's struct is smaller) and set struct_size to what was written.
template <class T> void CopyWhatFits(T src, T *dst, size_t size) {
  const size_t n = size < sizeof(T) ? size : sizeof(T);
  src.struct_size = n;
  std::memcpy(static_cast<void *>(dst), &src, n);
}

// Writes a printf-style message into the caller's error struct (only as far
// as its struct_size reaches) and returns `code`.
__attribute__((format(printf, 3, 4))) int Fail(gemmac_plugin_error *e, int code,
                                               const char *fmt, ...);
// The same, the message prefixed "plugin: " (nothing when plugin is null;
// so do CheckDesc and CheckOperands).
__attribute__((format(printf, 4, 5))) int FailAs(const char *plugin,
                                                 gemmac_plugin_error *e,
                                                 int code, const char *fmt,
                                                 ...);

const char *OpName(int32_t op);
bool IsOptional(int32_t op, uint32_t slot);
// Slots that hold module weights (host pointers into the mapped file).
bool IsWeightSlot(int32_t op, uint32_t slot);
bool IsQuant(int32_t dtype);
bool IsFloatWeight(int32_t dtype);

// The op, its input/output counts and dtypes, and the attributes the kernels
// divide by; GEMMAC_PLUGIN_OK or an error code with a message.
int32_t CheckDesc(const char *plugin, const gemmac_op_desc *d,
                  gemmac_plugin_error *err);

// Counts, dtypes and shapes of one launch against the prepared op.
int32_t CheckOperands(const char *plugin, int32_t op, const gemmac_op_attrs &a,
                      const gemmac_tensor *in, uint32_t num_in,
                      const gemmac_tensor *out, uint32_t num_out,
                      const gemmac_exec_context *ctx, gemmac_plugin_error *err);

} // namespace gemmac_sdk

#endif // GEMMAC_SDK_OP_CHECKS_H_
