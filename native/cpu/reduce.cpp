// CPU reductions (see selfe/kernels/reduce.h), accumulated in double. Whole-tensor sums go through fixed
// blocks whose partials are added in order, so the result does not depend on the thread count.
#include "selfe/kernels/reduce.h"

#include <algorithm>
#include <vector>

#include "pool.h"

namespace selfe::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;
// Elements per partial sum of a whole-tensor reduction.
constexpr int64_t kBlock = 1 << 14;
// Columns per accumulator block of sum_axis; the block's double sums stay on the stack.
constexpr int64_t kColumnBlock = 64;

// Sums term(i) over [0, n) in double: per fixed block in parallel, then the blocks in order.
template <class Term>
double blockedSum(int64_t n, Pool& pool, Term term) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(blocks));
  pool.parallelFor(blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      double acc = 0;
      for (int64_t i = k * kBlock, stop = std::min(n, i + kBlock); i < stop; ++i) acc += term(i);
      partial[k] = acc;
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  return total;
}
}  // namespace

void sum_all(float* out, const float* x, int64_t n, Stream pool) {
  out[0] = static_cast<float>(blockedSum(n, pool, [x](int64_t i) { return static_cast<double>(x[i]); }));
}

void sum_axis(float* out, const float* x, int64_t outer, int64_t axis, int64_t inner, Stream pool) {
  const int64_t blocks = (inner + kColumnBlock - 1) / kColumnBlock;
  pool.parallelFor(outer * blocks, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, axis * kColumnBlock)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t item = begin; item < end; ++item) {
                       const int64_t o = item / blocks, c0 = (item % blocks) * kColumnBlock;
                       const int64_t width = std::min(kColumnBlock, inner - c0);
                       double acc[kColumnBlock] = {};
                       for (int64_t j = 0; j < axis; ++j) {
                         const float* row = x + (o * axis + j) * inner + c0;
                         for (int64_t c = 0; c < width; ++c) acc[c] += row[c];
                       }
                       for (int64_t c = 0; c < width; ++c) out[o * inner + c0 + c] = static_cast<float>(acc[c]);
                     }
                   });
}

void mse_all(float* out, const float* a, const float* b, int64_t n, Stream pool) {
  const double squares = blockedSum(n, pool, [a, b](int64_t i) {
    const double d = static_cast<double>(a[i]) - b[i];
    return d * d;
  });
  out[0] = static_cast<float>(squares / static_cast<double>(n));
}

void mse_rows(float* out, const float* a, const float* b, int64_t rows, int64_t cols, Stream pool) {
  pool.parallelFor(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, cols)), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      double acc = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double d = static_cast<double>(a[r * cols + c]) - b[r * cols + c];
        acc += d * d;
      }
      out[r] = static_cast<float>(acc / static_cast<double>(cols));
    }
  });
}

}  // namespace selfe::cpu
