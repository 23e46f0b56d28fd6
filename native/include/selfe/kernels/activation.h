// GELU (tanh approximation, as DiT's MLP) and SiLU. Backward launchers write (=) dx.
#pragma once
#include <cstdint>

#include "selfe/stream.h"

#define SELFE_ACTIVATION_KERNELS                                                             \
  void gelu_forward(float* y, const float* x, int64_t n, Stream stream);                    \
  void gelu_backward(float* dx, const float* dy, const float* x, int64_t n, Stream stream); \
  void silu_forward(float* y, const float* x, int64_t n, Stream stream);                    \
  void silu_backward(float* dx, const float* dy, const float* x, int64_t n, Stream stream);

SELFE_DECLARE_FOR_BACKENDS(SELFE_ACTIVATION_KERNELS)
