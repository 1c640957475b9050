// A short memory-bandwidth probe: several threads stream-read one buffer
// much larger than the last-level cache, a few times, and report the read
// bandwidth. gemma-bench divides it into the bytes a decode step must read
// to get the decode roofline, and the kernel micro-benchmarks (bench/) print
// it beside their own bytes/s, so both ratios come from a figure measured on
// the same machine with the same thread count.
#ifndef GEMMAC_TOOLS_GEMMA_BENCH_BANDWIDTH_PROBE_H_
#define GEMMAC_TOOLS_GEMMA_BENCH_BANDWIDTH_PROBE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace gemmac::bench {

struct ProbeResult {
  int threads = 0;
  uint64_t buffer_bytes = 0;
  std::vector<double> pass_gbps; // one per timed pass, in order
  double best_gbps = 0;          // the fastest pass (10^9 bytes/s)
  double median_gbps = 0;
  std::string error; // non-empty when the buffer could not be had
};

// The last-level cache size in bytes as the OS reports it; 0 if unknown.
uint64_t LastLevelCacheBytes();

// The default probe buffer: max(1 GiB, 4 x LLC), but at most a quarter of
// physical memory, so the probe measures DRAM, not the cache.
uint64_t DefaultProbeBytes();

// Touches `bytes` (rounded down to 4 KiB) once from `threads` threads (each
// thread first-touches the slice it later reads), then times `passes` reads
// of the whole buffer, each split evenly over the threads, which start
// together. Frees the buffer before returning.
ProbeResult ProbeReadBandwidth(int threads, uint64_t bytes, int passes);

// The same in a new process, so the buffer never counts toward the caller's
// peak RSS (getrusage RUSAGE_SELF): `exe` (a program that calls ProbeChildMain
// first thing in main) is spawned with posix_spawn, which, unlike fork, is
// safe while the caller runs other threads (a backend's pool).
ProbeResult ProbeReadBandwidthSpawned(const std::string &exe, int threads,
                                      uint64_t bytes, int passes);
// The child side of ProbeReadBandwidthSpawned: when argv is
// `exe --probe-child THREADS BYTES PASSES`, runs the probe, writes each
// pass's GB/s on a line of stdout and returns the exit status (0, or 1 when
// the probe failed); otherwise returns -1 and the program goes on.
int ProbeChildMain(int argc, char **argv);
// Pools the passes of several probes: best and median over all of them.
ProbeResult MergeProbes(const std::vector<ProbeResult> &probes);

} // namespace gemmac::bench

#endif // GEMMAC_TOOLS_GEMMA_BENCH_BANDWIDTH_PROBE_H_
