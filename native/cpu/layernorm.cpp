// CPU LayerNorm over the last dimension (see selfe/kernels/layernorm.h); row statistics in double.
#include "selfe/kernels/layernorm.h"

#include <algorithm>
#include <cmath>

#include "pool.h"

namespace selfe::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;
// Columns per accumulator block of the dweight/dbias pass: the block's double sums stay on the stack.
constexpr int64_t kColumnBlock = 64;
// At least a cache line of columns per thread, so threads never share one.
constexpr int64_t kColumnGrain = 16;

int64_t rowGrain(int64_t dim) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, dim)); }

// Sums term(j) over a row in double with four accumulators, so the adds pipeline instead of each waiting on
// the last; the order is fixed, so the result is too.
template <class Term>
double rowSum(int64_t dim, Term term) {
  double acc[4] = {0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 4 <= dim; j += 4)
    for (int k = 0; k < 4; ++k) acc[k] += term(j + k);
  for (; j < dim; ++j) acc[0] += term(j);
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}
}  // namespace

void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* weight,
                       const float* bias, int64_t rows, int64_t dim, float eps, Stream pool) {
  pool.parallelFor(rows, rowGrain(dim), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * dim;
      float* yr = y + r * dim;
      const double m = rowSum(dim, [xr](int64_t j) { return static_cast<double>(xr[j]); }) / static_cast<double>(dim);
      const double squares = rowSum(dim, [xr, m](int64_t j) {
        const double centred = xr[j] - m;
        return centred * centred;
      });
      const double s = 1.0 / std::sqrt(squares / static_cast<double>(dim) + static_cast<double>(eps));
      for (int64_t j = 0; j < dim; ++j) {
        double v = (xr[j] - m) * s;
        if (weight != nullptr) v *= weight[j];
        if (bias != nullptr) v += bias[j];
        yr[j] = static_cast<float>(v);
      }
      mean[r] = static_cast<float>(m);
      rstd[r] = static_cast<float>(s);
    }
  });
}

// Writes (=) dx, and dweight/dbias when they are not null. With g = dy * weight and xhat = (x - mean) rstd:
// dx = rstd (g - mean_j g - xhat mean_j(g xhat)); dweight = sum_rows dy xhat; dbias = sum_rows dy.
void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                        const float* mean, const float* rstd, const float* weight, int64_t rows, int64_t dim,
                        Stream pool) {
  pool.parallelFor(rows, rowGrain(dim), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * dim;
      const float* dyr = dy + r * dim;
      const double m = mean[r], s = rstd[r];
      const auto g = [dyr, weight](int64_t j) {
        return weight != nullptr ? static_cast<double>(dyr[j]) * weight[j] : static_cast<double>(dyr[j]);
      };
      const double meanG = rowSum(dim, g) / static_cast<double>(dim);
      const double meanGX = rowSum(dim, [&](int64_t j) { return g(j) * ((xr[j] - m) * s); }) / static_cast<double>(dim);
      float* dxr = dx + r * dim;
      for (int64_t j = 0; j < dim; ++j) dxr[j] = static_cast<float>(s * (g(j) - meanG - (xr[j] - m) * s * meanGX));
    }
  });
  if (dweight == nullptr && dbias == nullptr) return;
  // Each column is summed over the rows in order by one thread, so the result never depends on the split.
  pool.parallelFor(dim, kColumnGrain, [&](int64_t begin, int64_t end) {
    for (int64_t c0 = begin; c0 < end; c0 += kColumnBlock) {
      const int64_t width = std::min(kColumnBlock, end - c0);
      double accWeight[kColumnBlock] = {}, accBias[kColumnBlock] = {};
      for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * dim + c0;
        const float* dyr = dy + r * dim + c0;
        const double m = mean[r], s = rstd[r];
        for (int64_t j = 0; j < width; ++j) {
          accWeight[j] += dyr[j] * ((xr[j] - m) * s);
          accBias[j] += dyr[j];
        }
      }
      for (int64_t j = 0; j < width; ++j) {
        if (dweight != nullptr) dweight[c0 + j] = static_cast<float>(accWeight[j]);
        if (dbias != nullptr) dbias[c0 + j] = static_cast<float>(accBias[j]);
      }
    }
  });
}

}  // namespace selfe::cpu
