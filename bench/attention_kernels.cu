// The warpgroup attention kernels of native/cuda/attention_wgmma.cuh alone, without the addon: the forward and the
// backward key kernel at head dims 64 and 128, on random bf16 inputs (B·L = 32768; 16 heads at
// d = 64, 8 at 128), timed with cudaEvents, best of 20 launches after 3 warm-ups. It prints one line per shape,
// with a checksum of part of the output so that two builds can be told apart or matched. To compare a change,
// build it once against each version of the header (the first -I wins for attention_wgmma.cuh) and run the two
// alternately, on a GPU with sm_90a (H100/H200):
//   nvcc -std=c++17 -arch=sm_90a --expt-relaxed-constexpr -O3 -I <folder with a header> -I native/cuda -I native \
//     -I native/include bench/attention_kernels.cu -o build/attention_kernels && build/attention_kernels <label>
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
#include <array>
#include <initializer_list>
#include "attention_wgmma.cuh"
using namespace selfe::cuda::flash;
#define CK(x)                                                                  \
  do {                                                                         \
    cudaError_t e = (x);                                                       \
    if (e != cudaSuccess) {                                                    \
      printf("CUDA %s at line %d\n", cudaGetErrorString(e), __LINE__);         \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

// Values spread over [-1.5, 1.5) from a hash of the index (never zeros, no host copy).
__global__ void fill(__nv_bfloat16* x, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u ^ seed; h ^= h >> 13; h *= 0x5bd1e995; h ^= h >> 15;
    x[i] = __float2bfloat16(((h & 0xffff) / 65536.0f - 0.5f) * 3.0f);
  }
}
// Microseconds of the quickest of 20 launches of f, after 3 warm-ups.
template <class F>
float best(F f) {
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  for (int i = 0; i < 3; ++i) f();
  float bestMs = 1e9;
  for (int i = 0; i < 20; ++i) {
    cudaEventRecord(a);
    f();
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms;
    cudaEventElapsedTime(&ms, a, b);
    bestMs = std::min(bestMs, ms);
  }
  CK(cudaGetLastError());
  return bestMs * 1000;
}

// One shape: the forward (its lse feeds the backward), then the backward key kernel (delta zero, dq summed into an
// f32 workspace: timing only).
template <int kD>
void run(int64_t L, int64_t B, int64_t H, const char* label) {
  const int64_t n = B * L * H * kD, rows = B * H * L;
  const auto device = [](size_t bytes) {
    void* p = nullptr;
    CK(cudaMalloc(&p, bytes));
    return p;
  };
  const auto bf16s = [&] { return static_cast<__nv_bfloat16*>(device(n * 2)); };
  __nv_bfloat16 *q = bf16s(), *k = bf16s(), *v = bf16s(), *out = bf16s(), *dout = bf16s(), *dk = bf16s(), *dv = bf16s();
  float* lse = static_cast<float*>(device(rows * 4));
  float* delta = static_cast<float*>(device(rows * 4));
  float* dq = static_cast<float*>(device(n * 4));
  for (uint32_t i = 0; i < 4; ++i) fill<<<1024, 256>>>(std::array{q, k, v, dout}[i], n, i + 1);
  CK(cudaMemset(delta, 0, rows * 4));
  CK(cudaMemset(dq, 0, n * 4));
  const float scale = 1.0f / sqrtf(static_cast<float>(kD));

  using F = WgmmaForwardTiling<kD>;
  const auto forward = forwardWgmma<kD, __nv_bfloat16>;
  CK(cudaFuncSetAttribute(forward, cudaFuncAttributeMaxDynamicSharedMemorySize, F::kShared));
  const dim3 forwardGrid((L + F::kRows - 1) / F::kRows, B * H);
  const float forwardUs =
      best([&] { forward<<<forwardGrid, F::kThreads, F::kShared>>>(out, lse, q, k, v, nullptr, 0, H, L, L, scale); });
  using W = WgmmaBackwardTiling<kD>;
  const auto backward = backwardWgmma<kD, __nv_bfloat16>;
  CK(cudaFuncSetAttribute(backward, cudaFuncAttributeMaxDynamicSharedMemorySize, W::kShared));
  const dim3 backwardGrid((L + W::kKeys - 1) / W::kKeys, B * H);
  const float backwardUs = best([&] {
    backward<<<backwardGrid, W::kThreads, W::kShared>>>(dk, dv, dq, dout, q, k, v, lse, delta, nullptr, 0, H, L, L, scale);
  });
  // A checksum of part of out, to match or tell apart two builds' results.
  std::vector<__nv_bfloat16> part(4096);
  CK(cudaMemcpy(part.data(), out + n / 2, part.size() * 2, cudaMemcpyDeviceToHost));
  double sum = 0;
  for (auto x : part) sum += __bfloat162float(x);
  printf("%-4s d=%-3d L=%-5lld fwd %8.1f us   bwd %8.1f us   checksum %.6f\n", label, kD, static_cast<long long>(L), forwardUs,
         backwardUs, sum);
  for (void* p : std::initializer_list<void*>{q, k, v, out, dout, dk, dv, lse, delta, dq}) cudaFree(p);
}

int main(int argc, char** argv) {
  const char* label = argc > 1 ? argv[1] : "-";
  for (int64_t L : {256, 1024, 4096}) run<64>(L, 32768 / L, 16, label);
  for (int64_t L : {1024, 4096}) run<128>(L, 32768 / L, 8, label);
}
