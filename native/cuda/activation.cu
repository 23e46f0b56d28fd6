// CUDA GELU (tanh approximation) and SiLU (see selfe/kernels/activation.h), f32 and bf16 storage, fp32
// arithmetic, the same formulas as native/cpu/activation.cpp.
#include "check.cuh"
#include "selfe/kernels/activation.h"

namespace selfe::cuda {

namespace {
constexpr int kThreads = 256;
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;
// gelu'(x) is flat to float precision beyond |x| = 10.
constexpr float kGeluSaturation = 10.0f;

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// 0.5 x (1 + tanh u) evaluated as x sigmoid(2u), without the cancellation of 1 + tanh u for negative x.
__device__ __forceinline__ float geluArgument(float x) { return 2.0f * kSqrt2OverPi * (x + kCubic * x * x * x); }

template <class T>
__global__ void geluForward(T* y, const T* x, int64_t n) {
  SELFE_GRID_STRIDE(i, n) {
    const float v = toFloat(x[i]);
    y[i] = fromFloat<T>(v * sigmoid(geluArgument(v)));
  }
}

// dx = dy s (1 + 2 x (1 - s) u'), s = sigmoid(2u), 1 - s = e s with e = exp(-2u).
template <class T>
__global__ void geluBackward(T* dx, const T* dy, const T* x, int64_t n) {
  SELFE_GRID_STRIDE(i, n) {
    const float v = fminf(fmaxf(toFloat(x[i]), -kGeluSaturation), kGeluSaturation);
    const float e = expf(-geluArgument(v));
    const float s = 1.0f / (1.0f + e);
    const float slope = kSqrt2OverPi * (1.0f + 3.0f * kCubic * v * v);
    dx[i] = fromFloat<T>(toFloat(dy[i]) * s * (1.0f + 2.0f * v * (e * s) * slope));
  }
}

template <class T>
__global__ void siluForward(T* y, const T* x, int64_t n) {
  SELFE_GRID_STRIDE(i, n) {
    const float v = toFloat(x[i]);
    y[i] = fromFloat<T>(v * sigmoid(v));
  }
}

// dx = dy s (1 + x (1 - s)), s = sigmoid(x).
template <class T>
__global__ void siluBackward(T* dx, const T* dy, const T* x, int64_t n) {
  SELFE_GRID_STRIDE(i, n) {
    const float v = toFloat(x[i]);
    const float s = sigmoid(v);
    dx[i] = fromFloat<T>(toFloat(dy[i]) * s * (1.0f + v * (1.0f - s)));
  }
}

template <class T>
void forward(void (*kernel)(T*, const T*, int64_t), T* y, const T* x, int64_t n, Stream stream, const char* name) {
  if (n == 0) return;
  kernel<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(y, x, n);
  checkLaunch(name);
}

template <class T>
void backward(void (*kernel)(T*, const T*, const T*, int64_t), T* dx, const T* dy, const T* x, int64_t n,
              Stream stream, const char* name) {
  if (n == 0) return;
  kernel<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(dx, dy, x, n);
  checkLaunch(name);
}
}  // namespace

void gelu_forward(float* y, const float* x, int64_t n, Stream stream) {
  forward(geluForward<float>, y, x, n, stream, "gelu");
}
void gelu_forward(bf16* y, const bf16* x, int64_t n, Stream stream) {
  forward(geluForward<__nv_bfloat16>, dev(y), dev(x), n, stream, "gelu");
}

// Writes (=) dx.
void gelu_backward(float* dx, const float* dy, const float* x, int64_t n, Stream stream) {
  backward(geluBackward<float>, dx, dy, x, n, stream, "geluBackward");
}
void gelu_backward(bf16* dx, const bf16* dy, const bf16* x, int64_t n, Stream stream) {
  backward(geluBackward<__nv_bfloat16>, dev(dx), dev(dy), dev(x), n, stream, "geluBackward");
}

void silu_forward(float* y, const float* x, int64_t n, Stream stream) {
  forward(siluForward<float>, y, x, n, stream, "silu");
}
void silu_forward(bf16* y, const bf16* x, int64_t n, Stream stream) {
  forward(siluForward<__nv_bfloat16>, dev(y), dev(x), n, stream, "silu");
}

// Writes (=) dx.
void silu_backward(float* dx, const float* dy, const float* x, int64_t n, Stream stream) {
  backward(siluBackward<float>, dx, dy, x, n, stream, "siluBackward");
}
void silu_backward(bf16* dx, const bf16* dy, const bf16* x, int64_t n, Stream stream) {
  backward(siluBackward<__nv_bfloat16>, dev(dx), dev(dy), dev(x), n, stream, "siluBackward");
}

}  // namespace selfe::cuda
