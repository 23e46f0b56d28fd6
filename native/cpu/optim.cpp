// CPU multi-tensor optimizer kernels (see selfe/kernels/optim.h). Every list is walked as one flat range of
// elements, so many small tensors (biases, norms) cost one parallel loop rather than one each.
#include "selfe/kernels/optim.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "pool.h"

namespace selfe::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;
// Elements per partial sum of the global norm: fixed, so the sum's order (and result) ignores the pool size.
constexpr int64_t kNormBlock = 1 << 16;

// Calls body(t, from, to) for the pieces of tensors t that fall in each parallel chunk of the flat range.
template <class Body>
void forEachSpan(const int64_t* sizes, int32_t count, int64_t grain, Pool& pool, Body body) {
  std::vector<int64_t> starts(static_cast<size_t>(count) + 1, 0);
  for (int32_t t = 0; t < count; ++t) starts[t + 1] = starts[t] + sizes[t];
  pool.parallelFor(starts[count], grain, [&](int64_t begin, int64_t end) {
    int32_t t = static_cast<int32_t>(std::upper_bound(starts.begin(), starts.end(), begin) - starts.begin()) - 1;
    for (; t < count && starts[t] < end; ++t) {
      const int64_t from = std::max(begin, starts[t]) - starts[t], to = std::min(end, starts[t + 1]) - starts[t];
      if (from < to) body(t, from, to);
    }
  });
}

struct AdamWConstants {
  double b1, b2, bc1, bc2, lr, eps, wd;
};

AdamWConstants adamwConstants(const AdamWHyper& hyper) {
  const double b1 = hyper.beta1, b2 = hyper.beta2;
  return AdamWConstants{b1,
                        b2,
                        1.0 - std::pow(b1, static_cast<double>(hyper.step)),
                        1.0 - std::pow(b2, static_cast<double>(hyper.step)),
                        hyper.lr,
                        hyper.eps,
                        hyper.weight_decay};
}

// One element of AdamW, in double, each stored value rounded once. adamw_update and adamw_ema_update share
// these two functions so that their arithmetic (and the compiler's contraction of it) is the same.
inline void adamwElement(const AdamWConstants& c, float& p, float g, float& m, float& v) {
  const double gi = g;
  const double mi = c.b1 * m + (1.0 - c.b1) * gi;
  const double vi = c.b2 * v + (1.0 - c.b2) * gi * gi;
  m = static_cast<float>(mi);
  v = static_cast<float>(vi);
  p = static_cast<float>(p - c.lr * (mi / c.bc1 / (std::sqrt(vi / c.bc2) + c.eps) + c.wd * p));
}

inline void emaElement(double d, float& e, float p) { e = static_cast<float>(d * e + (1.0 - d) * p); }

}  // namespace

void adamw_update(const TensorList& params, const ConstTensorList& grads, const TensorList& m, const TensorList& v,
                  const AdamWHyper& hyper, Stream pool) {
  const AdamWConstants c = adamwConstants(hyper);
  forEachSpan(params.sizes, params.count, kGrain, pool, [&](int32_t t, int64_t from, int64_t to) {
    float* p = params.data[t];
    const float* g = grads.data[t];
    float* mt = m.data[t];
    float* vt = v.data[t];
    for (int64_t i = from; i < to; ++i) adamwElement(c, p[i], g[i], mt[i], vt[i]);
  });
}

void ema_update(const TensorList& ema, const ConstTensorList& params, float decay, Stream pool) {
  const double d = decay;
  forEachSpan(ema.sizes, ema.count, kGrain, pool, [&](int32_t t, int64_t from, int64_t to) {
    float* e = ema.data[t];
    const float* p = params.data[t];
    for (int64_t i = from; i < to; ++i) emaElement(d, e[i], p[i]);
  });
}

// The two element updates above, one after the other per element: bit-identical to the two calls.
void adamw_ema_update(const TensorList& params, const ConstTensorList& grads, const TensorList& m,
                      const TensorList& v, const TensorList& ema, const AdamWHyper& hyper, float decay, Stream pool) {
  const AdamWConstants c = adamwConstants(hyper);
  const double d = decay;
  forEachSpan(params.sizes, params.count, kGrain, pool, [&](int32_t t, int64_t from, int64_t to) {
    float* p = params.data[t];
    const float* g = grads.data[t];
    float* mt = m.data[t];
    float* vt = v.data[t];
    float* e = ema.data[t];
    for (int64_t i = from; i < to; ++i) {
      adamwElement(c, p[i], g[i], mt[i], vt[i]);
      emaElement(d, e[i], p[i]);
    }
  });
}

void global_norm(float* out, const ConstTensorList& xs, Stream pool) {
  // Partial sums over fixed blocks of each tensor, added up in list order on this thread.
  std::vector<int64_t> firstBlock(static_cast<size_t>(xs.count) + 1, 0);
  for (int32_t t = 0; t < xs.count; ++t)
    firstBlock[t + 1] = firstBlock[t] + (xs.sizes[t] + kNormBlock - 1) / kNormBlock;
  std::vector<double> partial(static_cast<size_t>(firstBlock[xs.count]));
  pool.parallelFor(firstBlock[xs.count], 1, [&](int64_t begin, int64_t end) {
    int32_t t = 0;
    for (int64_t block = begin; block < end; ++block) {
      while (firstBlock[t + 1] <= block) ++t;
      const int64_t from = (block - firstBlock[t]) * kNormBlock, to = std::min(xs.sizes[t], from + kNormBlock);
      double acc = 0;
      for (int64_t i = from; i < to; ++i) acc += static_cast<double>(xs.data[t][i]) * xs.data[t][i];
      partial[block] = acc;
    }
  });
  double total = 0;
  for (double s : partial) total += s;
  out[0] = static_cast<float>(std::sqrt(total));
}

void clip_by_norm(const TensorList& xs, const float* norm, float max_norm, Stream pool) {
  const double coef = static_cast<double>(max_norm) / (static_cast<double>(norm[0]) + 1e-6);
  // A NaN norm propagates into the tensors (as in PyTorch) instead of passing them through unclipped.
  if (coef >= 1.0) return;
  const float scale = static_cast<float>(coef);
  forEachSpan(xs.sizes, xs.count, kGrain, pool, [&](int32_t t, int64_t from, int64_t to) {
    float* x = xs.data[t];
    for (int64_t i = from; i < to; ++i) x[i] *= scale;
  });
}

}  // namespace selfe::cpu
