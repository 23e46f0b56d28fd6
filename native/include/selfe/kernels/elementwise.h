// Elementwise arithmetic. All launchers write (=) their output; outputs may alias an input of the same size.
#pragma once
#include <cstdint>

#include "selfe/dtype.h"
#include "selfe/stream.h"

namespace selfe {
enum class BinaryOp : int32_t { Add = 0, Sub = 1, Mul = 2 };
// How the second operand b (nb elements) is repeated over a (n elements):
// Same: nb == n. Trailing: b[i % nb] (a bias; b's shape is a suffix of a's). Leading: b[i / (n / nb)]
// (one value per row; b's shape is a prefix of a's).
enum class Broadcast : int32_t { Same = 0, Trailing = 1, Leading = 2 };
}  // namespace selfe

#define SELFE_ELEMENTWISE_KERNELS                                                                         \
  void binary_forward(float* out, const float* a, const float* b, int64_t n, int64_t nb, BinaryOp op,   \
                      Broadcast broadcast, Stream stream);                                              \
  /* out = alpha * x + beta */                                                                          \
  void affine_forward(float* out, const float* x, float alpha, float beta, int64_t n, Stream stream);   \
  /* out = alpha * x + y */                                                                             \
  void axpy_forward(float* out, const float* x, const float* y, float alpha, int64_t n, Stream stream); \
  /* out[r] = sum_c a[r, c] * b[r, c] */                                                               \
  void row_dot_forward(float* out, const float* a, const float* b, int64_t rows, int64_t cols,         \
                       Stream stream);                                                                  \
  /* Sets n 32-bit words to one bit pattern (f32 or i32 values). */                                     \
  void fill32(void* out, uint32_t bits, int64_t n, Stream stream);                                      \
  void copy_bytes(void* dst, const void* src, int64_t bytes, Stream stream);                          \
  /* out[i] = in[i] as another element type: to bf16 rounds to nearest even; to i32 truncates toward */ \
  /* zero, saturating at the i32 range, NaN -> 0. */                                                    \
  void convert(void* out, DType out_type, const void* in, DType in_type, int64_t n, Stream stream);       \
  /* convert for `count` tensors of one type pair at once (outs[t] from ins[t], sizes[t] elements): on */  \
  /* CUDA one launch per few hundred tensors for f32 <-> bf16 (a model's weight copies). */                \
  void convert_all(void* const* outs, DType out_type, const void* const* ins, DType in_type,              \
                   const int64_t* sizes, int32_t count, Stream stream);

SELFE_DECLARE_FOR_BACKENDS(SELFE_ELEMENTWISE_KERNELS)

// bf16 storage, fp32 arithmetic: b and y are bf16 like the output.
#define SELFE_ELEMENTWISE_BF16_KERNELS                                                                    \
  void binary_forward(bf16* out, const bf16* a, const bf16* b, int64_t n, int64_t nb, BinaryOp op,      \
                      Broadcast broadcast, Stream stream);                                              \
  void affine_forward(bf16* out, const bf16* x, float alpha, float beta, int64_t n, Stream stream);     \
  void axpy_forward(bf16* out, const bf16* x, const bf16* y, float alpha, int64_t n, Stream stream);    \
  /* Sets n 16-bit words to one bit pattern. */                                                         \
  void fill16(void* out, uint16_t bits, int64_t n, Stream stream);

SELFE_DECLARE_FOR_CUDA(SELFE_ELEMENTWISE_BF16_KERNELS)

// An f32 a and output with a bf16 b: a bf16 branch's output added into an f32 residual stream (add only; the
// binding refuses the mix for sub and mul).
#define SELFE_ELEMENTWISE_MIXED_KERNELS                                                                   \
  void binary_forward(float* out, const float* a, const bf16* b, int64_t n, int64_t nb, BinaryOp op,    \
                      Broadcast broadcast, Stream stream);

SELFE_DECLARE_FOR_CUDA(SELFE_ELEMENTWISE_MIXED_KERNELS)
