// The arithmetic peaks of one core at each instruction-set level this CPU
// runs (backends/cpu/src/cpu_features.h), for gemmac_kernel_bench to quote
// kernels' GFLOP/s against: independent chains of the instruction the
// matrix kernels are built on, long enough that the loop costs nothing.
//   f32 FMA      vfmadd231ps  (avx2: 8 lanes, avx512: 16 lanes) 2 FLOP/lane
//   int8 dot     avx512: vpdpbusd, 64 multiply-adds per instruction;
//                avx2: vpmaddubsw + vpmaddwd + vpaddd, 32 per triple;
//                amx: tdpbssd on full tiles (16 x 16 x 64, 16384 per
//                instruction), four independent accumulator tiles
//   bf16 tiles   amx: tdpbf16ps the same way (16 x 16 x 32, 8192 per
//                instruction)
// Reported as operations per second (a multiply-add counts 2). The amx
// level's panel kernels issue tdpbssd on 32-column blocks (half the K of a
// full tile), so half of the amx peak is their ceiling.
#include "compute_peak.h"

#include "amx_config.h"

#include <chrono>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

namespace gemmac::bench {
namespace {

constexpr int64_t kIters = 1 << 22;

double Seconds(std::chrono::steady_clock::time_point a,
               std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

#define GEMMAC_PEAK_AVX2 __attribute__((target("avx2,fma")))
GEMMAC_PEAK_AVX2 __attribute__((noinline)) double FmaAvx2() {
  __m256 acc[10];
  for (int i = 0; i < 10; ++i)
    acc[i] = _mm256_set1_ps(float(i));
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-3f);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t it = 0; it < kIters; ++it)
    for (int i = 0; i < 10; ++i)
      acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  const auto t1 = std::chrono::steady_clock::now();
  __m256 s = acc[0];
  for (int i = 1; i < 10; ++i)
    s = _mm256_add_ps(s, acc[i]);
  volatile float sink = _mm256_cvtss_f32(s);
  (void)sink;
  return double(kIters) * 10 * 8 * 2 / Seconds(t0, t1);
}

GEMMAC_PEAK_AVX2 __attribute__((noinline)) double DotAvx2() {
  __m256i acc[6];
  for (int i = 0; i < 6; ++i)
    acc[i] = _mm256_set1_epi32(i);
  const __m256i u = _mm256_set1_epi8(3), s = _mm256_set1_epi8(-2);
  const __m256i ones = _mm256_set1_epi16(1);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t it = 0; it < kIters; ++it)
    for (int i = 0; i < 6; ++i) {
      __m256i p = _mm256_maddubs_epi16(u, s);
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(p, ones));
      __asm__ volatile("" : "+x"(acc[i]));
    }
  const auto t1 = std::chrono::steady_clock::now();
  volatile int sink = _mm256_extract_epi32(acc[0], 0);
  (void)sink;
  return double(kIters) * 6 * 32 * 2 / Seconds(t0, t1);
}

#define GEMMAC_PEAK_AVX512                                                     \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
GEMMAC_PEAK_AVX512 __attribute__((noinline)) double FmaAvx512() {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i)
    acc[i] = _mm512_set1_ps(float(i));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-3f);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t it = 0; it < kIters; ++it)
    for (int i = 0; i < 12; ++i)
      acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  const auto t1 = std::chrono::steady_clock::now();
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i)
    s = _mm512_add_ps(s, acc[i]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return double(kIters) * 12 * 16 * 2 / Seconds(t0, t1);
}

GEMMAC_PEAK_AVX512 __attribute__((noinline)) double DotAvx512() {
  __m512i acc[12];
  for (int i = 0; i < 12; ++i)
    acc[i] = _mm512_set1_epi32(i);
  const __m512i u = _mm512_set1_epi8(3), s = _mm512_set1_epi8(-2);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t it = 0; it < kIters; ++it)
    for (int i = 0; i < 12; ++i)
      acc[i] = _mm512_dpbusd_epi32(acc[i], u, s);
  const auto t1 = std::chrono::steady_clock::now();
  volatile int sink = _mm512_reduce_add_epi32(acc[0]);
  (void)sink;
  return double(kIters) * 12 * 64 * 2 / Seconds(t0, t1);
}

#if defined(__x86_64__)
// tdpbssd (int8) or tdpbf16ps (bf16) on four accumulator tiles from two A
// and two B tiles of zeros (the unit's rate on zeros is its best: data
// that toggles the multipliers runs slower, see docs/benchmarks.md).
template <bool kBf16>
__attribute__((target("amx-tile,amx-int8,amx-bf16"), noinline)) double
TileAmx() {
  // 4 accumulators, 2 A and 2 B, all 16 x 64.
  static constexpr cpu::TileConfig kConfig = cpu::FullTiles();
  alignas(64) static int8_t data[16 * 64] = {};
  _tile_loadconfig(&kConfig);
  _tile_loadd(4, data, 64);
  _tile_loadd(5, data, 64);
  _tile_loadd(6, data, 64);
  _tile_loadd(7, data, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const int64_t iters = kIters / 16;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t it = 0; it < iters; ++it) {
    if constexpr (kBf16) {
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    } else {
      _tile_dpbssd(0, 4, 6);
      _tile_dpbssd(1, 4, 7);
      _tile_dpbssd(2, 5, 6);
      _tile_dpbssd(3, 5, 7);
    }
  }
  alignas(64) static int32_t sink[16 * 16];
  _tile_stored(0, sink, 64);
  const auto t1 = std::chrono::steady_clock::now();
  _tile_release();
  const int64_t k = kBf16 ? 32 : 64; // products per tile element
  return double(iters) * 4 * 16 * 16 * k * 2 / Seconds(t0, t1);
}
#else
template <bool kBf16> double TileAmx() { return 0; }
#endif

} // namespace

ComputePeak MeasureComputePeak(cpu::Isa isa) {
  ComputePeak p;
  if (isa == cpu::Isa::kAmx) {
    p.f32_flops = FmaAvx512();
    p.int8_ops = TileAmx<false>();
    p.bf16_tile_flops = TileAmx<true>();
  } else if (isa == cpu::Isa::kAvx512) {
    p.f32_flops = FmaAvx512();
    p.int8_ops = DotAvx512();
  } else if (isa == cpu::Isa::kAvx2) {
    p.f32_flops = FmaAvx2();
    p.int8_ops = DotAvx2();
  }
  return p;
}

} // namespace gemmac::bench

#else // not x86: only the scalar level, which has no SIMD peak to quote.

namespace gemmac::bench {
ComputePeak MeasureComputePeak(cpu::Isa) { return {}; }
} // namespace gemmac::bench

#endif
