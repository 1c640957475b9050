// The attention loop over cached rows (kernels.cc's Attention after the new
// rows are stored), at every instruction-set level: the same C++ source
// (attention_rows.inc) compiled for the baseline, AVX2 and AVX-512, where
// its `omp simd` loops over head_dim become 4-, 8- or 16-lane code.
#ifndef GEMMAC_BACKENDS_CPU_ATTENTION_ROWS_H_
#define GEMMAC_BACKENDS_CPU_ATTENTION_ROWS_H_

#include <cstdint>

#include "cpu_features.h"
#include "kernels.h"

namespace gemmac::cpu {

// Attention of query rows idx in [begin, end) (idx = t * H + h) over the
// cache, written to a.out; acc holds a.D floats of scratch. Causal, windowed
// when a.window > 0, soft-capped when a.softcap > 0. Keys are taken in
// blocks of 16: their scores first, then one online-softmax rescale per
// block (running max m, running sum l of exp(s - m), acc of exp(s - m) * v).
using AttendFn = void (*)(const AttentionArgs &a, int64_t begin, int64_t end,
                          float *acc);

struct AttendKernels {
  AttendFn f32 = nullptr; // f32 cache
  AttendFn i8 = nullptr;  // int8 cache with per-row scales
};

const AttendKernels &ScalarAttend();
const AttendKernels &Avx2Attend();
const AttendKernels &Avx512Attend();

// The loop for the cache kind at ActiveIsa().
AttendFn AttendFor(bool int8_cache);

} // namespace gemmac::cpu

#endif // GEMMAC_BACKENDS_CPU_ATTENTION_ROWS_H_
