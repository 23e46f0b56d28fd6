// adaLN-Zero pieces of the DiT block, per sample b of [batch, tokens, dim]:
//   modulate:        y = x * (1 + scale[b]) + shift[b]
//   gated residual:  out = x + gate[b] * branch
// Backward launchers write (=) all their outputs; the residual's dx is dout itself and needs no kernel.
#pragma once
#include <cstdint>

#include "selfe/dtype.h"
#include "selfe/stream.h"

#define SELFE_ADALN_KERNELS                                                                               \
  void modulate_forward(float* y, const float* x, const float* shift, const float* scale, int64_t batch, \
                        int64_t tokens, int64_t dim, Stream stream);                                     \
  void modulate_backward(float* dx, float* dshift, float* dscale, const float* dy, const float* x,       \
                         const float* scale, int64_t batch, int64_t tokens, int64_t dim, Stream stream); \
  void gated_residual_forward(float* out, const float* x, const float* gate, const float* branch,        \
                              int64_t batch, int64_t tokens, int64_t dim, Stream stream);                \
  void gated_residual_backward(float* dgate, float* dbranch, const float* dout, const float* gate,       \
                               const float* branch, int64_t batch, int64_t tokens, int64_t dim,          \
                               Stream stream);

SELFE_DECLARE_FOR_BACKENDS(SELFE_ADALN_KERNELS)

#define SELFE_ADALN_BF16_KERNELS                                                                          \
  void modulate_forward(bf16* y, const bf16* x, const bf16* shift, const bf16* scale, int64_t batch,     \
                        int64_t tokens, int64_t dim, Stream stream);                                     \
  void modulate_backward(bf16* dx, bf16* dshift, bf16* dscale, const bf16* dy, const bf16* x,            \
                         const bf16* scale, int64_t batch, int64_t tokens, int64_t dim, Stream stream);  \
  void gated_residual_forward(bf16* out, const bf16* x, const bf16* gate, const bf16* branch,            \
                              int64_t batch, int64_t tokens, int64_t dim, Stream stream);                \
  void gated_residual_backward(bf16* dgate, bf16* dbranch, const bf16* dout, const bf16* gate,           \
                               const bf16* branch, int64_t batch, int64_t tokens, int64_t dim,           \
                               Stream stream);

SELFE_DECLARE_FOR_CUDA(SELFE_ADALN_BF16_KERNELS)

// The gated residual of an f32 stream (x, gate, out and their gradients) and a bf16 branch (mixed precision:
// the branch's cast back to f32, and its gradient's to bf16, folded in).
#define SELFE_ADALN_MIXED_KERNELS                                                                          \
  void gated_residual_forward(float* out, const float* x, const float* gate, const bf16* branch,         \
                              int64_t batch, int64_t tokens, int64_t dim, Stream stream);                \
  void gated_residual_backward(float* dgate, bf16* dbranch, const float* dout, const float* gate,        \
                               const bf16* branch, int64_t batch, int64_t tokens, int64_t dim,           \
                               Stream stream);

SELFE_DECLARE_FOR_CUDA(SELFE_ADALN_MIXED_KERNELS)
