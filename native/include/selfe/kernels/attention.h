// Multi-head softmax attention. Layout (FlashAttention's): q [B, Lq, H, D], k and v [B, Lk, H, D],
// out [B, Lq, H, D], lse [B, H, Lq] (natural-log log-sum-exp of the scaled, masked scores, saved for the
// backward). key_mask (nullable) is int32 [B, Lk]: nonzero = attend. A query whose keys are all masked
// gets out = 0 and lse = -inf, and receives and passes no gradient. Backward writes (=) dq, dk, dv.
#pragma once
#include <cstdint>

#include "selfe/dtype.h"
#include "selfe/stream.h"

#define SELFE_ATTENTION_KERNELS                                                                            \
  void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,         \
                         const int32_t* key_mask, int64_t batch, int64_t heads, int64_t lq, int64_t lk,  \
                         int64_t head_dim, float scale, Stream stream);                                   \
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,            \
                          const float* k, const float* v, const float* out, const float* lse,            \
                          const int32_t* key_mask, int64_t batch, int64_t heads, int64_t lq, int64_t lk, \
                          int64_t head_dim, float scale, Stream stream);

SELFE_DECLARE_FOR_BACKENDS(SELFE_ATTENTION_KERNELS)

// bf16 q, k, v, out and gradients; lse stays f32.
#define SELFE_ATTENTION_BF16_KERNELS                                                                       \
  void attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,             \
                         const int32_t* key_mask, int64_t batch, int64_t heads, int64_t lq, int64_t lk,  \
                         int64_t head_dim, float scale, Stream stream);                                   \
  void attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,  \
                          const bf16* v, const bf16* out, const float* lse, const int32_t* key_mask,     \
                          int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t head_dim,        \
                          float scale, Stream stream);

SELFE_DECLARE_FOR_CUDA(SELFE_ATTENTION_BF16_KERNELS)
