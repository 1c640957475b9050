// attention_rows.inc at the scalar level (attention_rows.h).
#include <cmath>
#include <cstdint>

#include "attention_rows.h"

namespace gemmac::cpu {
namespace {
#include "attention_rows.inc"
} // namespace
} // namespace gemmac::cpu

namespace gemmac::cpu {

const AttendKernels &ScalarAttend() {
  static const AttendKernels k{&AttendRange<F32Rows>, &AttendRange<I8Rows>};
  return k;
}

AttendFn AttendFor(bool int8_cache) {
  const AttendKernels &k = ActiveIsa() >= Isa::kAvx512 ? Avx512Attend()
                           : ActiveIsa() >= Isa::kAvx2 ? Avx2Attend()
                                                       : ScalarAttend();
  return int8_cache ? k.i8 : k.f32;
}

} // namespace gemmac::cpu
