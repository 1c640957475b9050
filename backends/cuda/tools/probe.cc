// gemmac_cuda_probe: is a CUDA device usable here, and how fast is its memory?
//   gemmac_cuda_probe              exit 0 and print the device; exit 77 and
//                                  "no CUDA device: skipped" when there is
//                                  none (ctest's SKIP_RETURN_CODE)
//   gemmac_cuda_probe --bandwidth  also print "bandwidth_gbps X": the best of
//                                  several 1 GiB device-to-device copies,
//                                  counting read + write bytes (the HBM
//                                  roofline of scripts/device-check-cuda.sh)
#include <cstdio>
#include <cstring>

#include "gpu_compat.h"

int main(int argc, char **argv) {
  const bool bandwidth = argc > 1 && std::strcmp(argv[1], "--bandwidth") == 0;
  if (argc > 1 && !bandwidth) {
    std::fprintf(stderr, "usage: %s [--bandwidth]\n", argv[0]);
    return 2;
  }
  int count = 0;
  const gpuError_t e = gpuGetDeviceCount(&count);
  if (e != gpuSuccess || count == 0) {
    std::printf(
        "no CUDA device: skipped (cudaGetDeviceCount: %s, %d devices)\n",
        e == gpuSuccess ? "ok" : gpuGetErrorString(e), count);
    return 77;
  }
  gpuDeviceProp prop;
  if (gpuGetDeviceProperties(&prop, 0) != gpuSuccess) {
    std::printf("no CUDA device: skipped (device 0 has no properties)\n");
    return 77;
  }
  std::printf("device %s, sm_%d%d, %.1f GiB\n", prop.name, prop.major,
              prop.minor, double(prop.totalGlobalMem) / (1 << 30));
  if (!bandwidth)
    return 0;
  const size_t bytes = size_t(1) << 30;
  void *a = nullptr, *b = nullptr;
  if (gpuMalloc(&a, bytes) != gpuSuccess ||
      gpuMalloc(&b, bytes) != gpuSuccess) {
    std::fprintf(stderr, "gemmac_cuda_probe: cudaMalloc of 2 x 1 GiB failed\n");
    return 1;
  }
  gpuEvent_t start, stop;
  gpuEventCreate(&start);
  gpuEventCreate(&stop);
  double best = 0;
  for (int i = 0; i < 10; ++i) {
    gpuEventRecord(start, 0);
    gpuMemcpyAsync(b, a, bytes, gpuMemcpyDeviceToDevice, 0);
    gpuEventRecord(stop, 0);
    gpuEventSynchronize(stop);
    float ms = 0;
    gpuEventElapsedTime(&ms, start, stop);
    const double gbps = 2.0 * double(bytes) / (ms * 1e-3) / 1e9;
    if (i > 0 && gbps > best) // the first copy warms up
      best = gbps;
  }
  const gpuError_t last = gpuGetLastError();
  if (last != gpuSuccess) {
    std::fprintf(stderr, "gemmac_cuda_probe: copy failed: %s\n",
                 gpuGetErrorString(last));
    return 1;
  }
  std::printf("bandwidth_gbps %.1f\n", best);
  gpuFree(a);
  gpuFree(b);
  return 0;
}
