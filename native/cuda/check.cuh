// Launch checking for the CUDA backend: every launch is followed by a check that throws with the op's name.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace selfe::cuda {

inline void checkLaunch(const char* op) {
  const cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) throw std::runtime_error(std::string(op) + ": " + cudaGetErrorString(error));
}

inline unsigned int blocksFor(int64_t n, int threads) {
  return static_cast<unsigned int>((n + threads - 1) / threads);
}

}  // namespace selfe::cuda
