#include "bandwidth_probe.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char **environ; // posix_spawn passes ours on

namespace gemmac::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Eight independent sums so the loads are not serialized behind one add
// chain; the compiler vectorizes this at -O2/-O3, and on x86-64 also for
// AVX2 (picked at load time), so that two cores' adds never limit the read
// rate the kernels see. The result is consumed so the reads cannot be
// optimized away.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
uint64_t
SumWords(const uint64_t *p, size_t n) {
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    a0 += p[i];
    a1 += p[i + 1];
    a2 += p[i + 2];
    a3 += p[i + 3];
    a4 += p[i + 4];
    a5 += p[i + 5];
    a6 += p[i + 6];
    a7 += p[i + 7];
  }
  for (; i < n; ++i)
    a0 += p[i];
  return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

uint64_t ParseCacheSize(const std::string &s) {
  // sysfs writes e.g. "32768K" or "96M".
  char *end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (end == s.c_str())
    return 0;
  if (*end == 'K')
    v <<= 10;
  else if (*end == 'M')
    v <<= 20;
  return v;
}

// Runs body(thread_index) on `threads` threads that start together; returns
// the seconds from the common start until the last one finished.
template <typename Body> double RunTogether(int threads, Body body) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire))
        std::this_thread::yield();
      body(t);
    });
  while (ready.load() < threads)
    std::this_thread::yield();
  Clock::time_point t0 = Clock::now();
  go.store(true, std::memory_order_release);
  for (std::thread &th : pool)
    th.join();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Everything read from fd until its end; closes fd.
std::string ReadToEnd(int fd) {
  std::string out;
  char chunk[512];
  for (ssize_t n; (n = read(fd, chunk, sizeof(chunk))) != 0;) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      break;
    out.append(chunk, size_t(n));
  }
  close(fd);
  return out;
}

// The wait status of child pid, once it has ended.
int WaitFor(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

} // namespace

uint64_t LastLevelCacheBytes() {
  uint64_t best = 0;
#ifdef _SC_LEVEL3_CACHE_SIZE
  long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (l3 > 0)
    best = uint64_t(l3);
#endif
  // sysfs is the kernel's view; take the larger of the two so a guest that
  // hides one still gets a conservative (large) buffer.
  for (int i = 0; i < 8; ++i) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" +
                    std::to_string(i) + "/size");
    std::string s;
    if (f >> s)
      best = std::max(best, ParseCacheSize(s));
  }
  return best;
}

uint64_t DefaultProbeBytes() {
  uint64_t want =
      std::max<uint64_t>(uint64_t(1) << 30, 4 * LastLevelCacheBytes());
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0)
    want = std::min<uint64_t>(want, uint64_t(pages) * uint64_t(page) / 4);
  return want;
}

ProbeResult ProbeReadBandwidth(int threads, uint64_t bytes, int passes) {
  ProbeResult r;
  r.threads = std::max(1, threads);
  bytes &= ~uint64_t(4095);
  r.buffer_bytes = bytes;
  if (bytes == 0 || passes < 1) {
    r.error = "the probe needs a buffer of at least 4 KiB and one pass";
    return r;
  }
  void *mem = nullptr;
  if (posix_memalign(&mem, 4096, bytes) != 0) {
    r.error = "could not allocate " + std::to_string(bytes >> 20) +
              " MiB for the bandwidth probe";
    return r;
  }
  const uint64_t words = bytes / sizeof(uint64_t);
  auto *buf = static_cast<uint64_t *>(mem);
  auto slice = [&](int t, uint64_t *begin, uint64_t *count) {
    uint64_t per = (words / r.threads) & ~uint64_t(7);
    *begin = per * t;
    *count = t + 1 == r.threads ? words - *begin : per;
  };
  // First touch from the thread that reads the slice, with non-zero data so
  // no page can stay the shared zero page.
  RunTogether(r.threads, [&](int t) {
    uint64_t b, n;
    slice(t, &b, &n);
    for (uint64_t i = 0; i < n; ++i)
      buf[b + i] = b + i;
  });
  std::vector<uint64_t> sinks(r.threads);
  for (int p = 0; p < passes; ++p) {
    double s = RunTogether(r.threads, [&](int t) {
      uint64_t b, n;
      slice(t, &b, &n);
      sinks[t] += SumWords(buf + b, n);
    });
    r.pass_gbps.push_back(double(bytes) / s / 1e9);
  }
  // Keep the sums observable.
  volatile uint64_t sink = 0;
  for (uint64_t v : sinks)
    sink = sink + v;
  (void)sink;
  std::free(mem);
  return MergeProbes({r});
}

ProbeResult MergeProbes(const std::vector<ProbeResult> &probes) {
  ProbeResult r;
  for (const ProbeResult &p : probes) {
    if (!p.error.empty())
      continue;
    r.threads = p.threads;
    r.buffer_bytes = p.buffer_bytes;
    r.pass_gbps.insert(r.pass_gbps.end(), p.pass_gbps.begin(),
                       p.pass_gbps.end());
  }
  if (r.pass_gbps.empty()) {
    r.error = probes.empty() ? "no probe ran" : probes.front().error;
    return r;
  }
  std::vector<double> sorted = r.pass_gbps;
  std::sort(sorted.begin(), sorted.end());
  r.best_gbps = sorted.back();
  size_t m = sorted.size();
  r.median_gbps =
      m % 2 ? sorted[m / 2] : 0.5 * (sorted[m / 2 - 1] + sorted[m / 2]);
  return r;
}

ProbeResult ProbeReadBandwidthSpawned(const std::string &exe, int threads,
                                      uint64_t bytes, int passes) {
  ProbeResult r;
  int fds[2];
  if (pipe(fds) != 0) {
    r.error = std::string("bandwidth probe: pipe: ") + std::strerror(errno);
    return r;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  std::string args[] = {exe, "--probe-child", std::to_string(threads),
                        std::to_string(bytes), std::to_string(passes)};
  char *argv[] = {args[0].data(), args[1].data(), args[2].data(),
                  args[3].data(), args[4].data(), nullptr};
  pid_t pid = -1;
  int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv, ::environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    r.error = "bandwidth probe: posix_spawn " + exe + ": " + std::strerror(rc);
    return r;
  }
  std::istringstream in(ReadToEnd(fds[0]));
  const int status = WaitFor(pid);
  for (double v; in >> v;)
    r.pass_gbps.push_back(v);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
      int(r.pass_gbps.size()) != passes) {
    r.error = "bandwidth probe: the child process " + exe +
              " failed (could it allocate " + std::to_string(bytes >> 20) +
              " MiB?)";
    return r;
  }
  r.threads = std::max(1, threads);
  r.buffer_bytes = bytes & ~uint64_t(4095);
  return MergeProbes({r});
}

int ProbeChildMain(int argc, char **argv) {
  if (argc != 5 || std::strcmp(argv[1], "--probe-child") != 0)
    return -1;
  ProbeResult r = ProbeReadBandwidth(std::atoi(argv[2]),
                                     std::strtoull(argv[3], nullptr, 10),
                                     std::atoi(argv[4]));
  if (!r.error.empty()) {
    std::fprintf(stderr, "%s\n", r.error.c_str());
    return 1;
  }
  for (double v : r.pass_gbps)
    std::printf("%.17g\n", v);
  return 0;
}

} // namespace gemmac::bench
