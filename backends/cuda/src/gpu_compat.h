// The few GPU runtime names the CUDA plugin uses, behind gpu* aliases, so the
// same sources can be built with HIP (ROCm) later by defining
// GEMMAC_GPU_HIP and mapping these to hip* instead. The kernels assume a
// 32-lane warp (GEMMAC_GPU_WARP); a wave64 HIP target would need that and
// the shuffles revisited.
#ifndef GEMMAC_BACKENDS_CUDA_GPU_COMPAT_H_
#define GEMMAC_BACKENDS_CUDA_GPU_COMPAT_H_

#if defined(GEMMAC_GPU_HIP)
#include <hip/hip_runtime.h>
#define GPU_PREFIX(name) hip##name
#define gpuShflXor(v, m) __shfl_xor((v), (m))
#else
#include <cuda_runtime.h>
#define GPU_PREFIX(name) cuda##name
#define gpuShflXor(v, m) __shfl_xor_sync(0xffffffffu, (v), (m))
#endif

#define GEMMAC_GPU_WARP 32

using gpuError_t = GPU_PREFIX(Error_t);
using gpuStream_t = GPU_PREFIX(Stream_t);
using gpuDeviceProp = GPU_PREFIX(DeviceProp);
using gpuPointerAttributes = GPU_PREFIX(PointerAttributes);
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
#define gpuMemoryTypeDevice GPU_PREFIX(MemoryTypeDevice)
#define gpuMemoryTypeManaged GPU_PREFIX(MemoryTypeManaged)
#define gpuMemoryTypeHost GPU_PREFIX(MemoryTypeHost)
#define gpuEvent_t GPU_PREFIX(Event_t)
#define gpuEventCreate GPU_PREFIX(EventCreate)
#define gpuEventRecord GPU_PREFIX(EventRecord)
#define gpuEventSynchronize GPU_PREFIX(EventSynchronize)
#define gpuEventElapsedTime GPU_PREFIX(EventElapsedTime)
#define gpuEventDestroy GPU_PREFIX(EventDestroy)

#endif // GEMMAC_BACKENDS_CUDA_GPU_COMPAT_H_
