// CPU matrix products (see selfe/kernels/matmul.h) through OpenBLAS's cblas_sgemm. OpenBLAS threads each
// large product itself; the pool is idle meanwhile, since only the worker thread launches kernels.
#include "selfe/kernels/matmul.h"

#include <cblas.h>

#include <algorithm>

#include "pool.h"
#include "selfe/kernels/activation.h"
#include "selfe/kernels/elementwise.h"

namespace selfe::cpu {

namespace {
// OpenBLAS runs a product with at most this many multiply-adds on the calling thread alone (its
// GEMM_MULTITHREAD_THRESHOLD * SMP_THRESHOLD_MIN), so a batch of such products is split across the pool.
constexpr int64_t kSingleThreadedWork = int64_t{4} * 65536;

void rowMajorSgemm(float* c, const float* a, const float* b, int64_t m, int64_t n, int64_t k, bool trans_a,
                   bool trans_b, float alpha, float beta) {
  // Leading dimensions of row-major storage; BLAS rejects 0 even when the matrix is empty.
  const int64_t lda = std::max<int64_t>(1, trans_a ? m : k);
  const int64_t ldb = std::max<int64_t>(1, trans_b ? k : n);
  const int64_t ldc = std::max<int64_t>(1, n);
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}
}  // namespace

void gemm(float* c, const float* a, const float* b, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
          bool trans_b, int64_t stride_a, int64_t stride_b, int64_t stride_c, float alpha, float beta, Stream pool) {
  if (batch == 0 || m == 0 || n == 0) return;
  const auto problem = [&](int64_t i) {
    rowMajorSgemm(c + i * stride_c, a + i * stride_a, b + i * stride_b, m, n, k, trans_a, trans_b, alpha, beta);
  };
  if (batch > 1 && m * n * k <= kSingleThreadedWork) {
    // At least one threshold's worth of work per chunk, so tiny products do not wake the pool for nothing.
    const int64_t grain = kSingleThreadedWork / std::max<int64_t>(1, m * n * k);
    pool.parallelFor(batch, grain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) problem(i);
    });
    return;
  }
  for (int64_t i = 0; i < batch; ++i) problem(i);
}

void gemm_add(float* d, const float* base, const float* a, const float* b, int64_t m, int64_t n, int64_t k, bool trans_a,
              bool trans_b, float alpha, Stream pool) {
  // BLAS adds to C in place: d starts as a copy of the base.
  if (d != base) copy_bytes(d, base, m * n * static_cast<int64_t>(sizeof(float)), pool);
  gemm(d, a, b, 1, m, n, k, trans_a, trans_b, 0, 0, 0, alpha, 1.0f, pool);
}

void linear_forward(float* y, const float* x, const float* weight, const float* bias, int64_t rows,
                    int64_t in_features, int64_t out_features, Stream pool) {
  if (rows == 0 || out_features == 0) return;
  if (bias != nullptr) {
    pool.parallelFor(rows, std::max<int64_t>(1, (int64_t{1} << 15) / out_features), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) std::copy(bias, bias + out_features, y + r * out_features);
    });
  }
  rowMajorSgemm(y, x, weight, rows, out_features, in_features, false, true, 1.0f, bias != nullptr ? 1.0f : 0.0f);
}

// No GEMM epilogue on the CPU: the product, then GELU over it (the same numbers as linear then gelu).
void linear_gelu_forward(float* y, float* pre, const float* x, const float* weight, const float* bias, int64_t rows,
                         int64_t in_features, int64_t out_features, Stream pool) {
  linear_forward(pre, x, weight, bias, rows, in_features, out_features, pool);
  gelu_forward(y, pre, rows * out_features, pool);
}

}  // namespace selfe::cpu
