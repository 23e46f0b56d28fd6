// CPU embedding kernels (see selfe/kernels/embedding.h).
#include "selfe/kernels/embedding.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "pool.h"

namespace selfe::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;
// Columns per accumulator block of the backward; the block's double sums stay on the stack.
constexpr int64_t kColumnBlock = 64;

int64_t rowGrain(int64_t dim) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, dim)); }

// Ids live on the device, so they are checked here, before any loop: the worker turns the throw into a
// sticky device error instead of an out-of-bounds read.
void checkIds(const int32_t* ids, int64_t count, int64_t vocab) {
  for (int64_t i = 0; i < count; ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      throw std::out_of_range("id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                              " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
}
}  // namespace

void embedding_forward(float* out, const float* table, const int32_t* ids, int64_t count, int64_t vocab,
                       int64_t dim, Stream pool) {
  checkIds(ids, count, vocab);
  pool.parallelFor(count, rowGrain(dim), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      std::memcpy(out + i * dim, table + static_cast<int64_t>(ids[i]) * dim, static_cast<size_t>(dim) * sizeof(float));
  });
}

// Writes (=) dtable: every row is the sum of the dout rows whose id names it (zero when none does). The
// positions are grouped by id first (a counting sort), so each vocabulary row is summed by one thread, in
// position order, in double: deterministic, with no racy scatter.
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t count, int64_t vocab,
                        int64_t dim, Stream pool) {
  checkIds(ids, count, vocab);
  std::vector<int64_t> start(static_cast<size_t>(vocab) + 1, 0);
  for (int64_t i = 0; i < count; ++i) ++start[static_cast<size_t>(ids[i]) + 1];
  for (int64_t v = 0; v < vocab; ++v) start[v + 1] += start[v];
  std::vector<int64_t> positions(static_cast<size_t>(count));
  std::vector<int64_t> next(start.begin(), start.end() - 1);
  for (int64_t i = 0; i < count; ++i) positions[next[ids[i]]++] = i;

  pool.parallelFor(vocab, rowGrain(dim), [&](int64_t begin, int64_t end) {
    for (int64_t v = begin; v < end; ++v)
      for (int64_t c0 = 0; c0 < dim; c0 += kColumnBlock) {
        const int64_t width = std::min(kColumnBlock, dim - c0);
        double acc[kColumnBlock] = {};
        for (int64_t k = start[v]; k < start[v + 1]; ++k) {
          const float* row = dout + positions[k] * dim + c0;
          for (int64_t j = 0; j < width; ++j) acc[j] += row[j];
        }
        float* target = dtable + v * dim + c0;
        for (int64_t j = 0; j < width; ++j) target[j] = static_cast<float>(acc[j]);
      }
  });
}

void timestep_embedding(float* out, const float* t, int64_t batch, int64_t dim, float max_period, Stream pool) {
  const int64_t half = dim / 2;
  const double logPeriod = std::log(static_cast<double>(max_period));
  pool.parallelFor(batch, rowGrain(dim), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      float* row = out + b * dim;
      for (int64_t j = 0; j < half; ++j) {
        const double angle = t[b] * std::exp(-logPeriod * static_cast<double>(j) / static_cast<double>(half));
        row[j] = static_cast<float>(std::cos(angle));
        row[half + j] = static_cast<float>(std::sin(angle));
      }
      if (dim % 2 == 1) row[dim - 1] = 0.0f;
    }
  });
}

}  // namespace selfe::cpu
