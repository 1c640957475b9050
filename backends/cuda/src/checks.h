// Validation shared by the CUDA plugin's supports(), prepare() and launch():
// the reference plugin's rules (docs/ops.md), host code only.
#ifndef GEMMAC_BACKENDS_CUDA_CHECKS_H_
#define GEMMAC_BACKENDS_CUDA_CHECKS_H_

#include <cstdint>

#include "gemmac/plugin.h"

namespace gemmac_cuda {

// Writes a printf-style message into the caller's error struct (only as far
// as its struct_size reaches) and returns `code`.
__attribute__((format(printf, 3, 4))) int Fail(gemmac_plugin_error *e, int code,
                                               const char *fmt, ...);

const char *OpName(int32_t op);
bool IsOptional(int32_t op, uint32_t slot);
// Slots that hold module weights (host pointers into the mapped file).
bool IsWeightSlot(int32_t op, uint32_t slot);
bool IsQuant(int32_t dtype);
bool IsFloatWeight(int32_t dtype);

// The op, its input/output counts and dtypes, and the attributes the kernels
// divide by; GEMMAC_PLUGIN_OK or an error code with a message.
int32_t CheckDesc(const gemmac_op_desc *d, gemmac_plugin_error *err);

// Counts, dtypes and shapes of one launch against the prepared op.
int32_t CheckOperands(int32_t op, const gemmac_op_attrs &a,
                      const gemmac_tensor *in, uint32_t num_in,
                      const gemmac_tensor *out, uint32_t num_out,
                      const gemmac_exec_context *ctx, gemmac_plugin_error *err);

} // namespace gemmac_cuda

#endif // GEMMAC_BACKENDS_CUDA_CHECKS_H_
