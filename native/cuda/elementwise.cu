// CUDA elementwise kernels (see selfe/kernels/elementwise.h).
#include <cuda_runtime.h>

#include "check.cuh"
#include "selfe/kernels/elementwise.h"

namespace selfe::cuda {

namespace {
constexpr int kThreads = 256;

__global__ void binaryKernel(float* out, const float* a, const float* b, int64_t n, int64_t nb, BinaryOp op,
                             Broadcast broadcast) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = broadcast == Broadcast::Same ? i : broadcast == Broadcast::Trailing ? i % nb : i / (n / nb);
    const float x = a[i], y = b[j];
    out[i] = op == BinaryOp::Add ? x + y : op == BinaryOp::Sub ? x - y : x * y;
  }
}

__global__ void affineKernel(float* out, const float* x, float alpha, float beta, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = alpha * x[i] + beta;
}

__global__ void axpyKernel(float* out, const float* x, const float* y, float alpha, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = alpha * x[i] + y[i];
}

// One block per row; fp32 partial sums reduced in shared memory.
__global__ void rowDotKernel(float* out, const float* a, const float* b, int64_t cols) {
  __shared__ float partial[kThreads];
  const int64_t row = blockIdx.x;
  float acc = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) acc += a[row * cols + c] * b[row * cols + c];
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[row] = partial[0];
}

__global__ void fill32Kernel(uint32_t* out, uint32_t bits, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = bits;
}

unsigned int gridFor(int64_t n) { return blocksFor(n, kThreads) < 65535u ? blocksFor(n, kThreads) : 65535u; }
}  // namespace

void binary_forward(float* out, const float* a, const float* b, int64_t n, int64_t nb, BinaryOp op,
                    Broadcast broadcast, Stream stream) {
  if (n == 0) return;
  binaryKernel<<<gridFor(n), kThreads, 0, stream>>>(out, a, b, n, nb, op, broadcast);
  checkLaunch("binary");
}

void affine_forward(float* out, const float* x, float alpha, float beta, int64_t n, Stream stream) {
  if (n == 0) return;
  affineKernel<<<gridFor(n), kThreads, 0, stream>>>(out, x, alpha, beta, n);
  checkLaunch("affine");
}

void axpy_forward(float* out, const float* x, const float* y, float alpha, int64_t n, Stream stream) {
  if (n == 0) return;
  axpyKernel<<<gridFor(n), kThreads, 0, stream>>>(out, x, y, alpha, n);
  checkLaunch("axpy");
}

void row_dot_forward(float* out, const float* a, const float* b, int64_t rows, int64_t cols, Stream stream) {
  if (rows == 0) return;
  rowDotKernel<<<static_cast<unsigned int>(rows), kThreads, 0, stream>>>(out, a, b, cols);
  checkLaunch("rowDot");
}

void fill32(void* out, uint32_t bits, int64_t n, Stream stream) {
  if (n == 0) return;
  fill32Kernel<<<gridFor(n), kThreads, 0, stream>>>(static_cast<uint32_t*>(out), bits, n);
  checkLaunch("fill");
}

void copy_bytes(void* dst, const void* src, int64_t bytes, Stream stream) {
  if (bytes == 0) return;
  const cudaError_t error = cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), cudaMemcpyDefault, stream);
  if (error != cudaSuccess) throw std::runtime_error(std::string("copy: ") + cudaGetErrorString(error));
}

}  // namespace selfe::cuda
