// CPU data-movement kernels (see selfe/kernels/layout.h).
#include "selfe/kernels/layout.h"

#include <algorithm>
#include <cstring>

#include "pool.h"

namespace selfe::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;

// Copies `blocks` runs of `run` 32-bit words, run o from src + o * srcStride to dst + o * dstStride. The
// split is over words, not runs, so one long run (outer = 1) still spreads over every thread.
void copyRuns(uint32_t* dst, int64_t dstStride, const uint32_t* src, int64_t srcStride, int64_t run,
              int64_t blocks, Pool& pool) {
  if (run == 0) return;
  pool.parallelFor(blocks * run, kGrain, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
    while (i < end) {
      const int64_t o = i / run, within = i % run;
      const int64_t count = std::min(run - within, end - i);
      std::memcpy(dst + o * dstStride + within, src + o * srcStride + within, static_cast<size_t>(count) * 4);
      i += count;
    }
  });
}
}  // namespace

void patchify_forward(float* tokens, const float* x, int64_t batch, int64_t channels, int64_t height,
                      int64_t width, int64_t patch, Stream pool) {
  const int64_t gridW = width / patch, count = (height / patch) * gridW, vector = patch * patch * channels;
  pool.parallelFor(batch * count, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, vector)), [&](int64_t begin, int64_t end) {
    for (int64_t token = begin; token < end; ++token) {
      const int64_t b = token / count, gy = (token % count) / gridW, gx = token % gridW;
      float* out = tokens + token * vector;
      for (int64_t py = 0; py < patch; ++py)
        for (int64_t px = 0; px < patch; ++px) {
          const float* in = x + ((b * channels * height) + gy * patch + py) * width + gx * patch + px;
          float* v = out + (py * patch + px) * channels;
          for (int64_t c = 0; c < channels; ++c) v[c] = in[c * height * width];
        }
    }
  });
}

void unpatchify_forward(float* x, const float* tokens, int64_t batch, int64_t channels, int64_t height,
                        int64_t width, int64_t patch, Stream pool) {
  const int64_t gridW = width / patch, count = (height / patch) * gridW, vector = patch * patch * channels;
  pool.parallelFor(batch * count, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, vector)), [&](int64_t begin, int64_t end) {
    for (int64_t token = begin; token < end; ++token) {
      const int64_t b = token / count, gy = (token % count) / gridW, gx = token % gridW;
      const float* in = tokens + token * vector;
      for (int64_t py = 0; py < patch; ++py)
        for (int64_t px = 0; px < patch; ++px) {
          float* out = x + ((b * channels * height) + gy * patch + py) * width + gx * patch + px;
          const float* v = in + (py * patch + px) * channels;
          for (int64_t c = 0; c < channels; ++c) out[c * height * width] = v[c];
        }
    }
  });
}

void slice_axis(void* dst, const void* src, int64_t outer, int64_t src_axis, int64_t dst_axis, int64_t src_offset,
                int64_t inner, Stream pool) {
  copyRuns(static_cast<uint32_t*>(dst), dst_axis * inner, static_cast<const uint32_t*>(src) + src_offset * inner,
           src_axis * inner, dst_axis * inner, outer, pool);
}

void insert_axis(void* dst, const void* src, int64_t outer, int64_t src_axis, int64_t dst_axis, int64_t dst_offset,
                 int64_t inner, Stream pool) {
  copyRuns(static_cast<uint32_t*>(dst) + dst_offset * inner, dst_axis * inner, static_cast<const uint32_t*>(src),
           src_axis * inner, src_axis * inner, outer, pool);
}

}  // namespace selfe::cpu
