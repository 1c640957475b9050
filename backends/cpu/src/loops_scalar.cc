// loops.inc at the scalar level (loops.h).
#include <cmath>
#include <cstdint>

#include "loops.h"

namespace gemmac::cpu {
namespace {
#include "loops.inc"
} // namespace
} // namespace gemmac::cpu

namespace gemmac::cpu {

const LevelLoops &ScalarLoops() {
  static const LevelLoops k{&AttendUnits<F32Rows>, &AttendUnits<I8Rows>,
                            &GeluMul, &QuantizeRow, &SplitBf16};
  return k;
}

const LevelLoops &ActiveLoops() {
  const Isa isa = ActiveIsa();
  return isa >= Isa::kAvx512 ? Avx512Loops()
         : isa >= Isa::kAvx2 ? Avx2Loops()
                             : ScalarLoops();
}

} // namespace gemmac::cpu
