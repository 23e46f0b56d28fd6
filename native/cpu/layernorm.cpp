// CPU LayerNorm over the last dimension, plain or fused with adaLN's modulation (see
// selfe/kernels/layernorm.h); row statistics in double. Both run one row kernel, differing only in the
// affine map applied to the normalised row.
#include "selfe/kernels/layernorm.h"

#include <algorithm>
#include <cmath>

#include "pool.h"

namespace selfe::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;
// Columns per accumulator block of the column-sum pass: the block's double sums stay on the stack.
constexpr int64_t kColumnBlock = 64;

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

// y = xhat weight[j] + bias[j], either optional (LayerNorm's own affine).
struct PlainAffine {
  const float* weight;
  const float* bias;
  double scaleAt(int64_t, int64_t j) const { return weight != nullptr ? weight[j] : 1.0; }
  double shiftAt(int64_t, int64_t j) const { return bias != nullptr ? bias[j] : 0.0; }
};

// y = xhat (1 + scale[b]) + shift[b] for row r of sample b = r / tokens (adaLN's modulation).
struct Modulation {
  const float* shift;
  const float* scale;
  int64_t tokens, dim;
  double scaleAt(int64_t r, int64_t j) const { return 1.0 + static_cast<double>(scale[(r / tokens) * dim + j]); }
  double shiftAt(int64_t r, int64_t j) const { return shift[(r / tokens) * dim + j]; }
};

template <class Affine>
void normalise(float* y, float* mean, float* rstd, const float* x, Affine affine, int64_t rows, int64_t dim, float eps,
               Pool& pool) {
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
      for (int64_t j = 0; j < dim; ++j) yr[j] = static_cast<float>((xr[j] - m) * s * affine.scaleAt(r, j) + affine.shiftAt(r, j));
      mean[r] = static_cast<float>(m);
      rstd[r] = static_cast<float>(s);
    }
  });
}

// Writes (=) dx = base + the gradient (base nullable). With g = dy * (the affine's scale) and
// xhat = (x - mean) rstd, the gradient is rstd (g - mean_j g - xhat mean_j(g xhat)).
template <class Affine>
void normaliseBackwardInput(float* dx, const float* base, const float* dy, const float* x, const float* mean,
                            const float* rstd, Affine affine, int64_t rows, int64_t dim, Pool& pool) {
  pool.parallelFor(rows, rowGrain(dim), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * dim;
      const float* dyr = dy + r * dim;
      const double m = mean[r], s = rstd[r];
      const auto g = [&](int64_t j) { return static_cast<double>(dyr[j]) * affine.scaleAt(r, j); };
      const double meanG = rowSum(dim, g) / static_cast<double>(dim);
      const double meanGX = rowSum(dim, [&](int64_t j) { return g(j) * ((xr[j] - m) * s); }) / static_cast<double>(dim);
      float* dxr = dx + r * dim;
      const float* baser = base != nullptr ? base + r * dim : nullptr;
      for (int64_t j = 0; j < dim; ++j) {
        const double gradient = s * (g(j) - meanG - (xr[j] - m) * s * meanGX);
        dxr[j] = static_cast<float>(baser != nullptr ? baser[j] + gradient : gradient);
      }
    }
  });
}

// For every sample b and column c: first[b, c] = sum_tokens dy xhat, second[b, c] = sum_tokens dy (either
// may be null). Each column is summed over its tokens in order by one thread, whatever the split.
void affineGrads(float* first, float* second, const float* dy, const float* x, const float* mean, const float* rstd,
                 int64_t batch, int64_t tokens, int64_t dim, Pool& pool) {
  if (first == nullptr && second == nullptr) return;
  const int64_t blocks = (dim + kColumnBlock - 1) / kColumnBlock;
  pool.parallelFor(batch * blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / blocks, c0 = (item % blocks) * kColumnBlock;
      const int64_t width = std::min(kColumnBlock, dim - c0);
      double accScale[kColumnBlock] = {}, accShift[kColumnBlock] = {};
      for (int64_t r = b * tokens; r < (b + 1) * tokens; ++r) {
        const float* xr = x + r * dim + c0;
        const float* dyr = dy + r * dim + c0;
        const double m = mean[r], s = rstd[r];
        for (int64_t j = 0; j < width; ++j) {
          accScale[j] += dyr[j] * ((xr[j] - m) * s);
          accShift[j] += dyr[j];
        }
      }
      for (int64_t j = 0; j < width; ++j) {
        if (first != nullptr) first[b * dim + c0 + j] = static_cast<float>(accScale[j]);
        if (second != nullptr) second[b * dim + c0 + j] = static_cast<float>(accShift[j]);
      }
    }
  });
}
}  // namespace

void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* weight,
                       const float* bias, int64_t rows, int64_t dim, float eps, Stream pool) {
  normalise(y, mean, rstd, x, PlainAffine{weight, bias}, rows, dim, eps, pool);
}

// Writes (=) dx (dx_base + the gradient where dx_base is not null), and dweight = sum_rows dy xhat,
// dbias = sum_rows dy when they are not null.
void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                        const float* mean, const float* rstd, const float* weight, const float* dx_base, int64_t rows,
                        int64_t dim, Stream pool) {
  normaliseBackwardInput(dx, dx_base, dy, x, mean, rstd, PlainAffine{weight, nullptr}, rows, dim, pool);
  affineGrads(dweight, dbias, dy, x, mean, rstd, 1, rows, dim, pool);
}

void layernorm_modulate_forward(float* y, float* mean, float* rstd, const float* x, const float* shift,
                                const float* scale, int64_t batch, int64_t tokens, int64_t dim, float eps,
                                Stream pool) {
  normalise(y, mean, rstd, x, Modulation{shift, scale, tokens, dim}, batch * tokens, dim, eps, pool);
}

void layernorm_modulate_backward(float* dx, float* dshift, float* dscale, const float* dy, const float* x,
                                 const float* mean, const float* rstd, const float* scale, const float* dx_base,
                                 int64_t batch, int64_t tokens, int64_t dim, Stream pool) {
  normaliseBackwardInput(dx, dx_base, dy, x, mean, rstd, Modulation{nullptr, scale, tokens, dim}, batch * tokens, dim,
                         pool);
  affineGrads(dscale, dshift, dy, x, mean, rstd, batch, tokens, dim, pool);
}

}  // namespace selfe::cpu
