// The conformance suite's own encoders of the weight formats of
// plugins/include/gemmac/plugin.h and docs/quantization.md (f32, bf16, f16,
// Q8C, Q4G32, Q4G128, Q4G32R8), written from those texts and sharing no code
// with any plugin, so that a plugin under test and the reference plugin both
// read bytes neither of them made.
#ifndef GEMMAC_PLUGINS_CONFORMANCE_FORMATS_H_
#define GEMMAC_PLUGINS_CONFORMANCE_FORMATS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace gemmac::conformance {

uint16_t Bf16FromFloat(float f); // round to nearest even
uint16_t F16FromFloat(float f);  // round to nearest even; finite inputs
float F16ToFloat(uint16_t h);

// A weight's stored bytes and the values they decode to (row-major).
struct EncodedWeight {
  int32_t dtype = 0;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> bytes;
  std::vector<double> values;
};

// Encodes src ([rows, cols] row-major, or a vector with rows = 1) as dtype,
// the quantized ones per docs/quantization.md (codes rounded against the
// stored scale); values are the exact decoded weights.
EncodedWeight Encode(int32_t dtype, int64_t rows, int64_t cols,
                     const std::vector<float> &src);

const char *DTypeName(int32_t dtype);
const char *OpName(int32_t op);
bool IsQuantized(int32_t dtype);

} // namespace gemmac::conformance

#endif // GEMMAC_PLUGINS_CONFORMANCE_FORMATS_H_
