// CUDA reductions (see selfe/kernels/reduce.h): fp32 sums in a fixed tree, so results are deterministic.
// Whole-tensor sums: a fixed number of blocks write partials, one block adds them up.
#include "check.cuh"
#include "column_sum.cuh"
#include "selfe/kernels/reduce.h"

namespace selfe::cuda {

namespace {
constexpr int kThreads = 256;
constexpr int64_t kMaxPartials = 1024;

struct Identity {
  const float* x;
  __device__ float operator()(int64_t i) const { return x[i]; }
};

struct SquaredDifference {
  const float* a;
  const float* b;
  __device__ float operator()(int64_t i) const {
    const float d = a[i] - b[i];
    return d * d;
  }
};

template <class Term>
__global__ void partialSums(float* partials, Term term, int64_t n) {
  __shared__ float shared[32];
  float acc = 0.0f;
  SELFE_GRID_STRIDE(i, n) acc += term(i);
  acc = blockSum(acc, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// out[0] = scale * sum of the partials (one block).
__global__ void finishSum(float* out, const float* partials, int64_t count, float scale) {
  __shared__ float shared[32];
  float acc = 0.0f;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
  acc = blockSum(acc, shared);
  if (threadIdx.x == 0) out[0] = acc * scale;
}

template <class Term>
void wholeSum(float* out, Term term, int64_t n, float scale, Stream stream, const char* name) {
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(kMaxPartials, blocksFor(n, kThreads * 4)));
  Scratch partials(stream, static_cast<size_t>(blocks) * sizeof(float));
  partialSums<<<static_cast<unsigned int>(blocks), kThreads, 0, stream>>>(partials.as<float>(), term, n);
  checkLaunch(name);
  finishSum<<<1, 1024, 0, stream>>>(out, partials.as<float>(), blocks, scale);
  checkLaunch(name);
}

// One block per row.
__global__ void mseRowsKernel(float* out, const float* a, const float* b, int64_t cols) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;
  float acc = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float d = a[row * cols + c] - b[row * cols + c];
    acc += d * d;
  }
  acc = blockSum(acc, shared);
  if (threadIdx.x == 0) out[row] = acc / static_cast<float>(cols);
}

template <class T>
struct AxisTerms {
  const T* x;
  int64_t axis, inner;
  __device__ void operator()(int64_t o, int64_t j, int64_t c, float* terms) const {
    terms[0] = toFloat(x[(o * axis + j) * inner + c]);
  }
};

template <class T>
struct AxisStore {
  T* out;
  int64_t inner;
  __device__ void operator()(int64_t o, int64_t c, int, float sum) const { out[o * inner + c] = fromFloat<T>(sum); }
};
}  // namespace

void sum_all(float* out, const float* x, int64_t n, Stream stream) { wholeSum(out, Identity{x}, n, 1.0f, stream, "sum"); }

void sum_axis(float* out, const float* x, int64_t outer, int64_t axis, int64_t inner, Stream stream) {
  columnSums<1>(AxisTerms<float>{x, axis, inner}, AxisStore<float>{out, inner}, outer, axis, inner, stream, "sumAxis");
}
void sum_axis(bf16* out, const bf16* x, int64_t outer, int64_t axis, int64_t inner, Stream stream) {
  columnSums<1>(AxisTerms<__nv_bfloat16>{dev(x), axis, inner}, AxisStore<__nv_bfloat16>{dev(out), inner}, outer, axis,
                inner, stream, "sumAxis");
}

void mse_all(float* out, const float* a, const float* b, int64_t n, Stream stream) {
  wholeSum(out, SquaredDifference{a, b}, n, static_cast<float>(1.0 / static_cast<double>(n)), stream, "mse");
}

void mse_rows(float* out, const float* a, const float* b, int64_t rows, int64_t cols, Stream stream) {
  if (rows == 0) return;
  mseRowsKernel<<<static_cast<unsigned int>(rows), kThreads, 0, stream>>>(out, a, b, cols);
  checkLaunch("mseRows");
}

}  // namespace selfe::cuda
