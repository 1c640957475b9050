// What this CPU can run, read once with CPUID/XGETBV, and the instruction
// set level the kernels dispatch on.
//
// Levels (each includes the one before):
//   scalar  portable C++ (the build's baseline, SSE2 on x86-64)
//   avx2    AVX2 + FMA + F16C
//   avx512  AVX-512 F/BW/VL/DQ + VNNI (Ice Lake, Sapphire Rapids, Zen 4/5)
//   amx     avx512 + AMX-TILE and AMX-INT8 tiles (Sapphire Rapids and later)
//           that Linux let this process use (arch_prctl ARCH_REQ_XCOMP_PERM):
//           the int8 matrix products of prefill run on the tiles
//           (tiles_amx.cc); everything else is avx512's
// A level is usable when the CPU reports its instructions and the OS saves
// the registers they use (XCR0). GEMMAC_CPU_ISA=scalar|avx2|avx512|amx caps
// the level (for tests and for comparing paths); a cap above what the CPU can
// run is ignored, an unknown value is ignored with a warning on stderr.
#ifndef GEMMAC_BACKENDS_CPU_CPU_FEATURES_H_
#define GEMMAC_BACKENDS_CPU_CPU_FEATURES_H_

#include <string>

namespace gemmac::cpu {

enum class Isa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAmx = 3 };

struct CpuFeatures {
  bool avx2 = false;          // AVX2 + FMA + F16C, OS-enabled YMM state
  bool avx512 = false;        // F + BW + VL + DQ + VNNI, OS-enabled ZMM state
  bool avx512_bf16 = false;   // AVX512_BF16 (reported; not required)
  bool avx_vnni = false;      // VEX-encoded VNNI (reported)
  bool amx = false;           // AMX-TILE + AMX-INT8 + AMX-BF16 reported
  bool amx_permitted = false; // and the kernel granted the tile state
};

// CPUID/XGETBV once (thread-safe, cached).
const CpuFeatures &DetectCpu();

// The highest level DetectCpu() allows.
Isa SupportedIsa();

// SupportedIsa() capped by GEMMAC_CPU_ISA, read once per process.
Isa ActiveIsa();

// Whether `isa` can run here (isa <= SupportedIsa()).
bool CanRun(Isa isa);

const char *IsaName(Isa isa);

// One line for tools: active level, the cap if any, the feature flags.
// e.g. "avx512 [avx2 avx512 avx512_bf16 avx_vnni; amx: no]".
std::string Describe();

} // namespace gemmac::cpu

#endif // GEMMAC_BACKENDS_CPU_CPU_FEATURES_H_
