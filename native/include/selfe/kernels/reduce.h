// Reductions (accumulated in double on the CPU, fp32 pairwise/tree on the GPU). All write (=).
//   sum_all:  out[0] = sum x                      mse_all:  out[0] = mean (a - b)^2
//   sum_axis: out[o, i] = sum_j x[o, j, i]        mse_rows: out[r] = mean_c (a[r, c] - b[r, c])^2
#pragma once
#include <cstdint>

#include "selfe/dtype.h"
#include "selfe/stream.h"

#define SELFE_REDUCE_KERNELS                                                                            \
  void sum_all(float* out, const float* x, int64_t n, Stream stream);                                  \
  void sum_axis(float* out, const float* x, int64_t outer, int64_t axis, int64_t inner, Stream stream); \
  void mse_all(float* out, const float* a, const float* b, int64_t n, Stream stream);                  \
  void mse_rows(float* out, const float* a, const float* b, int64_t rows, int64_t cols, Stream stream);

SELFE_DECLARE_FOR_BACKENDS(SELFE_REDUCE_KERNELS)

// sum_axis over bf16 (a bias gradient in mixed precision): fp32 sums, bf16 result.
#define SELFE_REDUCE_BF16_KERNELS \
  void sum_axis(bf16* out, const bf16* x, int64_t outer, int64_t axis, int64_t inner, Stream stream);

SELFE_DECLARE_FOR_CUDA(SELFE_REDUCE_BF16_KERNELS)
