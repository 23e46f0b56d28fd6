// CUDA multi-tensor optimizer kernels (see selfe/kernels/optim.h). A list is launched in batches of up to
// kPerLaunch tensors whose pointers and sizes travel as one kernel parameter (no host-to-device copy); every
// thread walks every tensor of its batch with a grid stride, so many small tensors cost one launch.
#include <cmath>
#include <vector>

#include "check.cuh"
#include "selfe/kernels/optim.h"

namespace selfe::cuda {

namespace {
constexpr int kThreads = 256;
constexpr int kPerLaunch = 48;  // keeps the largest parameter struct under the classic 4 KiB limit

template <int kLists>
struct Batch {
  float* data[kLists][kPerLaunch];
  int64_t sizes[kPerLaunch];
  int32_t count;
  int64_t elements;  // sum of sizes, for the grid
};

// Calls launch(batch) for consecutive batches of the lists (all lists have the same sizes).
template <int kLists, class Launch>
void forEachBatch(const float* const* const lists[kLists], const int64_t* sizes, int32_t count, Launch launch) {
  for (int32_t first = 0; first < count; first += kPerLaunch) {
    Batch<kLists> batch{};
    batch.count = std::min(kPerLaunch, count - first);
    for (int32_t t = 0; t < batch.count; ++t) {
      for (int list = 0; list < kLists; ++list) batch.data[list][t] = const_cast<float*>(lists[list][first + t]);
      batch.sizes[t] = sizes[first + t];
      batch.elements += sizes[first + t];
    }
    launch(batch);
  }
}

struct AdamWScalars {
  float lr, beta1, beta2, eps, weightDecay, correction1, correction2;
};

// Lists: params, grads, m, v.
__global__ void adamwKernel(const __grid_constant__ Batch<4> batch, const AdamWScalars s) {
  for (int t = 0; t < batch.count; ++t) {
    float* p = batch.data[0][t];
    const float* g = batch.data[1][t];
    float* m = batch.data[2][t];
    float* v = batch.data[3][t];
    SELFE_GRID_STRIDE(i, batch.sizes[t]) {
      const float gi = g[i];
      const float mi = s.beta1 * m[i] + (1.0f - s.beta1) * gi;
      const float vi = s.beta2 * v[i] + (1.0f - s.beta2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] -= s.lr * (mi / s.correction1 / (sqrtf(vi / s.correction2) + s.eps) + s.weightDecay * p[i]);
    }
  }
}

// Lists: ema, params.
__global__ void emaKernel(const __grid_constant__ Batch<2> batch, const float decay) {
  for (int t = 0; t < batch.count; ++t) {
    float* e = batch.data[0][t];
    const float* p = batch.data[1][t];
    SELFE_GRID_STRIDE(i, batch.sizes[t]) e[i] = decay * e[i] + (1.0f - decay) * p[i];
  }
}

// partials[blockIdx.x] = the block's share of sum |x|^2 over the batch.
__global__ void squaresKernel(float* partials, const __grid_constant__ Batch<1> batch) {
  __shared__ float shared[32];
  float acc = 0.0f;
  for (int t = 0; t < batch.count; ++t) {
    const float* x = batch.data[0][t];
    SELFE_GRID_STRIDE(i, batch.sizes[t]) acc += x[i] * x[i];
  }
  acc = blockSum(acc, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void normFinish(float* out, const float* partials, int64_t count) {
  __shared__ float shared[32];
  float acc = 0.0f;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
  acc = blockSum(acc, shared);
  if (threadIdx.x == 0) out[0] = sqrtf(acc);
}

// A NaN norm propagates into the tensors (as on the CPU) instead of passing them through unclipped.
__global__ void clipKernel(const __grid_constant__ Batch<1> batch, const float* norm, float maxNorm) {
  const float coef = maxNorm / (norm[0] + 1e-6f);
  if (coef >= 1.0f) return;
  for (int t = 0; t < batch.count; ++t) {
    float* x = batch.data[0][t];
    SELFE_GRID_STRIDE(i, batch.sizes[t]) x[i] *= coef;
  }
}

unsigned int normBlocks(int64_t elements) { return std::max(1u, std::min(256u, blocksFor(elements, kThreads * 8))); }
}  // namespace

void adamw_update(const TensorList& params, const ConstTensorList& grads, const TensorList& m, const TensorList& v,
                  const AdamWHyper& hyper, Stream stream) {
  const double step = static_cast<double>(hyper.step);
  const AdamWScalars s{hyper.lr,
                       hyper.beta1,
                       hyper.beta2,
                       hyper.eps,
                       hyper.weight_decay,
                       static_cast<float>(1.0 - std::pow(static_cast<double>(hyper.beta1), step)),
                       static_cast<float>(1.0 - std::pow(static_cast<double>(hyper.beta2), step))};
  const float* const* lists[4] = {params.data, grads.data, m.data, v.data};
  forEachBatch<4>(lists, params.sizes, params.count, [&](const Batch<4>& batch) {
    if (batch.elements == 0) return;
    adamwKernel<<<gridFor(stream, batch.elements, kThreads), kThreads, 0, stream>>>(batch, s);
    checkLaunch("adamw");
  });
}

void ema_update(const TensorList& ema, const ConstTensorList& params, float decay, Stream stream) {
  const float* const* lists[2] = {ema.data, params.data};
  forEachBatch<2>(lists, ema.sizes, ema.count, [&](const Batch<2>& batch) {
    if (batch.elements == 0) return;
    emaKernel<<<gridFor(stream, batch.elements, kThreads), kThreads, 0, stream>>>(batch, decay);
    checkLaunch("emaUpdate");
  });
}

// Writes (=) out[0]. Partials per block of every batch, then one block adds them in order.
void global_norm(float* out, const ConstTensorList& xs, Stream stream) {
  const float* const* lists[1] = {xs.data};
  int64_t partialCount = 0;
  forEachBatch<1>(lists, xs.sizes, xs.count, [&](const Batch<1>& batch) { partialCount += normBlocks(batch.elements); });
  Scratch partials(stream, static_cast<size_t>(std::max<int64_t>(1, partialCount)) * sizeof(float));
  int64_t offset = 0;
  forEachBatch<1>(lists, xs.sizes, xs.count, [&](const Batch<1>& batch) {
    const unsigned int blocks = normBlocks(batch.elements);
    squaresKernel<<<blocks, kThreads, 0, stream>>>(partials.as<float>() + offset, batch);
    checkLaunch("globalNorm");
    offset += blocks;
  });
  normFinish<<<1, 1024, 0, stream>>>(out, partials.as<float>(), partialCount);
  checkLaunch("globalNorm");
}

void clip_by_norm(const TensorList& xs, const float* norm, float max_norm, Stream stream) {
  const float* const* lists[1] = {xs.data};
  forEachBatch<1>(lists, xs.sizes, xs.count, [&](const Batch<1>& batch) {
    if (batch.elements == 0) return;
    clipKernel<<<gridFor(stream, batch.elements, kThreads), kThreads, 0, stream>>>(batch, norm, max_norm);
    checkLaunch("clipByNorm");
  });
}

}  // namespace selfe::cuda
