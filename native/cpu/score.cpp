// CPU score combinations of the Self-E critique and of guided sampling (see selfe/kernels/score.h). Row norms
// are summed in double over fixed column blocks combined in a fixed order, so results do not depend on threads.
#include "selfe/kernels/score.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "pool.h"

namespace selfe::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;
// Columns per partial sum of a row norm: a few rows of many columns still spread across the pool.
constexpr int64_t kNormBlock = 1 << 13;

// factor[r] = |row r of ref| / |row r of x| (`whenZero` where |x| = 0). x and ref are functions of the flat
// index, since the fused target's vectors exist only on the fly.
template <class X, class Ref>
std::vector<double> renormFactors(int64_t rows, int64_t cols, X x, Ref ref, double whenZero, Pool& pool) {
  const int64_t blocks = std::max<int64_t>(1, (cols + kNormBlock - 1) / kNormBlock);
  std::vector<double> partial(static_cast<size_t>(rows * blocks * 2));
  pool.parallelFor(rows * blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r = item / blocks, from = (item % blocks) * kNormBlock, to = std::min(cols, from + kNormBlock);
      double xx = 0, rr = 0;
      for (int64_t i = r * cols + from; i < r * cols + to; ++i) {
        const double xi = x(i), ri = ref(i);
        xx += xi * xi;
        rr += ri * ri;
      }
      partial[2 * item] = xx;
      partial[2 * item + 1] = rr;
    }
  });
  std::vector<double> factor(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double xx = 0, rr = 0;
    for (int64_t block = 0; block < blocks; ++block) {
      xx += partial[2 * (r * blocks + block)];
      rr += partial[2 * (r * blocks + block) + 1];
    }
    factor[r] = xx == 0 ? whenZero : std::sqrt(rr) / std::sqrt(xx);
  }
  return factor;
}

// out[i] = value(i) * factor[row of i].
template <class Value>
void scaleRows(float* out, const std::vector<double>& factor, int64_t rows, int64_t cols, Value value, Pool& pool) {
  pool.parallelFor(rows * cols, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = static_cast<float>(value(i) * factor[i / cols]);
  });
}
}  // namespace

void classifier_score_direction(float* out, const float* g_uncond, const float* g_cond, int64_t n, Stream pool) {
  pool.parallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = g_uncond[i] - g_cond[i];
  });
}

void fake_score_mix(float* out, const float* g_uncond, const float* g_cond, const float* g_fake, float k, int64_t n,
                    Stream pool) {
  pool.parallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = k * (g_uncond[i] - g_cond[i]) + (1.0f - k) * (g_fake[i] - g_cond[i]);
  });
}

void energy_preserving_renorm(float* out, const float* x, const float* ref, int64_t rows, int64_t cols, Stream pool) {
  if (rows * cols == 0) return;
  const auto value = [&](int64_t i) { return static_cast<double>(x[i]); };
  const auto reference = [&](int64_t i) { return static_cast<double>(ref[i]); };
  scaleRows(out, renormFactors(rows, cols, value, reference, 0.0, pool), rows, cols, value, pool);
}

void velocity_target(float* out, const float* x_t, const float* x_renorm, const float* t, int64_t rows, int64_t cols,
                     Stream pool) {
  pool.parallelFor(rows * cols, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = (x_t[i] - x_renorm[i]) / t[i / cols];
  });
}

void self_evaluation_target(float* out, const float* x0, const float* x0_hat, const float* x_t, const float* t,
                            const float* lambda, const float* g_uncond, const float* g_cond, const float* g_fake,
                            float k, int64_t rows, int64_t cols, Stream pool) {
  if (rows * cols == 0) return;
  // x_tar = x0 + lambda (x0_hat - d), evaluated in double in both passes so the norm matches the output.
  const auto target = [&](int64_t i) {
    const double cond = g_cond[i];
    const double d = g_fake == nullptr ? g_uncond[i] - cond
                                       : k * (g_uncond[i] - cond) + (1.0 - k) * (g_fake[i] - cond);
    return static_cast<double>(x0[i]) + static_cast<double>(lambda[i / cols]) * (x0_hat[i] - d);
  };
  const auto reference = [&](int64_t i) { return static_cast<double>(x0[i]); };
  const std::vector<double> factor = renormFactors(rows, cols, target, reference, 0.0, pool);
  pool.parallelFor(rows * cols, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      out[i] = static_cast<float>((x_t[i] - target(i) * factor[i / cols]) / t[i / cols]);
  });
}

void cfg_combine(float* out, const float* v_uncond, const float* v_cond, float omega, int64_t n, Stream pool) {
  pool.parallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = v_uncond[i] + omega * (v_cond[i] - v_uncond[i]);
  });
}

void energy_preserving_cfg(float* out, const float* v_uncond, const float* v_cond, float omega, int64_t rows,
                           int64_t cols, Stream pool) {
  if (rows * cols == 0) return;
  const auto guided = [&](int64_t i) {
    const double u = v_uncond[i];
    return u + static_cast<double>(omega) * (v_cond[i] - u);
  };
  const auto reference = [&](int64_t i) { return static_cast<double>(v_cond[i]); };
  // A zero guided velocity stays as it is rather than dividing by its zero norm.
  scaleRows(out, renormFactors(rows, cols, guided, reference, 1.0, pool), rows, cols, guided, pool);
}

}  // namespace selfe::cpu
