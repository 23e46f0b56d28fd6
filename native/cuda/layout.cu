// CUDA data movement (see selfe/kernels/layout.h): patch tokens and block copies along one axis, over 32-bit
// words (f32, i32) or 16-bit ones (bf16). One thread per element, index arithmetic in 64 bits.
#include "check.cuh"
#include "selfe/kernels/layout.h"

namespace selfe::cuda {

namespace {
constexpr int kThreads = 256;

// Token t = (b, gy, gx), vector element e = (py, px, c) <-> pixel (b, c, gy p + py, gx p + px).
__device__ __forceinline__ int64_t pixelOf(int64_t i, int64_t channels, int64_t height, int64_t width, int64_t patch) {
  const int64_t gridW = width / patch, count = (height / patch) * gridW, vector = patch * patch * channels;
  const int64_t token = i / vector, e = i % vector;
  const int64_t b = token / count, gy = (token % count) / gridW, gx = token % gridW;
  const int64_t py = e / (patch * channels), px = (e / channels) % patch, c = e % channels;
  return ((b * channels + c) * height + gy * patch + py) * width + gx * patch + px;
}

__global__ void patchifyKernel(float* tokens, const float* x, int64_t n, int64_t channels, int64_t height,
                               int64_t width, int64_t patch) {
  SELFE_GRID_STRIDE(i, n) tokens[i] = x[pixelOf(i, channels, height, width, patch)];
}

__global__ void unpatchifyKernel(float* x, const float* tokens, int64_t n, int64_t channels, int64_t height,
                                 int64_t width, int64_t patch) {
  SELFE_GRID_STRIDE(i, n) x[pixelOf(i, channels, height, width, patch)] = tokens[i];
}

// `blocks` runs of `run` words, run o from src + o * srcStride to dst + o * dstStride.
template <class Word>
__global__ void copyRuns(Word* dst, int64_t dstStride, const Word* src, int64_t srcStride, int64_t run, int64_t n) {
  SELFE_GRID_STRIDE(i, n) {
    const int64_t o = i / run, w = i % run;
    dst[o * dstStride + w] = src[o * srcStride + w];
  }
}

template <class Word>
void copyRunsLaunch(Word* dst, int64_t dstStride, const Word* src, int64_t srcStride, int64_t run, int64_t blocks,
                    Stream stream, const char* name) {
  const int64_t n = run * blocks;
  if (n == 0) return;
  copyRuns<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(dst, dstStride, src, srcStride, run, n);
  checkLaunch(name);
}
}  // namespace

void patchify_forward(float* tokens, const float* x, int64_t batch, int64_t channels, int64_t height, int64_t width,
                      int64_t patch, Stream stream) {
  const int64_t n = batch * channels * height * width;
  if (n == 0) return;
  patchifyKernel<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(tokens, x, n, channels, height, width, patch);
  checkLaunch("patchify");
}

void unpatchify_forward(float* x, const float* tokens, int64_t batch, int64_t channels, int64_t height, int64_t width,
                        int64_t patch, Stream stream) {
  const int64_t n = batch * channels * height * width;
  if (n == 0) return;
  unpatchifyKernel<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(x, tokens, n, channels, height, width, patch);
  checkLaunch("unpatchify");
}

void slice_axis(void* dst, const void* src, int64_t outer, int64_t src_axis, int64_t dst_axis, int64_t src_offset,
                int64_t inner, Stream stream) {
  copyRunsLaunch(static_cast<uint32_t*>(dst), dst_axis * inner, static_cast<const uint32_t*>(src) + src_offset * inner,
                 src_axis * inner, dst_axis * inner, outer, stream, "narrow");
}
void slice_axis(bf16* dst, const bf16* src, int64_t outer, int64_t src_axis, int64_t dst_axis, int64_t src_offset,
                int64_t inner, Stream stream) {
  copyRunsLaunch(reinterpret_cast<uint16_t*>(dst), dst_axis * inner,
                 reinterpret_cast<const uint16_t*>(src) + src_offset * inner, src_axis * inner, dst_axis * inner, outer,
                 stream, "narrow");
}

void insert_axis(void* dst, const void* src, int64_t outer, int64_t src_axis, int64_t dst_axis, int64_t dst_offset,
                 int64_t inner, Stream stream) {
  copyRunsLaunch(static_cast<uint32_t*>(dst) + dst_offset * inner, dst_axis * inner, static_cast<const uint32_t*>(src),
                 src_axis * inner, src_axis * inner, outer, stream, "insert");
}
void insert_axis(bf16* dst, const bf16* src, int64_t outer, int64_t src_axis, int64_t dst_axis, int64_t dst_offset,
                 int64_t inner, Stream stream) {
  copyRunsLaunch(reinterpret_cast<uint16_t*>(dst) + dst_offset * inner, dst_axis * inner,
                 reinterpret_cast<const uint16_t*>(src), src_axis * inner, src_axis * inner, outer, stream, "insert");
}

}  // namespace selfe::cuda
