// attention_rows.inc at the avx512 level (attention_rows.h).
#include <cmath>
#include <cstdint>

#include "attention_rows.h"

#pragma GCC push_options
#pragma GCC target(                                                            \
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,prefer-vector-width=512")
namespace gemmac::cpu {
namespace {
#include "attention_rows.inc"
} // namespace
} // namespace gemmac::cpu
#pragma GCC pop_options

namespace gemmac::cpu {

const AttendKernels &Avx512Attend() {
  static const AttendKernels k{&AttendRange<F32Rows>, &AttendRange<I8Rows>};
  return k;
}

} // namespace gemmac::cpu
