// CUDA LayerNorm over the last dimension, plain or fused with adaLN's modulation (see
// selfe/kernels/layernorm.h): one warp per row, two passes over the row for the statistics (mean, then
// centred squares), fp32 throughout; f32 or bf16 storage. Both run the same row kernels, differing only in
// the affine map applied to the normalised row. Both may also read f32 and write bf16 (the input of a bf16
// branch in mixed precision), their backwards then taking a bf16 dy.
#include "check.cuh"
#include "column_sum.cuh"
#include "selfe/kernels/layernorm.h"

namespace selfe::cuda {

namespace {
constexpr int kWarps = 4;

// y = xhat weight[j] + bias[j], either optional (LayerNorm's own affine).
template <class T>
struct PlainAffine {
  const T* weight;
  const T* bias;
  __device__ float scaleAt(int64_t, int64_t j) const { return weight != nullptr ? toFloat(weight[j]) : 1.0f; }
  __device__ float shiftAt(int64_t, int64_t j) const { return bias != nullptr ? toFloat(bias[j]) : 0.0f; }
};

// y = xhat (1 + scale[b]) + shift[b] for row r of sample b = r / tokens (adaLN's modulation).
template <class T>
struct Modulation {
  const T* shift;
  const T* scale;
  int64_t tokens, dim;
  __device__ float scaleAt(int64_t r, int64_t j) const { return 1.0f + toFloat(scale[(r / tokens) * dim + j]); }
  __device__ float shiftAt(int64_t r, int64_t j) const { return toFloat(shift[(r / tokens) * dim + j]); }
};

// x and its statistics' storage T, y's Y (T, or bf16 for a bf16 branch).
template <class T, class Y, class Affine>
__global__ void normalise(Y* y, float* mean, float* rstd, const T* x, Affine affine, int64_t rows, int64_t dim,
                          float eps) {
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
  Y* yr = y + row * dim;
  for (int64_t j = lane; j < dim; j += 32)
    yr[j] = fromFloat<Y>((toFloat(xr[j]) - m) * s * affine.scaleAt(row, j) + affine.shiftAt(row, j));
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = s;
  }
}

// dx = base + rstd (g - mean_j g - xhat mean_j(g xhat)) (base nullable), g = dy * (the affine's scale),
// xhat = (x - mean) rstd. dy's storage D is x's T, or bf16 for a bf16 output.
template <class T, class D, class Affine>
__global__ void normaliseBackwardInput(T* dx, const T* base, const D* dy, const T* x, const float* mean,
                                       const float* rstd, Affine affine, int64_t rows, int64_t dim) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= rows) return;
  const T* xr = x + row * dim;
  const D* dyr = dy + row * dim;
  const float m = mean[row], s = rstd[row];
  float sumG = 0.0f, sumGX = 0.0f;
  for (int64_t j = lane; j < dim; j += 32) {
    const float g = toFloat(dyr[j]) * affine.scaleAt(row, j);
    sumG += g;
    sumGX += g * ((toFloat(xr[j]) - m) * s);
  }
  const float meanG = warpSum(sumG) / static_cast<float>(dim);
  const float meanGX = warpSum(sumGX) / static_cast<float>(dim);
  T* dxr = dx + row * dim;
  const T* baser = base != nullptr ? base + row * dim : nullptr;
  for (int64_t j = lane; j < dim; j += 32) {
    const float g = toFloat(dyr[j]) * affine.scaleAt(row, j);
    const float gradient = s * (g - meanG - (toFloat(xr[j]) - m) * s * meanGX);
    dxr[j] = fromFloat<T>(baser != nullptr ? toFloat(baser[j]) + gradient : gradient);
  }
}

