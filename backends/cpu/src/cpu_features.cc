#include "cpu_features.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define GEMMAC_X86 1
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace gemmac::cpu {
namespace {

#ifdef GEMMAC_X86
uint64_t ReadXcr0() {
  uint32_t lo = 0, hi = 0;
  // xgetbv with ecx = 0; only called when CPUID reports OSXSAVE.
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

bool Bit(uint32_t reg, int bit) { return (reg >> bit) & 1u; }

// Linux keeps AMX tile data off until a process asks for it.
bool RequestAmxPermission() {
#if defined(__linux__) && defined(__x86_64__)
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

CpuFeatures Read() {
  CpuFeatures f;
  uint32_t a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d))
    return f;
  const bool osxsave = Bit(c, 27), fma = Bit(c, 12), f16c = Bit(c, 29);
  const bool avx = Bit(c, 28);
  if (!osxsave || !avx)
    return f;
  const uint64_t xcr0 = ReadXcr0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;                // SSE + AVX
  const bool zmm_state = ymm_state && (xcr0 & 0xe0) == 0xe0; // opmask, ZMM
  const bool tile_cfg = (xcr0 >> 17) & 1u;                   // XTILECFG
  if (__get_cpuid_max(0, nullptr) < 7)
    return f;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = Bit(b, 5);
  const bool avx512f = Bit(b, 16), avx512dq = Bit(b, 17), avx512bw = Bit(b, 30),
             avx512vl = Bit(b, 31), avx512vnni = Bit(c, 11);
  const bool amx_bf16 = Bit(d, 22), amx_tile = Bit(d, 24),
             amx_int8 = Bit(d, 25);
  uint32_t a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  f.avx2 = ymm_state && avx2 && fma && f16c;
  f.avx512 = f.avx2 && zmm_state && avx512f && avx512dq && avx512bw &&
             avx512vl && avx512vnni;
  f.avx512_bf16 = f.avx512 && Bit(a1, 5);
  f.avx_vnni = f.avx2 && Bit(a1, 4);
  f.amx = amx_tile && amx_int8 && amx_bf16 && tile_cfg;
  f.amx_permitted = f.amx && RequestAmxPermission();
  return f;
}
#else
CpuFeatures Read() { return {}; }
#endif

Isa ReadCap(Isa supported) {
  const char *env = std::getenv("GEMMAC_CPU_ISA");
  if (env == nullptr || *env == '\0')
    return supported;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx})
    if (std::strcmp(env, IsaName(isa)) == 0)
      return isa < supported ? isa : supported;
  std::fprintf(stderr,
               "gemmac cpu: ignoring GEMMAC_CPU_ISA=%s (expected scalar, avx2, "
               "avx512 or amx)\n",
               env);
  return supported;
}

} // namespace

const CpuFeatures &DetectCpu() {
  static const CpuFeatures features = Read();
  return features;
}

Isa SupportedIsa() {
  const CpuFeatures &f = DetectCpu();
  if (f.avx512)
    return f.amx_permitted ? Isa::kAmx : Isa::kAvx512;
  return f.avx2 ? Isa::kAvx2 : Isa::kScalar;
}

Isa ActiveIsa() {
  static const Isa active = ReadCap(SupportedIsa());
  return active;
}

bool CanRun(Isa isa) { return isa <= SupportedIsa(); }

const char *IsaName(Isa isa) {
  switch (isa) {
  case Isa::kAmx:
    return "amx";
  case Isa::kAvx512:
    return "avx512";
  case Isa::kAvx2:
    return "avx2";
  default:
    return "scalar";
  }
}

std::string Describe() {
  const CpuFeatures &f = DetectCpu();
  std::string s = IsaName(ActiveIsa());
  if (ActiveIsa() != SupportedIsa())
    s += std::string(" (capped by GEMMAC_CPU_ISA; cpu supports ") +
         IsaName(SupportedIsa()) + ")";
  std::string flags;
  auto add = [&](bool on, const char *name) {
    if (on)
      flags += flags.empty() ? name : std::string(" ") + name;
  };
  add(f.avx2, "avx2");
  add(f.avx512, "avx512");
  add(f.avx512_bf16, "avx512_bf16");
  add(f.avx_vnni, "avx_vnni");
  s += " [" + (flags.empty() ? std::string("baseline") : flags) + "; amx: " +
       (f.amx ? (f.amx_permitted ? "yes" : "present, not permitted") : "no") +
       "]";
  return s;
}

} // namespace gemmac::cpu
