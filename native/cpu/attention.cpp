// CPU multi-head softmax attention (see selfe/kernels/attention.h): a plain, exact reference. Scores and
// sums are kept in double; each output row belongs to one work item, so results do not depend on threads.
#include "selfe/kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "pool.h"

namespace selfe::cpu {

namespace {
// Rows of queries (or keys) per work item: enough work per item to amortise the split, small enough to
// spread a single (batch, head) across the pool.
constexpr int64_t kRowBlock = 16;

double dot(const float* a, const float* b, int64_t n) {
  // Eight independent partial sums let the compiler vectorise without reassociating one long sum.
  double lanes[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) lanes[l] += static_cast<double>(a[i + l]) * b[i + l];
  double acc = 0;
  for (; i < n; ++i) acc += static_cast<double>(a[i]) * b[i];
  for (int l = 0; l < 8; ++l) acc += lanes[l];
  return acc;
}

// Index arithmetic of the [B, L, H, D] layout for one (batch, head).
struct HeadView {
  int64_t heads, head_dim;
  int64_t rowStride() const { return heads * head_dim; }
  int64_t offset(int64_t b, int64_t len, int64_t h) const { return b * len * rowStride() + h * head_dim; }
};

bool attends(const int32_t* key_mask, int64_t b, int64_t lk, int64_t j) {
  return key_mask == nullptr || key_mask[b * lk + j] != 0;
}

// Work items are (batch, head, block of rows); item -> (b, h, first row, end row).
struct Blocks {
  int64_t heads, rows, perHead;
  Blocks(int64_t heads_, int64_t rows_) : heads(heads_), rows(rows_), perHead((rows_ + kRowBlock - 1) / kRowBlock) {}
  int64_t count(int64_t batch) const { return batch * heads * perHead; }
  void split(int64_t item, int64_t* b, int64_t* h, int64_t* begin, int64_t* end) const {
    const int64_t block = item % perHead, bh = item / perHead;
    *b = bh / heads;
    *h = bh % heads;
    *begin = block * kRowBlock;
    *end = std::min(rows, *begin + kRowBlock);
  }
};
}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* key_mask,
                       int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t head_dim, float scale,
                       Stream pool) {
  const HeadView view{heads, head_dim};
  const Blocks blocks(heads, lq);
  const int64_t items = blocks.count(batch);
  // Per-item scratch (scores, then the output accumulator), allocated here so the loop body cannot throw.
  const int64_t scratchPerItem = lk + head_dim;
  std::vector<double> scratch(static_cast<size_t>(items * scratchPerItem));
  pool.parallelFor(items, 1, [&](int64_t itemBegin, int64_t itemEnd) {
    for (int64_t item = itemBegin; item < itemEnd; ++item) {
      int64_t b, h, rowBegin, rowEnd;
      blocks.split(item, &b, &h, &rowBegin, &rowEnd);
      double* scores = scratch.data() + item * scratchPerItem;
      double* acc = scores + lk;
      const float* kh = k + view.offset(b, lk, h);
      const float* vh = v + view.offset(b, lk, h);
      for (int64_t i = rowBegin; i < rowEnd; ++i) {
        const float* qi = q + view.offset(b, lq, h) + i * view.rowStride();
        float* oi = out + view.offset(b, lq, h) + i * view.rowStride();
        double maxScore = -std::numeric_limits<double>::infinity();
        int64_t attended = 0;
        for (int64_t j = 0; j < lk; ++j) {
          if (!attends(key_mask, b, lk, j)) continue;
          scores[j] = scale * dot(qi, kh + j * view.rowStride(), head_dim);
          maxScore = std::max(maxScore, scores[j]);
          ++attended;
        }
        float* lseOut = lse + (b * heads + h) * lq + i;
        if (attended == 0) {
          std::fill(oi, oi + head_dim, 0.0f);
          *lseOut = -std::numeric_limits<float>::infinity();
          continue;
        }
        std::fill(acc, acc + head_dim, 0.0);
        double sum = 0;
        for (int64_t j = 0; j < lk; ++j) {
          if (!attends(key_mask, b, lk, j)) continue;
          const double p = std::exp(scores[j] - maxScore);
          sum += p;
          const float* vj = vh + j * view.rowStride();
          for (int64_t d = 0; d < head_dim; ++d) acc[d] += p * vj[d];
        }
        for (int64_t d = 0; d < head_dim; ++d) oi[d] = static_cast<float>(acc[d] / sum);
        *lseOut = static_cast<float>(maxScore + std::log(sum));
      }
    }
  });
}

