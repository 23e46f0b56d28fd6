// Host stand-in for <cuda_runtime.h>, for running kernel files on the CPU emulator (selfe_cuda_emu.h): the
// execution-space keywords, built-in variables, the warp and block primitives the kernels use, and the few
// runtime calls the launchers make.
#pragma once
#include <math.h>  // also puts isnan, fminf, sqrtf, ... in the global namespace, as in device code

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <thread>
#include <type_traits>

#include "selfe_cuda_emu.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __grid_constant__
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// Every __shared__ variable is a static in one section, refilled with NaN bytes before each block runs.
#define __shared__ static __attribute__((section("selfe_emu_shared")))

// The IEEE round-to-nearest arithmetic intrinsics: the host's float operations round the same way (no fast
// math; g++ contracts nothing into an fma on x86-64 without -mfma).
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }

struct alignas(16) float4 {
  float x, y, z, w;
};

enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};

inline cudaError_t cudaGetLastError() {
  const cudaError_t error = emu::lastError;
  emu::lastError = cudaSuccess;
  return error;
}
inline const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNotReady: return "device not ready";
  }
  return "unknown error";
}

template <class Kernel>
cudaError_t cudaFuncSetAttribute(Kernel, cudaFuncAttribute, int value) {
  return value >= 0 && value <= (227 << 10) ? cudaSuccess : cudaErrorInvalidValue;
}

template <class Kernel>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, Kernel, int blockSize, size_t) {
  if (blockSize <= 0 || blockSize > 1024) return cudaErrorInvalidValue;
  *blocks = emu::settings.occupancy;
  return cudaSuccess;
}

// Device memory is host memory, 256-byte aligned as cudaMalloc's. Live blocks are listed with the size asked
// for: a library stand-in checks that its kernels stay inside device memory (on a GPU they would fault outside
// it), and a test sees how much a launcher allocated.
namespace emu {
struct Allocation {
  const void* base;
  size_t bytes;
};
inline std::mutex allocationsMutex;
inline std::map<const void*, size_t> allocations;
// The live block holding `pointer`, or {nullptr, 0}.
inline Allocation allocationOf(const void* pointer) {
  std::lock_guard<std::mutex> lock(allocationsMutex);
  auto after = allocations.upper_bound(pointer);
  if (after == allocations.begin()) return {nullptr, 0};
  const auto& [base, bytes] = *std::prev(after);
  const auto offset = static_cast<size_t>(static_cast<const unsigned char*>(pointer) - static_cast<const unsigned char*>(base));
  return offset < bytes ? Allocation{base, bytes} : Allocation{nullptr, 0};
}
// Bytes cudaMalloc has handed out and not yet taken back (pinned host memory not counted).
inline size_t deviceBytes = 0;
// SELFE_EMU_DEVICE_BYTES: how many bytes the emulated device holds (default: as many as the host gives).
inline size_t deviceCapacity() {
  const char* text = std::getenv("SELFE_EMU_DEVICE_BYTES");
  return text == nullptr ? SIZE_MAX : static_cast<size_t>(std::strtoull(text, nullptr, 10));
}
// Device and pinned host memory alike: host memory, recorded for allocationOf.
inline cudaError_t allocate(void** ptr, size_t bytes, bool device) {
  std::lock_guard<std::mutex> lock(allocationsMutex);
  if (device && (bytes > deviceCapacity() || deviceBytes > deviceCapacity() - bytes)) {
    *ptr = nullptr;
    return cudaErrorMemoryAllocation;
  }
  *ptr = std::aligned_alloc(256, (std::max<size_t>(bytes, 1) + 255) / 256 * 256);
  if (*ptr == nullptr) return cudaErrorMemoryAllocation;
  allocations[*ptr] = bytes;
  if (device) deviceBytes += bytes;
  return cudaSuccess;
}
inline void release(void* ptr, bool device) {
  {
    std::lock_guard<std::mutex> lock(allocationsMutex);
    const auto found = allocations.find(ptr);
    if (found != allocations.end()) {
      if (device) deviceBytes -= found->second;
      allocations.erase(found);
    }
  }
  std::free(ptr);
}
}  // namespace emu
inline cudaError_t cudaMalloc(void** ptr, size_t bytes) { return emu::allocate(ptr, bytes, true); }
inline cudaError_t cudaFree(void* ptr) {
  emu::release(ptr, true);
  return cudaSuccess;
}

// Events read the emulated device's clock, which only cublaslt_emu.cpp's products advance (by the time each
// algorithm is given): enough to drive a choice between algorithms.
struct CUevent_st {
  double at;
};
typedef CUevent_st* cudaEvent_t;
namespace emu {
inline double clockMilliseconds = 0;
}
inline cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new CUevent_st{0};
  return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t = nullptr) {
  event->at = emu::clockMilliseconds;
  return cudaSuccess;
}
// SELFE_EMU_EVENT_WAIT_MS: how long a wait for an event takes. Work here is done when it is enqueued, so a
// waiter would never see later work run before its event completes, as it may on a GPU; a wait this long lets
// the launch thread run ahead of the thread waiting.
inline cudaError_t cudaEventSynchronize(cudaEvent_t) {
  if (const char* text = std::getenv("SELFE_EMU_EVENT_WAIT_MS"))
    std::this_thread::sleep_for(std::chrono::milliseconds(std::strtoull(text, nullptr, 10)));
  return cudaSuccess;
}
inline cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end) {
  *milliseconds = static_cast<float>(end->at - start->at);
  return cudaSuccess;
}

