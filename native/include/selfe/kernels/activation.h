// GELU (tanh approximation, as DiT's MLP) and SiLU. Backward launchers write (=) dx.
#pragma once
#include <cstdint>

#include "selfe/dtype.h"
#include "selfe/stream.h"

#define SELFE_ACTIVATION_KERNELS                                                             \
  void gelu_forward(float* y, const float* x, int64_t n, Stream stream);                    \
  void gelu_backward(float* dx, const float* dy, const float* x, int64_t n, Stream stream); \
  void silu_forward(float* y, const float* x, int64_t n, Stream stream);                    \
  void silu_backward(float* dx, const float* dy, const float* x, int64_t n, Stream stream);

SELFE_DECLARE_FOR_BACKENDS(SELFE_ACTIVATION_KERNELS)

#define SELFE_ACTIVATION_BF16_KERNELS                                                        \
  void gelu_forward(bf16* y, const bf16* x, int64_t n, Stream stream);                      \
  void gelu_backward(bf16* dx, const bf16* dy, const bf16* x, int64_t n, Stream stream);    \
  void silu_forward(bf16* y, const bf16* x, int64_t n, Stream stream);                      \
  void silu_backward(bf16* dx, const bf16* dy, const bf16* x, int64_t n, Stream stream);

SELFE_DECLARE_FOR_CUDA(SELFE_ACTIVATION_BF16_KERNELS)
