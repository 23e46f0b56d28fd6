// CPU adaLN-Zero kernels (see selfe/kernels/adaln.h). The backwards own one (sample, column block) each and
// sum over tokens in order, so the per-sample reductions are deterministic and need no scratch.
#include "selfe/kernels/adaln.h"

#include <algorithm>

#include "pool.h"

namespace selfe::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;
// Columns per (sample, column block) work item; its double sums stay on the stack.
constexpr int64_t kColumnBlock = 64;

int64_t rowGrain(int64_t dim) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, dim)); }

// Calls body(b, c0, width) for every sample b and block of columns [c0, c0 + width), in parallel.
template <class Body>
void forEachColumnBlock(int64_t batch, int64_t dim, Pool& pool, Body&& body) {
  const int64_t blocks = (dim + kColumnBlock - 1) / kColumnBlock;
  pool.parallelFor(batch * blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / blocks, c0 = (item % blocks) * kColumnBlock;
      body(b, c0, std::min(kColumnBlock, dim - c0));
    }
  });
}
}  // namespace

void modulate_forward(float* y, const float* x, const float* shift, const float* scale, int64_t batch,
                      int64_t tokens, int64_t dim, Stream pool) {
  pool.parallelFor(batch * tokens, rowGrain(dim), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / tokens;
      const float* xr = x + row * dim;
      const float* sh = shift + b * dim;
      const float* sc = scale + b * dim;
      float* yr = y + row * dim;
      for (int64_t j = 0; j < dim; ++j) yr[j] = xr[j] * (1.0f + sc[j]) + sh[j];
    }
  });
}

// Writes (=) dx = dy (1 + scale), dshift[b] = sum_tokens dy, dscale[b] = sum_tokens dy x.
void modulate_backward(float* dx, float* dshift, float* dscale, const float* dy, const float* x,
                       const float* scale, int64_t batch, int64_t tokens, int64_t dim, Stream pool) {
  forEachColumnBlock(batch, dim, pool, [&](int64_t b, int64_t c0, int64_t width) {
    double accShift[kColumnBlock] = {}, accScale[kColumnBlock] = {};
    const float* sc = scale + b * dim + c0;
    for (int64_t l = 0; l < tokens; ++l) {
      const int64_t offset = (b * tokens + l) * dim + c0;
      const float* dyr = dy + offset;
      const float* xr = x + offset;
      float* dxr = dx + offset;
      for (int64_t j = 0; j < width; ++j) {
        dxr[j] = dyr[j] * (1.0f + sc[j]);
        accShift[j] += dyr[j];
        accScale[j] += static_cast<double>(dyr[j]) * xr[j];
      }
    }
    for (int64_t j = 0; j < width; ++j) {
      dshift[b * dim + c0 + j] = static_cast<float>(accShift[j]);
      dscale[b * dim + c0 + j] = static_cast<float>(accScale[j]);
    }
  });
}

void gated_residual_forward(float* out, const float* x, const float* gate, const float* branch, int64_t batch,
                            int64_t tokens, int64_t dim, Stream pool) {
  pool.parallelFor(batch * tokens, rowGrain(dim), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const float* g = gate + (row / tokens) * dim;
      const float* xr = x + row * dim;
      const float* br = branch + row * dim;
      float* outr = out + row * dim;
      for (int64_t j = 0; j < dim; ++j) outr[j] = xr[j] + g[j] * br[j];
    }
  });
}

// Writes (=) dgate[b] = sum_tokens dout branch, dbranch = dout gate[b].
void gated_residual_backward(float* dgate, float* dbranch, const float* dout, const float* gate,
                             const float* branch, int64_t batch, int64_t tokens, int64_t dim, Stream pool) {
  forEachColumnBlock(batch, dim, pool, [&](int64_t b, int64_t c0, int64_t width) {
    double accGate[kColumnBlock] = {};
    const float* g = gate + b * dim + c0;
    for (int64_t l = 0; l < tokens; ++l) {
      const int64_t offset = (b * tokens + l) * dim + c0;
      const float* doutr = dout + offset;
      const float* br = branch + offset;
      float* dbr = dbranch + offset;
      for (int64_t j = 0; j < width; ++j) {
        dbr[j] = doutr[j] * g[j];
        accGate[j] += static_cast<double>(doutr[j]) * br[j];
      }
    }
    for (int64_t j = 0; j < width; ++j) dgate[b * dim + c0 + j] = static_cast<float>(accGate[j]);
  });
}

}  // namespace selfe::cpu