// The host API of the N-API layer (native/napi/cuda_stream.cpp), for the emulated addon
// (test/helpers/emulatedCudaAddon.ts): one device whose memory is host memory; work runs when it is
// enqueued, on the enqueuing thread, so streams and events are always complete.
enum : unsigned int {
  cudaStreamNonBlocking = 1,
  cudaHostAllocPortable = 1,
  cudaHostAllocMapped = 2,
  cudaEventBlockingSync = 1,
  cudaEventDisableTiming = 2,
};
struct cudaDeviceProp {
  char name[256];
  int multiProcessorCount;
  size_t sharedMemPerBlockOptin;
  int major, minor;
};
inline cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* properties, int device) {
  if (device != 0) return cudaErrorInvalidDevice;
  *properties = cudaDeviceProp{};
  std::strcpy(properties->name, "selfe CUDA emulator");
  properties->multiProcessorCount = 4;
  properties->sharedMemPerBlockOptin = 227 << 10;  // an H100's
  properties->major = 9;                           // and its compute capability, 9.0
  properties->minor = 0;
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int) {
  *stream = reinterpret_cast<cudaStream_t>(new char);
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete reinterpret_cast<char*>(stream);
  return cudaSuccess;
}
inline cudaError_t cudaStreamQuery(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int) { return emu::allocate(ptr, bytes, false); }
inline cudaError_t cudaFreeHost(void* ptr) {
  emu::release(ptr, false);
  return cudaSuccess;
}
inline cudaError_t cudaHostGetDevicePointer(void** device, void* host, unsigned int) {
  *device = host;
  return cudaSuccess;
}
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int) { return cudaEventCreate(event); }
inline cudaError_t cudaEventQuery(cudaEvent_t) { return cudaSuccess; }

inline cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t = nullptr) {
  if (bytes > 0) std::memset(ptr, value, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t = nullptr) {
  if (bytes > 0) std::memmove(dst, src, bytes);
  return cudaSuccess;
}

inline void __syncthreads() { emu::syncThreads(); }
inline void __threadfence() {}
inline void __threadfence_system() {}

template <class T>
T __shfl_sync(unsigned int mask, T value, int source, int width = 32) {
  return emu::exchange(mask, value, [&](int lane) { return (lane & ~(width - 1)) + (source & (width - 1)); });
}
template <class T>
T __shfl_xor_sync(unsigned int mask, T value, int laneMask, int width = 32) {
  return emu::exchange(mask, value, [&](int lane) {
    const int other = lane ^ laneMask;
    return (other & ~(width - 1)) == (lane & ~(width - 1)) ? other : lane;
  });
}
template <class T>
T __shfl_down_sync(unsigned int mask, T value, unsigned int delta, int width = 32) {
  return emu::exchange(mask, value, [&](int lane) {
    const int other = lane + static_cast<int>(delta);
    return (other & ~(width - 1)) == (lane & ~(width - 1)) ? other : lane;
  });
}
template <class T>
T __shfl_up_sync(unsigned int mask, T value, unsigned int delta, int width = 32) {
  return emu::exchange(mask, value, [&](int lane) {
    const int other = lane - static_cast<int>(delta);
    return other >= 0 && (other & ~(width - 1)) == (lane & ~(width - 1)) ? other : lane;
  });
}

// One host thread runs everything, so atomics are plain read-modify-writes.
template <class T>
T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}
template <class T>
T atomicExch(T* address, T value) {
  const T old = *address;
  *address = value;
  return old;
}
// CUDA's overloads (not a template: an enumerator argument converts, as with nvcc).
template <class T>
T compareAndSwap(T* address, T compare, T value) {
  const T old = *address;
  if (old == compare) *address = value;
  return old;
}
inline int atomicCAS(int* address, int compare, int value) { return compareAndSwap(address, compare, value); }
inline unsigned int atomicCAS(unsigned int* address, unsigned int compare, unsigned int value) {
  return compareAndSwap(address, compare, value);
}
inline unsigned long long atomicCAS(unsigned long long* address, unsigned long long compare, unsigned long long value) {
  return compareAndSwap(address, compare, value);
}
template <class T>
T atomicMax(T* address, T value) {
  const T old = *address;
  *address = std::max(old, value);
  return old;
}

// Device code's unqualified min/max (integer and floating overloads in CUDA's math headers).
template <class A, class B>
__device__ inline std::common_type_t<A, B> min(A a, B b) {
  return b < a ? b : a;
}
template <class A, class B>
__device__ inline std::common_type_t<A, B> max(A a, B b) {
  return a < b ? b : a;
}
