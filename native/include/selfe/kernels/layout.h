// Data movement: images to patch tokens and back, and copies of blocks along one axis (concat, narrow and
// their backwards). Tensors are viewed as [outer, axis, inner]. 32-bit elements (f32 or i32).
//   patchify:   x [B, C, H, W] -> tokens [B, (H/p)(W/p), p*p*C], token order row-major over the patch
//               grid, vector order (py, px, c) as DiT's unpatchify expects.
//   slice_axis: dst[o, j, i] = src[o, src_offset + j, i] for j < dst_axis      (writes all of dst)
//   insert_axis: dst[o, dst_offset + j, i] = src[o, j, i] for j < src_axis    (writes that block only)
#pragma once
#include <cstdint>

#include "selfe/dtype.h"
#include "selfe/stream.h"

#define SELFE_LAYOUT_KERNELS                                                                              \
  void patchify_forward(float* tokens, const float* x, int64_t batch, int64_t channels, int64_t height,  \
                        int64_t width, int64_t patch, Stream stream);                                    \
  void unpatchify_forward(float* x, const float* tokens, int64_t batch, int64_t channels, int64_t height, \
                          int64_t width, int64_t patch, Stream stream);                                  \
  void slice_axis(void* dst, const void* src, int64_t outer, int64_t src_axis, int64_t dst_axis,         \
                  int64_t src_offset, int64_t inner, Stream stream);                                     \
  void insert_axis(void* dst, const void* src, int64_t outer, int64_t src_axis, int64_t dst_axis,        \
                   int64_t dst_offset, int64_t inner, Stream stream);

SELFE_DECLARE_FOR_BACKENDS(SELFE_LAYOUT_KERNELS)

// The same block copies over 16-bit elements (bf16 tensors).
#define SELFE_LAYOUT_BF16_KERNELS                                                                         \
  void slice_axis(bf16* dst, const bf16* src, int64_t outer, int64_t src_axis, int64_t dst_axis,         \
                  int64_t src_offset, int64_t inner, Stream stream);                                     \
  void insert_axis(bf16* dst, const bf16* src, int64_t outer, int64_t src_axis, int64_t dst_axis,        \
                   int64_t dst_offset, int64_t inner, Stream stream);

SELFE_DECLARE_FOR_CUDA(SELFE_LAYOUT_BF16_KERNELS)