// Column terms over the tokens of sample o: sum dy xhat (dweight, or dscale) and sum dy (dbias, or dshift).
template <class T, class D>
struct AffineGradTerms {
  const D* dy;
  const T* x;
  const float* mean;
  const float* rstd;
  int64_t tokens, dim;
  __device__ void operator()(int64_t o, int64_t l, int64_t c, float* terms) const {
    const int64_t r = o * tokens + l;
    const float g = toFloat(dy[r * dim + c]);
    terms[0] = g * ((toFloat(x[r * dim + c]) - mean[r]) * rstd[r]);
    terms[1] = g;
  }
};

// Stores sum s of sample o, column c into (s == 0 ? first : second)[o, c] where that output exists.
template <class T>
struct AffineGradStore {
  T* first;
  T* second;
  int64_t dim;
  __device__ void operator()(int64_t o, int64_t c, int s, float sum) const {
    T* target = s == 0 ? first : second;
    if (target != nullptr) target[o * dim + c] = fromFloat<T>(sum);
  }
};

template <class T, class Y, class Affine>
void forward(Y* y, float* mean, float* rstd, const T* x, Affine affine, int64_t rows, int64_t dim, float eps,
             Stream stream, const char* name) {
  if (rows == 0) return;
  normalise<<<blocksFor(rows, kWarps), kWarps * 32, 0, stream>>>(y, mean, rstd, x, affine, rows, dim, eps);
  checkLaunch(name);
}

// dx (base + the gradient, base nullable), then first = sum dy xhat and second = sum dy per sample (batch
// samples of `tokens` rows each).
template <class T, class D, class Affine>
void backward(T* dx, const T* base, T* first, T* second, const D* dy, const T* x, const float* mean, const float* rstd,
              Affine affine, int64_t batch, int64_t tokens, int64_t dim, Stream stream, const char* name) {
  const int64_t rows = batch * tokens;
  if (rows > 0) {
    normaliseBackwardInput<<<blocksFor(rows, kWarps), kWarps * 32, 0, stream>>>(dx, base, dy, x, mean, rstd, affine, rows,
                                                                                 dim);
    checkLaunch(name);
  }
  if (first == nullptr && second == nullptr) return;
  columnSums<2>(AffineGradTerms<T, D>{dy, x, mean, rstd, tokens, dim}, AffineGradStore<T>{first, second, dim}, batch,
                tokens, dim, stream, name);
}
}  // namespace

void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* weight, const float* bias,
                       int64_t rows, int64_t dim, float eps, Stream stream) {
  forward(y, mean, rstd, x, PlainAffine<float>{weight, bias}, rows, dim, eps, stream, "layerNorm");
}
void layernorm_forward(bf16* y, float* mean, float* rstd, const bf16* x, const bf16* weight, const bf16* bias,
                       int64_t rows, int64_t dim, float eps, Stream stream) {
  forward(dev(y), mean, rstd, dev(x), PlainAffine<__nv_bfloat16>{dev(weight), dev(bias)}, rows, dim, eps, stream,
          "layerNorm");
}

// Writes (=) dx (dx_base + the gradient where dx_base is not null), and dweight/dbias when they are not null.
void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x, const float* mean,
                        const float* rstd, const float* weight, const float* dx_base, int64_t rows, int64_t dim,
                        Stream stream) {
  backward(dx, dx_base, dweight, dbias, dy, x, mean, rstd, PlainAffine<float>{weight, nullptr}, 1, rows, dim, stream,
           "layerNormBackward");
}
void layernorm_backward(bf16* dx, bf16* dweight, bf16* dbias, const bf16* dy, const bf16* x, const float* mean,
                        const float* rstd, const bf16* weight, const bf16* dx_base, int64_t rows, int64_t dim,
                        Stream stream) {
  backward(dev(dx), dev(dx_base), dev(dweight), dev(dbias), dev(dy), dev(x), mean, rstd,
           PlainAffine<__nv_bfloat16>{dev(weight), nullptr}, 1, rows, dim, stream, "layerNormBackward");
}

