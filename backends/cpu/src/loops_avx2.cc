// loops.inc at the avx2 level (loops.h).
#include <cmath>
#include <cstdint>

#include "loops.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace gemmac::cpu {
namespace {
#include "loops.inc"
} // namespace
} // namespace gemmac::cpu
#pragma GCC pop_options

namespace gemmac::cpu {

const LevelLoops &Avx2Loops() {
  static const LevelLoops k{&AttendUnits<F32Rows>, &AttendUnits<I8Rows>,
                            &GeluMul, &QuantizeRow};
  return k;
}

} // namespace gemmac::cpu
