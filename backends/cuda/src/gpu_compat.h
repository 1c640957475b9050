// The few GPU runtime names the CUDA plugin uses, behind gpu* aliases, so the
// same sources build as CUDA (nvcc) and as HIP for ROCm (hipcc, or the host
// compiler with -D__HIP_PLATFORM_AMD__): backends/rocm builds these files
// unchanged (docs/rocm.md). Only names whose meaning is the same on both sides
// are aliased; where HIP differs (pointer attributes, device properties) a
// small inline helper hides it.
#ifndef GEMMAC_BACKENDS_CUDA_GPU_COMPAT_H_
#define GEMMAC_BACKENDS_CUDA_GPU_COMPAT_H_

// hipcc defines __HIP__ in every compile of HIP code; host-only translation
// units built by the C++ compiler get -D__HIP_PLATFORM_AMD__ from CMake.
#if defined(__HIP__) || defined(__HIP_PLATFORM_AMD__)
#define GEMMAC_GPU_HIP 1
#endif

#if defined(GEMMAC_GPU_HIP)
#include <hip/hip_runtime.h>
#define GPU_PREFIX(name) hip##name
// The plugin's name (and the prefix of its messages) and the runtime's API
// prefix, for error messages naming the call that failed.
#define GEMMAC_GPU_PLUGIN "rocm"
#define GEMMAC_GPU_API "hip"
#define GEMMAC_GPU_KIND "HIP"
// AMD CDNA (gfx90a, gfx940) runs 64-lane wavefronts. A wave32 target (RDNA)
// would need 32 here: the static_assert below refuses to build it silently
// wrong. HIP's shuffles take no mask: the whole wavefront takes part.
#define GEMMAC_GPU_WARP 64
#define gpuShflXor(v, m) __shfl_xor((v), (m), GEMMAC_GPU_WARP)
#if defined(__AMDGCN_WAVEFRONT_SIZE)
static_assert(__AMDGCN_WAVEFRONT_SIZE == GEMMAC_GPU_WARP,
              "gpu_compat.h: the target's wavefront size differs from "
              "GEMMAC_GPU_WARP (64, wave64 CDNA); build for gfx90a/gfx940");
#endif
using gpuDeviceProp = hipDeviceProp_t;
using gpuPointerAttributes = hipPointerAttribute_t;
#else
#include <cuda_runtime.h>
#define GPU_PREFIX(name) cuda##name
#define GEMMAC_GPU_PLUGIN "cuda"
#define GEMMAC_GPU_API "cuda"
#define GEMMAC_GPU_KIND "CUDA"
// NVIDIA warps are 32 lanes; every shuffle names all of them.
#define GEMMAC_GPU_WARP 32
#define GEMMAC_GPU_FULL_MASK 0xffffffffu
#define gpuShflXor(v, m)                                                       \
  __shfl_xor_sync(GEMMAC_GPU_FULL_MASK, (v), (m), GEMMAC_GPU_WARP)
using gpuDeviceProp = cudaDeviceProp;
using gpuPointerAttributes = cudaPointerAttributes;
#endif

using gpuError_t = GPU_PREFIX(Error_t);
using gpuStream_t = GPU_PREFIX(Stream_t);
#define gpuSuccess GPU_PREFIX(Success)
#define gpuGetErrorString GPU_PREFIX(GetErrorString)
#define gpuGetLastError GPU_PREFIX(GetLastError)
#define gpuGetDeviceCount GPU_PREFIX(GetDeviceCount)
#define gpuGetDeviceProperties GPU_PREFIX(GetDeviceProperties)
#define gpuSetDevice GPU_PREFIX(SetDevice)
#define gpuDriverGetVersion GPU_PREFIX(DriverGetVersion)
#define gpuMalloc GPU_PREFIX(Malloc)
#define gpuMallocManaged GPU_PREFIX(MallocManaged)
#define gpuMemAttachGlobal GPU_PREFIX(MemAttachGlobal)
#define gpuFree GPU_PREFIX(Free)
#define gpuMemGetInfo GPU_PREFIX(MemGetInfo)
#define gpuMemcpy GPU_PREFIX(Memcpy)
#define gpuMemcpyAsync GPU_PREFIX(MemcpyAsync)
#define gpuMemcpyDefault GPU_PREFIX(MemcpyDefault)
#define gpuMemcpyDeviceToDevice GPU_PREFIX(MemcpyDeviceToDevice)
#define gpuStreamCreateWithFlags GPU_PREFIX(StreamCreateWithFlags)
#define gpuStreamNonBlocking GPU_PREFIX(StreamNonBlocking)
#define gpuStreamSynchronize GPU_PREFIX(StreamSynchronize)
#define gpuStreamDestroy GPU_PREFIX(StreamDestroy)
#define gpuDeviceSynchronize GPU_PREFIX(DeviceSynchronize)
#define gpuPointerGetAttributes GPU_PREFIX(PointerGetAttributes)
#define gpuEvent_t GPU_PREFIX(Event_t)
#define gpuEventCreate GPU_PREFIX(EventCreate)
#define gpuEventRecord GPU_PREFIX(EventRecord)
#define gpuEventSynchronize GPU_PREFIX(EventSynchronize)
#define gpuEventElapsedTime GPU_PREFIX(EventElapsedTime)
#define gpuEventDestroy GPU_PREFIX(EventDestroy)

// The pointer kinds the plugin tells apart. HIP 5.x has no "managed" memory
// type (a managed pointer reports isManaged) and names the field memoryType.
inline bool gpuPointerIsDeviceOrManaged(const gpuPointerAttributes &a) {
#if defined(GEMMAC_GPU_HIP)
  return a.memoryType == hipMemoryTypeDevice || a.isManaged;
#else
  return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
#endif
}
inline bool gpuPointerIsHost(const gpuPointerAttributes &a) {
#if defined(GEMMAC_GPU_HIP)
  return a.memoryType == hipMemoryTypeHost;
#else
  return a.type == cudaMemoryTypeHost;
#endif
}

#endif // GEMMAC_BACKENDS_CUDA_GPU_COMPAT_H_
