// LayerNorm over the last dimension, with optional affine weight/bias (nullptr when absent).
// Forward saves per-row mean and reciprocal std for the backward. Backward writes (=) dx, dweight, dbias
// (dweight/dbias may be nullptr when there is no affine).
#pragma once
#include <cstdint>

#include "selfe/stream.h"

#define SELFE_LAYERNORM_KERNELS                                                                      \
  void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* weight,  \
                         const float* bias, int64_t rows, int64_t dim, float eps, Stream stream);   \
  void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x, \
                          const float* mean, const float* rstd, const float* weight, int64_t rows,  \
                          int64_t dim, Stream stream);

SELFE_DECLARE_FOR_BACKENDS(SELFE_LAYERNORM_KERNELS)