// Writes (=) dq, dk, dv. Probabilities are recomputed from lse; one pass owns query rows (dq), a second owns
// key rows (dk, dv), so no row is accumulated by two threads.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const int32_t* key_mask, int64_t batch,
                        int64_t heads, int64_t lq, int64_t lk, int64_t head_dim, float scale, Stream pool) {
  const HeadView view{heads, head_dim};
  const double negInf = -std::numeric_limits<double>::infinity();
  // delta[b, h, i] = rowsum(dO_i * O_i), shared by both passes.
  std::vector<double> delta(static_cast<size_t>(batch * heads * lq));
  pool.parallelFor(batch * heads * lq, 256, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = r % lq, bh = r / lq, b = bh / heads, h = bh % heads;
      const int64_t at = view.offset(b, lq, h) + i * view.rowStride();
      delta[r] = dot(dout + at, out + at, head_dim);
    }
  });

  const Blocks queryBlocks(heads, lq);
  std::vector<double> queryScratch(static_cast<size_t>(queryBlocks.count(batch) * head_dim));
  pool.parallelFor(queryBlocks.count(batch), 1, [&](int64_t itemBegin, int64_t itemEnd) {
    for (int64_t item = itemBegin; item < itemEnd; ++item) {
      int64_t b, h, rowBegin, rowEnd;
      queryBlocks.split(item, &b, &h, &rowBegin, &rowEnd);
      double* acc = queryScratch.data() + item * head_dim;
      for (int64_t i = rowBegin; i < rowEnd; ++i) {
        const int64_t at = view.offset(b, lq, h) + i * view.rowStride();
        const double l = lse[(b * heads + h) * lq + i], di = delta[(b * heads + h) * lq + i];
        std::fill(acc, acc + head_dim, 0.0);
        for (int64_t j = 0; l != negInf && j < lk; ++j) {
          if (!attends(key_mask, b, lk, j)) continue;
          const float* kj = k + view.offset(b, lk, h) + j * view.rowStride();
          const float* vj = v + view.offset(b, lk, h) + j * view.rowStride();
          const double p = std::exp(scale * dot(q + at, kj, head_dim) - l);
          const double ds = p * (dot(dout + at, vj, head_dim) - di);
          for (int64_t d = 0; d < head_dim; ++d) acc[d] += ds * kj[d];
        }
        for (int64_t d = 0; d < head_dim; ++d) dq[at + d] = static_cast<float>(scale * acc[d]);
      }
    }
  });

  const Blocks keyBlocks(heads, lk);
  std::vector<double> keyScratch(static_cast<size_t>(keyBlocks.count(batch) * 2 * head_dim));
  pool.parallelFor(keyBlocks.count(batch), 1, [&](int64_t itemBegin, int64_t itemEnd) {
    for (int64_t item = itemBegin; item < itemEnd; ++item) {
      int64_t b, h, rowBegin, rowEnd;
      keyBlocks.split(item, &b, &h, &rowBegin, &rowEnd);
      double* dkAcc = keyScratch.data() + item * 2 * head_dim;
      double* dvAcc = dkAcc + head_dim;
      for (int64_t j = rowBegin; j < rowEnd; ++j) {
        const int64_t at = view.offset(b, lk, h) + j * view.rowStride();
        std::fill(dkAcc, dkAcc + 2 * head_dim, 0.0);
        const bool attended = attends(key_mask, b, lk, j);
        for (int64_t i = 0; attended && i < lq; ++i) {
          const double l = lse[(b * heads + h) * lq + i];
          if (l == negInf) continue;
          const int64_t qi = view.offset(b, lq, h) + i * view.rowStride();
          const double p = std::exp(scale * dot(q + qi, k + at, head_dim) - l);
          const double ds = p * (dot(dout + qi, v + at, head_dim) - delta[(b * heads + h) * lq + i]);
          for (int64_t d = 0; d < head_dim; ++d) {
            dvAcc[d] += p * dout[qi + d];
            dkAcc[d] += ds * q[qi + d];
          }
        }
        for (int64_t d = 0; d < head_dim; ++d) {
          dk[at + d] = static_cast<float>(scale * dkAcc[d]);
          dv[at + d] = static_cast<float>(dvAcc[d]);
        }
      }
    }
  });
}

}  // namespace selfe::cpu
