// Multi-tensor optimizer kernels, in place over lists of fp32 tensors (count entries of sizes[i] each).
//   adamw_update: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
//                 p -= lr (m / bc1 / (sqrt(v / bc2) + eps) + wd p), bc_i = 1 - b_i^step (decoupled decay).
//   ema_update:   e = decay e + (1 - decay) p
//   adamw_ema_update: adamw_update, then ema_update toward the updated p, in one pass over memory (per element
//                 reads p, g, m, v, e and writes p, m, v, e); the same arithmetic as the two in sequence
//   global_norm:  out[0] = sqrt(sum_i |x_i|^2)                                     (writes)
//   clip_by_norm: x_i *= min(1, max_norm / (norm[0] + 1e-6)), norm read on the stream (no host sync)
#pragma once
#include <cstdint>

#include "selfe/stream.h"

namespace selfe {
struct TensorList {
  float* const* data;
  const int64_t* sizes;
  int32_t count;
};
struct ConstTensorList {
  const float* const* data;
  const int64_t* sizes;
  int32_t count;
};
struct AdamWHyper {
  float lr, beta1, beta2, eps, weight_decay;
  int64_t step;
};
}  // namespace selfe

#define SELFE_OPTIM_KERNELS                                                                                \
  void adamw_update(const TensorList& params, const ConstTensorList& grads, const TensorList& m,          \
                    const TensorList& v, const AdamWHyper& hyper, Stream stream);                         \
  void ema_update(const TensorList& ema, const ConstTensorList& params, float decay, Stream stream);      \
  void adamw_ema_update(const TensorList& params, const ConstTensorList& grads, const TensorList& m,      \
                        const TensorList& v, const TensorList& ema, const AdamWHyper& hyper, float decay,  \
                        Stream stream);                                                                   \
  void global_norm(float* out, const ConstTensorList& xs, Stream stream);                                 \
  void clip_by_norm(const TensorList& xs, const float* norm, float max_norm, Stream stream);

SELFE_DECLARE_FOR_BACKENDS(SELFE_OPTIM_KERNELS)
