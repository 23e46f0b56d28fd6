// The wgmma products of test/native/wgmma_cases.cuh on a GPU (sm_90), against float64: whether the reading of
// the PTX ISA that the CPU emulator and the attention kernels share holds on the card. scripts/gpu-check.sh
// builds and runs it before the GPU suite:
//   nvcc -std=c++17 -arch=sm_90a -I native -I native/include test/native/wgmma_check.cu -o build/wgmma_check
// Exit status: the number of failed cases (0: all matched; also 0, with a line saying so, off sm_90).
#include <cuda_runtime.h>

#include <cstdio>

#include "wgmma_cases.cuh"

namespace {
bool ok(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return true;
  std::printf("FAILED %s: %s\n", what, cudaGetErrorString(status));
  return false;
}
}  // namespace

int main() {
  using namespace selfe::wgmma_check;
  cudaDeviceProp properties{};
  if (!ok(cudaGetDeviceProperties(&properties, 0), "cudaGetDeviceProperties")) return 1;
  if (properties.major != 9 || properties.minor != 0) {
    std::printf("wgmma check skipped: %s is compute capability %d.%d, not 9.0\n", properties.name, properties.major, properties.minor);
    return 0;
  }
  uint16_t *a = nullptr, *b = nullptr;
  float* d = nullptr;
  if (!ok(cudaMalloc(&a, 64 * 64 * 2), "cudaMalloc") || !ok(cudaMalloc(&b, 64 * 128 * 2), "cudaMalloc") ||
      !ok(cudaMalloc(&d, 64 * 128 * 4), "cudaMalloc"))
    return 1;
  bool healthy = true;
  const int failures = checkAll([&](Case c, float* hostD, const uint16_t* hostA, const uint16_t* hostB) {
    if (!healthy) return;  // a trapped kernel leaves the context unusable: the rest report as failed
    healthy = ok(cudaMemcpy(a, hostA, 64 * 64 * 2, cudaMemcpyHostToDevice), "upload") &&
              ok(cudaMemcpy(b, hostB, 64 * bColumns(c) * 2, cudaMemcpyHostToDevice), "upload");
    if (!healthy) return;
    if (c == Case::kMajor) product<Case::kMajor><<<1, 128, kShared>>>(d, a, b);
    if (c == Case::mnMajorN32) product<Case::mnMajorN32><<<1, 128, kShared>>>(d, a, b);
    if (c == Case::registers) product<Case::registers><<<1, 128, kShared>>>(d, a, b);
    if (c == Case::registersN128) product<Case::registersN128><<<1, 128, kShared>>>(d, a, b);
    healthy = ok(cudaGetLastError(), name(c)) && ok(cudaDeviceSynchronize(), name(c)) &&
              ok(cudaMemcpy(hostD, d, 64 * columns(c) * 4, cudaMemcpyDeviceToHost), "download");
  });
  std::printf("wgmma check on %s: %d of %zu cases failed\n", properties.name, failures, sizeof kCases / sizeof kCases[0]);
  return failures;
}
