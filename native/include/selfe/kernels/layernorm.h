// LayerNorm over the last dimension, with optional affine weight/bias (nullptr when absent).
// Forward saves per-row mean and reciprocal std for the backward. Backward writes (=) dx, dweight, dbias
// (dweight/dbias may be nullptr when there is no affine).
#pragma once
#include <cstdint>

#include "selfe/dtype.h"
#include "selfe/stream.h"

#define SELFE_LAYERNORM_KERNELS                                                                      \
  void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* weight,  \
                         const float* bias, int64_t rows, int64_t dim, float eps, Stream stream);   \
  void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x, \
                          const float* mean, const float* rstd, const float* weight, int64_t rows,  \
                          int64_t dim, Stream stream);

SELFE_DECLARE_FOR_BACKENDS(SELFE_LAYERNORM_KERNELS)

// bf16 activations and affine parameters; the saved statistics stay f32.
#define SELFE_LAYERNORM_BF16_KERNELS                                                                \
  void layernorm_forward(bf16* y, float* mean, float* rstd, const bf16* x, const bf16* weight,     \
                         const bf16* bias, int64_t rows, int64_t dim, float eps, Stream stream);   \
  void layernorm_backward(bf16* dx, bf16* dweight, bf16* dbias, const bf16* dy, const bf16* x,     \
                          const float* mean, const float* rstd, const bf16* weight, int64_t rows,  \
                          int64_t dim, Stream stream);

SELFE_DECLARE_FOR_CUDA(SELFE_LAYERNORM_BF16_KERNELS)
