// attention_rows.inc at the avx2 level (attention_rows.h).
#include <cmath>
#include <cstdint>

#include "attention_rows.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace gemmac::cpu {
namespace {
#include "attention_rows.inc"
} // namespace
} // namespace gemmac::cpu
#pragma GCC pop_options

namespace gemmac::cpu {

const AttendKernels &Avx2Attend() {
  static const AttendKernels k{&AttendRange<F32Rows>, &AttendRange<I8Rows>};
  return k;
}

} // namespace gemmac::cpu
