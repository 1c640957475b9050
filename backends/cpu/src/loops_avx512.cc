// loops.inc at the avx512 level (loops.h).
#include <cmath>
#include <cstdint>

#include "loops.h"

#if defined(__x86_64__) || defined(__i386__)
// GCC: a target pragma over the included loops; Clang ignores that pragma
// and takes the same target as an attribute on every function instead.
#if defined(__clang__)
#pragma clang attribute push(                                                  \
    __attribute__((                                                            \
        target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq"))),          \
    apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target(                                                            \
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,prefer-vector-width=512")
#endif
namespace gemmac::cpu {
namespace {
#include "loops.inc"
} // namespace
} // namespace gemmac::cpu
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace gemmac::cpu {

const LevelLoops &Avx512Loops() {
  static const LevelLoops k{&AttendUnits<F32Rows>, &AttendUnits<I8Rows>,
                            &GeluMul, &QuantizeRow, &SplitBf16};
  return k;
}

} // namespace gemmac::cpu

#else // Not x86: the level never runs (SupportedIsa() is scalar).

namespace gemmac::cpu {
const LevelLoops &Avx512Loops() { return ScalarLoops(); }
} // namespace gemmac::cpu

#endif
