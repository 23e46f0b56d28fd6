// CUDA LayerNorm over the last dimension (see selfe/kernels/layernorm.h): one warp per row, two passes over
// the row for the statistics (mean, then centred squares), fp32 throughout; f32 or bf16 storage.
#include "check.cuh"
#include "column_sum.cuh"
#include "selfe/kernels/layernorm.h"

namespace selfe::cuda {

namespace {
constexpr int kWarps = 4;

template <class T>
__global__ void layernormForward(T* y, float* mean, float* rstd, const T* x, const T* weight, const T* bias,
                                 int64_t rows, int64_t dim, float eps) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= rows) return;
  const T* xr = x + row * dim;
  float sum = 0.0f;
  for (int64_t j = lane; j < dim; j += 32) sum += toFloat(xr[j]);
  const float m = warpSum(sum) / static_cast<float>(dim);
  float squares = 0.0f;
  for (int64_t j = lane; j < dim; j += 32) {
    const float centred = toFloat(xr[j]) - m;
    squares += centred * centred;
  }
  const float s = 1.0f / sqrtf(warpSum(squares) / static_cast<float>(dim) + eps);
  T* yr = y + row * dim;
  for (int64_t j = lane; j < dim; j += 32) {
    float v = (toFloat(xr[j]) - m) * s;
    if (weight != nullptr) v *= toFloat(weight[j]);
    if (bias != nullptr) v += toFloat(bias[j]);
    yr[j] = fromFloat<T>(v);
  }
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = s;
  }
}

// dx = rstd (g - mean_j g - xhat mean_j(g xhat)), g = dy * weight, xhat = (x - mean) rstd.
template <class T>
__global__ void layernormBackwardInput(T* dx, const T* dy, const T* x, const float* mean, const float* rstd,
                                       const T* weight, int64_t rows, int64_t dim) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= rows) return;
  const T* xr = x + row * dim;
  const T* dyr = dy + row * dim;
  const float m = mean[row], s = rstd[row];
  float sumG = 0.0f, sumGX = 0.0f;
  for (int64_t j = lane; j < dim; j += 32) {
    const float g = weight != nullptr ? toFloat(dyr[j]) * toFloat(weight[j]) : toFloat(dyr[j]);
    sumG += g;
    sumGX += g * ((toFloat(xr[j]) - m) * s);
  }
  const float meanG = warpSum(sumG) / static_cast<float>(dim);
  const float meanGX = warpSum(sumGX) / static_cast<float>(dim);
  T* dxr = dx + row * dim;
  for (int64_t j = lane; j < dim; j += 32) {
    const float g = weight != nullptr ? toFloat(dyr[j]) * toFloat(weight[j]) : toFloat(dyr[j]);
    dxr[j] = fromFloat<T>(s * (g - meanG - (toFloat(xr[j]) - m) * s * meanGX));
  }
}

// Column terms of dweight = sum_rows dy xhat and dbias = sum_rows dy.
template <class T>
struct AffineGradTerms {
  const T* dy;
  const T* x;
  const float* mean;
  const float* rstd;
  int64_t dim;
  __device__ void operator()(int64_t, int64_t r, int64_t c, float* terms) const {
    const float g = toFloat(dy[r * dim + c]);
    terms[0] = g * ((toFloat(x[r * dim + c]) - mean[r]) * rstd[r]);
    terms[1] = g;
  }
};

template <class T>
struct AffineGradStore {
  T* dweight;
  T* dbias;
  __device__ void operator()(int64_t, int64_t c, int s, float sum) const {
    T* target = s == 0 ? dweight : dbias;
    if (target != nullptr) target[c] = fromFloat<T>(sum);
  }
};

template <class T>
void forward(T* y, float* mean, float* rstd, const T* x, const T* weight, const T* bias, int64_t rows, int64_t dim,
             float eps, Stream stream) {
  if (rows == 0) return;
  layernormForward<<<blocksFor(rows, kWarps), kWarps * 32, 0, stream>>>(y, mean, rstd, x, weight, bias, rows, dim, eps);
  checkLaunch("layerNorm");
}

template <class T>
void backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const float* mean, const float* rstd,
              const T* weight, int64_t rows, int64_t dim, Stream stream) {
  if (rows > 0) {
    layernormBackwardInput<<<blocksFor(rows, kWarps), kWarps * 32, 0, stream>>>(dx, dy, x, mean, rstd, weight, rows, dim);
    checkLaunch("layerNormBackward");
  }
  if (dweight == nullptr && dbias == nullptr) return;
  columnSums<2>(AffineGradTerms<T>{dy, x, mean, rstd, dim}, AffineGradStore<T>{dweight, dbias}, 1, rows, dim, stream,
                "layerNormBackward");
}
}  // namespace

void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* weight, const float* bias,
                       int64_t rows, int64_t dim, float eps, Stream stream) {
  forward(y, mean, rstd, x, weight, bias, rows, dim, eps, stream);
}
void layernorm_forward(bf16* y, float* mean, float* rstd, const bf16* x, const bf16* weight, const bf16* bias,
                       int64_t rows, int64_t dim, float eps, Stream stream) {
  forward(dev(y), mean, rstd, dev(x), dev(weight), dev(bias), rows, dim, eps, stream);
}

// Writes (=) dx, and dweight/dbias when they are not null.
void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x, const float* mean,
                        const float* rstd, const float* weight, int64_t rows, int64_t dim, Stream stream) {
  backward(dx, dweight, dbias, dy, x, mean, rstd, weight, rows, dim, stream);
}
void layernorm_backward(bf16* dx, bf16* dweight, bf16* dbias, const bf16* dy, const bf16* x, const float* mean,
                        const float* rstd, const bf16* weight, int64_t rows, int64_t dim, Stream stream) {
  backward(dev(dx), dev(dweight), dev(dbias), dev(dy), dev(x), mean, rstd, dev(weight), rows, dim, stream);
}

}  // namespace selfe::cuda