void layernorm_modulate_forward(float* y, float* mean, float* rstd, const float* x, const float* shift,
                                const float* scale, int64_t batch, int64_t tokens, int64_t dim, float eps,
                                Stream stream) {
  forward(y, mean, rstd, x, Modulation<float>{shift, scale, tokens, dim}, batch * tokens, dim, eps, stream,
          "layerNormModulate");
}
void layernorm_modulate_forward(bf16* y, float* mean, float* rstd, const bf16* x, const bf16* shift, const bf16* scale,
                                int64_t batch, int64_t tokens, int64_t dim, float eps, Stream stream) {
  forward(dev(y), mean, rstd, dev(x), Modulation<__nv_bfloat16>{dev(shift), dev(scale), tokens, dim}, batch * tokens, dim,
          eps, stream, "layerNormModulate");
}

// Writes (=) dx (dx_base + the gradient where dx_base is not null), dshift[b] = sum_tokens dy and
// dscale[b] = sum_tokens dy xhat.
void layernorm_modulate_backward(float* dx, float* dshift, float* dscale, const float* dy, const float* x,
                                 const float* mean, const float* rstd, const float* scale, const float* dx_base,
                                 int64_t batch, int64_t tokens, int64_t dim, Stream stream) {
  backward(dx, dx_base, dscale, dshift, dy, x, mean, rstd, Modulation<float>{nullptr, scale, tokens, dim}, batch, tokens,
           dim, stream, "layerNormModulateBackward");
}
void layernorm_modulate_backward(bf16* dx, bf16* dshift, bf16* dscale, const bf16* dy, const bf16* x, const float* mean,
                                 const float* rstd, const bf16* scale, const bf16* dx_base, int64_t batch, int64_t tokens,
                                 int64_t dim, Stream stream) {
  backward(dev(dx), dev(dx_base), dev(dscale), dev(dshift), dev(dy), dev(x), mean, rstd,
           Modulation<__nv_bfloat16>{nullptr, dev(scale), tokens, dim}, batch, tokens, dim, stream,
           "layerNormModulateBackward");
}

// f32 x and affine parameters with a bf16 y (the input of a bf16 branch), and the backward from its bf16 dy.
void layernorm_forward(bf16* y, float* mean, float* rstd, const float* x, const float* weight, const float* bias,
                       int64_t rows, int64_t dim, float eps, Stream stream) {
  forward(dev(y), mean, rstd, x, PlainAffine<float>{weight, bias}, rows, dim, eps, stream, "layerNorm");
}
void layernorm_backward(float* dx, float* dweight, float* dbias, const bf16* dy, const float* x, const float* mean,
                        const float* rstd, const float* weight, const float* dx_base, int64_t rows, int64_t dim,
                        Stream stream) {
  backward(dx, dx_base, dweight, dbias, dev(dy), x, mean, rstd, PlainAffine<float>{weight, nullptr}, 1, rows, dim, stream,
           "layerNormBackward");
}

// f32 x, shift and scale with a bf16 y (the input of a bf16 branch): the LayerNorm, the modulation and the
// cast in one pass.
void layernorm_modulate_forward(bf16* y, float* mean, float* rstd, const float* x, const float* shift,
                                const float* scale, int64_t batch, int64_t tokens, int64_t dim, float eps,
                                Stream stream) {
  forward(dev(y), mean, rstd, x, Modulation<float>{shift, scale, tokens, dim}, batch * tokens, dim, eps, stream,
          "layerNormModulate");
}
void layernorm_modulate_backward(float* dx, float* dshift, float* dscale, const bf16* dy, const float* x,
                                 const float* mean, const float* rstd, const float* scale, const float* dx_base,
                                 int64_t batch, int64_t tokens, int64_t dim, Stream stream) {
  backward(dx, dx_base, dscale, dshift, dev(dy), x, mean, rstd, Modulation<float>{nullptr, scale, tokens, dim}, batch,
           tokens, dim, stream, "layerNormModulateBackward");
}

}  // namespace selfe::cuda
