// Shared by every CUDA kernel family: launch checks that throw with the kernel's name, grid sizing, the
// f32/bf16 storage mapping (fp32 arithmetic everywhere) and warp reductions.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "context.h"
#include "selfe/dtype.h"

namespace selfe::cuda {

// Throws if a CUDA call failed, naming what was being done. An allocation failure is out-of-memory; anything
// else (an illegal address reported late by an earlier kernel, a bad configuration) is a device error.
inline void check(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return;
  const Error::Kind kind = error == cudaErrorMemoryAllocation ? Error::Kind::OutOfMemory : Error::Kind::Device;
  throw Error(kind, std::string(what) + ": " + cudaGetErrorString(error));
}

// Called after every launch.
inline void checkLaunch(const char* kernel) { check(cudaGetLastError(), kernel); }

inline unsigned int blocksFor(int64_t n, int threads) {
  return static_cast<unsigned int>((n + threads - 1) / threads);
}

// Blocks for a grid-stride loop over n items: enough to fill the device several times over, no more.
inline unsigned int gridFor(Stream stream, int64_t n, int threads) {
  const int64_t cap = static_cast<int64_t>(stream.context->smCount) * 16;
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min<int64_t>(blocksFor(n, threads), cap)));
}

// Opts a kernel into more than 48 KiB of dynamic shared memory (a no-op below that).
template <class Kernel>
void allowSharedMemory(Kernel kernel, size_t bytes, const char* name) {
  if (bytes > (48u << 10)) check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)), name);
}

// Host storage types to device storage types: bf16 is __nv_bfloat16 on the device (same bits).
inline float* dev(float* p) { return p; }
inline const float* dev(const float* p) { return p; }
inline __nv_bfloat16* dev(bf16* p) { return reinterpret_cast<__nv_bfloat16*>(p); }
inline const __nv_bfloat16* dev(const bf16* p) { return reinterpret_cast<const __nv_bfloat16*>(p); }

__device__ __forceinline__ float toFloat(float x) { return x; }
__device__ __forceinline__ float toFloat(__nv_bfloat16 x) { return __bfloat162float(x); }

template <class T>
__device__ __forceinline__ T fromFloat(float x);
template <>
__device__ __forceinline__ float fromFloat<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

__device__ __forceinline__ float warpSum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warpMax(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum over a block of blockDim.x threads (a multiple of 32, at most 1024), in a fixed order; every thread
// gets the total. `shared` holds 32 floats.
__device__ __forceinline__ float blockSum(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warpSum(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < warps ? shared[lane] : 0.0f;
  return warpSum(v);
}

}  // namespace selfe::cuda

// for (i over [0, n)) spread across the whole grid.
#define SELFE_GRID_STRIDE(i, n)                                                                       \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);               \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
