// Score combinations of the Self-E critique and of guided sampling (spec: shared/spec/self-e.md).
// Rows are samples: every tensor is [rows, cols]; t and lambda are [rows]. No backward (used under sg).
//   classifier_score_direction: d = g_uncond - g_cond
//   fake_score_mix:             d = k (g_uncond - g_cond) + (1 - k) (g_fake - g_cond)
//   energy_preserving_renorm:   out = x |ref| / |x| per row (0 where |x| = 0)
//   velocity_target:            out = (x_t - x_renorm) / t
//   self_evaluation_target:     all of the above fused: d from (g_uncond, g_cond, g_fake nullable -> k = 1),
//                               x_self = x0_hat - d, x_tar = x0 + lambda x_self,
//                               x_renorm = x_tar |x0| / |x_tar|, out = (x_t - x_renorm) / t
//   cfg_combine:                v = v_u + omega (v_c - v_u)
//   energy_preserving_cfg:      v = cfg_combine(...) rescaled per row to |v_c|
#pragma once
#include <cstdint>

#include "selfe/stream.h"

#define SELFE_SCORE_KERNELS                                                                               \
  void classifier_score_direction(float* out, const float* g_uncond, const float* g_cond, int64_t n,     \
                                  Stream stream);                                                        \
  void fake_score_mix(float* out, const float* g_uncond, const float* g_cond, const float* g_fake,       \
                      float k, int64_t n, Stream stream);                                                \
  void energy_preserving_renorm(float* out, const float* x, const float* ref, int64_t rows, int64_t cols, \
                                Stream stream);                                                          \
  void velocity_target(float* out, const float* x_t, const float* x_renorm, const float* t, int64_t rows, \
                       int64_t cols, Stream stream);                                                     \
  void self_evaluation_target(float* out, const float* x0, const float* x0_hat, const float* x_t,        \
                              const float* t, const float* lambda, const float* g_uncond,                \
                              const float* g_cond, const float* g_fake, float k, int64_t rows,           \
                              int64_t cols, Stream stream);                                              \
  void cfg_combine(float* out, const float* v_uncond, const float* v_cond, float omega, int64_t n,       \
                   Stream stream);                                                                       \
  void energy_preserving_cfg(float* out, const float* v_uncond, const float* v_cond, float omega,        \
                             int64_t rows, int64_t cols, Stream stream);

SELFE_DECLARE_FOR_BACKENDS(SELFE_SCORE_KERNELS)
