// Token embedding lookup and the sinusoidal time embedding.
//   embedding: out[i, :] = table[ids[i], :]. An id outside [0, vocab) is a device error naming the op.
//   embedding_backward writes (=) dtable: zero, then scatter-add dout rows by id.
//   timestep_embedding: half = dim / 2, f_j = exp(-ln(max_period) j / half),
//       out[b, j] = cos(t_b f_j), out[b, half + j] = sin(t_b f_j), a last odd column is 0 (DiT's order).
#pragma once
#include <cstdint>

#include "selfe/stream.h"

#define SELFE_EMBEDDING_KERNELS                                                                          \
  void embedding_forward(float* out, const float* table, const int32_t* ids, int64_t count,             \
                         int64_t vocab, int64_t dim, Stream stream);                                    \
  void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t count,          \
                          int64_t vocab, int64_t dim, Stream stream);                                   \
  void timestep_embedding(float* out, const float* t, int64_t batch, int64_t dim, float max_period,     \
                          Stream stream);

SELFE_DECLARE_FOR_BACKENDS(SELFE_EMBEDDING_KERNELS)
