// loops.inc at the avx512 level (loops.h).
#include <cmath>
#include <cstdint>

#include "loops.h"

#pragma GCC push_options
#pragma GCC target(                                                            \
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,prefer-vector-width=512")
namespace gemmac::cpu {
namespace {
#include "loops.inc"
} // namespace
} // namespace gemmac::cpu
#pragma GCC pop_options

namespace gemmac::cpu {

const LevelLoops &Avx512Loops() {
  static const LevelLoops k{&AttendUnits<F32Rows>, &AttendUnits<I8Rows>,
                            &GeluMul, &QuantizeRow};
  return k;
}

} // namespace gemmac::cpu
