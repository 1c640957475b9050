// One core's f32 FMA and int8 dot-product peaks at an instruction-set level
// (compute_peak.cc). Zero for the scalar level: it has no SIMD peak to quote.
#ifndef GEMMAC_BENCH_COMPUTE_PEAK_H_
#define GEMMAC_BENCH_COMPUTE_PEAK_H_

#include "cpu_features.h"

namespace gemmac::bench {

struct ComputePeak {
  double f32_flops = 0;       // FLOP/s, one core
  double int8_ops = 0;        // int8 multiply-adds x 2 per second, one core
  double bf16_tile_flops = 0; // amx only: tdpbf16ps FLOP/s, one core
};

// Only for a level cpu::CanRun() allows.
ComputePeak MeasureComputePeak(cpu::Isa isa);

} // namespace gemmac::bench

#endif // GEMMAC_BENCH_COMPUTE_PEAK_H_
