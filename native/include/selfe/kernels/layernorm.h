// LayerNorm over the last dimension, with optional affine weight/bias (nullptr when absent).
// Forward saves per-row mean and reciprocal std for the backward. Backward writes (=) dx, dweight, dbias
// (dweight/dbias may be nullptr when there is no affine); dx = dx_base + the gradient where dx_base is not
// nullptr (autograd's accumulation of a tensor's gradients, without an add of its own).
//
// layernorm_modulate is adaLN's LayerNorm (no affine) fused with its modulation, per sample b of
// [batch, tokens, dim]: y = xhat (1 + scale[b]) + shift[b], xhat = (x - mean) rstd; one pass over x
// instead of LayerNorm's output written and read back. Its backward writes (=) dx, dshift[b] =
// sum_tokens dy and dscale[b] = sum_tokens dy xhat.
#pragma once
#include <cstdint>

#include "selfe/dtype.h"
#include "selfe/stream.h"

#define SELFE_LAYERNORM_KERNELS                                                                      \
  void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* weight,  \
                         const float* bias, int64_t rows, int64_t dim, float eps, Stream stream);   \
  void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x, \
                          const float* mean, const float* rstd, const float* weight,                \
                          const float* dx_base, int64_t rows, int64_t dim, Stream stream);          \
  void layernorm_modulate_forward(float* y, float* mean, float* rstd, const float* x, const float* shift, \
                                  const float* scale, int64_t batch, int64_t tokens, int64_t dim,        \
                                  float eps, Stream stream);                                             \
  void layernorm_modulate_backward(float* dx, float* dshift, float* dscale, const float* dy,             \
                                   const float* x, const float* mean, const float* rstd,                 \
                                   const float* scale, const float* dx_base, int64_t batch,              \
                                   int64_t tokens, int64_t dim, Stream stream);

SELFE_DECLARE_FOR_BACKENDS(SELFE_LAYERNORM_KERNELS)

// bf16 activations and affine parameters; the saved statistics stay f32.
#define SELFE_LAYERNORM_BF16_KERNELS                                                                \
  void layernorm_forward(bf16* y, float* mean, float* rstd, const bf16* x, const bf16* weight,     \
                         const bf16* bias, int64_t rows, int64_t dim, float eps, Stream stream);   \
  void layernorm_backward(bf16* dx, bf16* dweight, bf16* dbias, const bf16* dy, const bf16* x,     \
                          const float* mean, const float* rstd, const bf16* weight,                \
                          const bf16* dx_base, int64_t rows, int64_t dim, Stream stream);          \
  void layernorm_modulate_forward(bf16* y, float* mean, float* rstd, const bf16* x, const bf16* shift,  \
                                  const bf16* scale, int64_t batch, int64_t tokens, int64_t dim,       \
                                  float eps, Stream stream);                                           \
  void layernorm_modulate_backward(bf16* dx, bf16* dshift, bf16* dscale, const bf16* dy, const bf16* x, \
                                   const float* mean, const float* rstd, const bf16* scale,            \
                                   const bf16* dx_base, int64_t batch, int64_t tokens, int64_t dim,    \
                                   Stream stream);

SELFE_DECLARE_FOR_CUDA(SELFE_LAYERNORM_BF16_KERNELS)

// LayerNorm (affine parameters f32) and LayerNorm + modulate from f32 x (and shift, scale, statistics, dx) to a
// bf16 y, and their backwards from a bf16 dy: the input of a bf16 branch in mixed precision, without a cast of
// its own.
#define SELFE_LAYERNORM_MIXED_KERNELS                                                                       \
  void layernorm_forward(bf16* y, float* mean, float* rstd, const float* x, const float* weight,           \
                         const float* bias, int64_t rows, int64_t dim, float eps, Stream stream);          \
  void layernorm_backward(float* dx, float* dweight, float* dbias, const bf16* dy, const float* x,         \
                          const float* mean, const float* rstd, const float* weight,                       \
                          const float* dx_base, int64_t rows, int64_t dim, Stream stream);                 \
  void layernorm_modulate_forward(bf16* y, float* mean, float* rstd, const float* x, const float* shift,  \
                                  const float* scale, int64_t batch, int64_t tokens, int64_t dim,        \
                                  float eps, Stream stream);                                             \
  void layernorm_modulate_backward(float* dx, float* dshift, float* dscale, const bf16* dy,              \
                                   const float* x, const float* mean, const float* rstd,                 \
                                   const float* scale, const float* dx_base, int64_t batch,              \
                                   int64_t tokens, int64_t dim, Stream stream);

SELFE_DECLARE_FOR_CUDA(SELFE_LAYERNORM_MIXED_KERNELS)
