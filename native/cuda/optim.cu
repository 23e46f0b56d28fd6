// CUDA multi-tensor optimizer kernels (see selfe/kernels/optim.h), all on one scheme (like PyTorch's
// multi_tensor_apply):
//   - a list of tensors goes to the device as a TensorTable, a kernel parameter (`__grid_constant__`, no
//     host-to-device copy) holding up to kCapacity tensors' pointers, one per parallel list, and sizes, and the
//     prefix sums of their chunk counts. A table fills kParamBytes of the 32764 bytes of parameters a kernel
//     may take (CUDA >= 12.1 on sm_70+; this backend builds for sm_90 with CUDA 13), so a model's whole
//     parameter list (hundreds of tensors) is one launch; a longer list is launched again per table;
//   - each tensor is cut into chunks of kChunk elements; a grid of at most one resident wave of blocks walks
//     the table's chunks with a grid stride, finding a chunk's tensor by binary search over the prefix sums;
//   - inside a chunk each thread moves float4s (16-byte loads and stores) when every list's pointer for that
//     tensor is 16-byte aligned, which the caching allocator's blocks (cudaMalloc, 256-byte aligned; tensors
//     start at their block) always are; an unaligned tensor, and the last numel % 4 elements, go one float
//     at a time;
//   - an op is a functor over one element's values of every list, plus a mask of the lists it writes: lists
//     only read (grads) are never stored.
// AdamW, AdamW+EMA, EMA and clipping are such ops; the global norm's squares use the same walk with a
// per-thread accumulator (deterministic: the grid and the chunk order depend on the list alone).
#include <cmath>
#include <cstdint>

#include "check.cuh"
#include "tensor_table.cuh"
#include "selfe/kernels/optim.h"

namespace selfe::cuda {

namespace {
constexpr int kThreads = 256;
// Elements per chunk: four float4 per thread. Small enough that a grid-stride tail (a block still busy with
// its last chunk while others are done) is short next to a 100M-element list.
constexpr int64_t kChunk = 4 * 4 * kThreads;
// Bytes of kernel parameters a table may use (the limit is 32764 bytes; the rest is the op's scalars).
constexpr size_t kParamBytes = 24 * 1024;

template <int kLists>
struct TensorTable {
  // Tensors per table: 438 for AdamW+EMA's five lists, 511 for AdamW's four, 767 for the EMA's two, 1023 for one.
  static constexpr int kCapacity =
      static_cast<int>((kParamBytes - sizeof(int64_t)) / (kLists * sizeof(float*) + 2 * sizeof(int64_t)));
  float* data[kLists][kCapacity];
  int64_t sizes[kCapacity];
  int64_t chunkEnd[kCapacity];  // chunks of tensors 0..t together
  int64_t count;                // tensors in this table
};
static_assert(sizeof(TensorTable<5>) <= kParamBytes && sizeof(TensorTable<1>) <= kParamBytes);

int64_t chunksOf(int64_t size) { return (size + kChunk - 1) / kChunk; }

// Calls launch(table) for consecutive tables of the lists (all lists have the same sizes). Empty tensors are
// left out; a list with no elements launches nothing.
template <int kLists, class Launch>
void forEachTable(const float* const* (&lists)[kLists], const int64_t* sizes, int32_t count, Launch launch) {
  TensorTable<kLists> table{};
  for (int32_t t = 0; t < count; ++t) {
    if (sizes[t] == 0) continue;
    const int64_t n = table.count;
    for (int list = 0; list < kLists; ++list) table.data[list][n] = const_cast<float*>(lists[list][t]);
    table.sizes[n] = sizes[t];
    table.chunkEnd[n] = (n == 0 ? 0 : table.chunkEnd[n - 1]) + chunksOf(sizes[t]);
    table.count = n + 1;
    if (table.count == TensorTable<kLists>::kCapacity) {
      launch(table);
      table.count = 0;
    }
  }
  if (table.count > 0) launch(table);
}

// Blocks for a table: one per chunk, at most as many as the device holds at once (a single wave: every
// block stays resident and walks its share of the chunks).
template <int kLists, class Kernel>
unsigned int gridForTable(Stream stream, const TensorTable<kLists>& table, Kernel kernel) {
  int perSm = 0;
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, kernel, kThreads, 0), "optimizer occupancy");
  const int64_t resident = static_cast<int64_t>(std::max(1, perSm)) * stream.context->smCount;
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min<int64_t>(table.chunkEnd[table.count - 1], resident)));
}

// A float4's component k (k a constant once the loop over k is unrolled, so no local memory is involved).
__device__ __forceinline__ float& component(float4& v, int k) { return k == 0 ? v.x : k == 1 ? v.y : k == 2 ? v.z : v.w; }

// Applies op to every element of every tensor of the table: op(x) gets one element of each list in x, and the
// lists whose bit is set in Op::kWrites are stored back.
template <int kLists, class Op>
__device__ __forceinline__ void forEachElement(const TensorTable<kLists>& table, Op& op) {
  const int64_t chunks = table.chunkEnd[table.count - 1];
  for (int64_t chunk = blockIdx.x; chunk < chunks; chunk += gridDim.x) {
    const auto [t, begin] = tableChunk(table.chunkEnd, table.count, chunk, kChunk);
    const int64_t end = table.sizes[t] < begin + kChunk ? table.sizes[t] : begin + kChunk;
    float* ptr[kLists];
    uintptr_t bits = 0;
#pragma unroll
    for (int list = 0; list < kLists; ++list) {
      ptr[list] = table.data[list][t];
      bits |= reinterpret_cast<uintptr_t>(ptr[list]);
    }
    // begin is a multiple of 4 elements, so aligned tensors stay aligned at every chunk start.
    const int64_t vectorEnd = (bits & 15) == 0 ? begin + ((end - begin) & ~int64_t{3}) : begin;
    for (int64_t i = begin + 4 * static_cast<int64_t>(threadIdx.x); i < vectorEnd; i += 4 * kThreads) {
      float4 in[kLists];
#pragma unroll
      for (int list = 0; list < kLists; ++list) in[list] = *reinterpret_cast<const float4*>(ptr[list] + i);
#pragma unroll
      for (int lane = 0; lane < 4; ++lane) {
        float x[kLists];
#pragma unroll
        for (int list = 0; list < kLists; ++list) x[list] = component(in[list], lane);
        op(x);
#pragma unroll
        for (int list = 0; list < kLists; ++list) component(in[list], lane) = x[list];
      }
#pragma unroll
      for (int list = 0; list < kLists; ++list)
        if (Op::kWrites & (1u << list)) *reinterpret_cast<float4*>(ptr[list] + i) = in[list];
    }
    for (int64_t i = vectorEnd + threadIdx.x; i < end; i += kThreads) {
      float x[kLists];
#pragma unroll
      for (int list = 0; list < kLists; ++list) x[list] = ptr[list][i];
      op(x);
#pragma unroll
      for (int list = 0; list < kLists; ++list)
        if (Op::kWrites & (1u << list)) ptr[list][i] = x[list];
    }
  }
}

struct AdamWScalars {
  float lr, beta1, beta2, eps, weightDecay, correction1, correction2;
};

AdamWScalars adamwScalars(const AdamWHyper& hyper) {
  const double step = static_cast<double>(hyper.step);
  return AdamWScalars{hyper.lr,
                      hyper.beta1,
                      hyper.beta2,
                      hyper.eps,
                      hyper.weight_decay,
                      static_cast<float>(1.0 - std::pow(static_cast<double>(hyper.beta1), step)),
                      static_cast<float>(1.0 - std::pow(static_cast<double>(hyper.beta2), step))};
}

// One element of AdamW and of the EMA, fp32. Every kernel below calls these, so AdamW+EMA does exactly the
// arithmetic of AdamW followed by the EMA. Each product and sum is spelled as a rounded intrinsic: left to
// itself nvcc contracts a * b + c into an fma differently where the op is inlined into different kernels
// (on the H200 the fused EMA came out 1 ulp off emaUpdate's), and the two must agree bit for bit.
__device__ __forceinline__ void adamwElement(const AdamWScalars& s, float& p, float g, float& m, float& v) {
  const float mi = __fmaf_rn(s.beta1, m, __fmul_rn(1.0f - s.beta1, g));
  const float vi = __fmaf_rn(s.beta2, v, __fmul_rn(__fmul_rn(1.0f - s.beta2, g), g));
  m = mi;
  v = vi;
  const float step = __fdiv_rn(__fdiv_rn(mi, s.correction1), __fadd_rn(__fsqrt_rn(__fdiv_rn(vi, s.correction2)), s.eps));
  p = __fmaf_rn(-s.lr, __fmaf_rn(s.weightDecay, p, step), p);
}

__device__ __forceinline__ void emaElement(float decay, float& e, float p) { e = __fmaf_rn(decay, e, __fmul_rn(1.0f - decay, p)); }

// Lists: params, grads, m, v.
struct AdamWOp {
  static constexpr unsigned kWrites = 0b1101;
  AdamWScalars s;
  __device__ void operator()(float (&x)[4]) const { adamwElement(s, x[0], x[1], x[2], x[3]); }
};

// Lists: params, grads, m, v, ema.
struct AdamWEmaOp {
  static constexpr unsigned kWrites = 0b11101;
  AdamWScalars s;
  float decay;
  __device__ void operator()(float (&x)[5]) const {
    adamwElement(s, x[0], x[1], x[2], x[3]);
    emaElement(decay, x[4], x[0]);
  }
};

// Lists: ema, params.
struct EmaOp {
  static constexpr unsigned kWrites = 0b01;
  float decay;
  __device__ void operator()(float (&x)[2]) const { emaElement(decay, x[0], x[1]); }
};

struct ScaleOp {
  static constexpr unsigned kWrites = 0b1;
  float coef;
  __device__ void operator()(float (&x)[1]) const { x[0] *= coef; }
};

struct SquaresOp {
  static constexpr unsigned kWrites = 0;
  float acc = 0.0f;
  __device__ void operator()(float (&x)[1]) { acc += x[0] * x[0]; }
};

template <int kLists, class Op>
__global__ void elementwiseKernel(const __grid_constant__ TensorTable<kLists> table, const Op op) {
  forEachElement(table, op);
}

// partials[blockIdx.x] = the block's share of sum |x|^2 over the table.
__global__ void squaresKernel(float* partials, const __grid_constant__ TensorTable<1> table) {
  __shared__ float shared[32];
  SquaresOp op;
  forEachElement(table, op);
  const float acc = blockSum(op.acc, shared);
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
__global__ void clipKernel(const __grid_constant__ TensorTable<1> table, const float* norm, float maxNorm) {
  const ScaleOp op{maxNorm / (norm[0] + 1e-6f)};
  if (op.coef >= 1.0f) return;
  forEachElement(table, op);
}

// Blocks of the global norm's squares pass: at most 256, since each writes a partial.
unsigned int normBlocks(Stream stream, const TensorTable<1>& table) {
  return std::min(256u, gridForTable(stream, table, squaresKernel));
}

template <int kLists, class Op>
void launchElementwise(const float* const* (&lists)[kLists], const int64_t* sizes, int32_t count, const Op& op,
                       const char* name, Stream stream) {
  forEachTable<kLists>(lists, sizes, count, [&](const TensorTable<kLists>& table) {
    const auto kernel = elementwiseKernel<kLists, Op>;
    kernel<<<gridForTable(stream, table, kernel), kThreads, 0, stream>>>(table, op);
    checkLaunch(name);
  });
}
}  // namespace

void adamw_update(const TensorList& params, const ConstTensorList& grads, const TensorList& m, const TensorList& v,
                  const AdamWHyper& hyper, Stream stream) {
  const float* const* lists[4] = {params.data, grads.data, m.data, v.data};
  launchElementwise<4>(lists, params.sizes, params.count, AdamWOp{adamwScalars(hyper)}, "adamw", stream);
}

void adamw_ema_update(const TensorList& params, const ConstTensorList& grads, const TensorList& m, const TensorList& v,
                      const TensorList& ema, const AdamWHyper& hyper, float decay, Stream stream) {
  const float* const* lists[5] = {params.data, grads.data, m.data, v.data, ema.data};
  launchElementwise<5>(lists, params.sizes, params.count, AdamWEmaOp{adamwScalars(hyper), decay}, "adamwEma", stream);
}

void ema_update(const TensorList& ema, const ConstTensorList& params, float decay, Stream stream) {
  const float* const* lists[2] = {ema.data, params.data};
  launchElementwise<2>(lists, ema.sizes, ema.count, EmaOp{decay}, "emaUpdate", stream);
}

// Writes (=) out[0]. Partials per block of every table, then one block adds them in order.
void global_norm(float* out, const ConstTensorList& xs, Stream stream) {
  const float* const* lists[1] = {xs.data};
  int64_t partialCount = 0;
  forEachTable<1>(lists, xs.sizes, xs.count, [&](const TensorTable<1>& table) { partialCount += normBlocks(stream, table); });
  Scratch partials(stream, static_cast<size_t>(std::max<int64_t>(1, partialCount)) * sizeof(float));
  int64_t offset = 0;
  forEachTable<1>(lists, xs.sizes, xs.count, [&](const TensorTable<1>& table) {
    const unsigned int blocks = normBlocks(stream, table);
    squaresKernel<<<blocks, kThreads, 0, stream>>>(partials.as<float>() + offset, table);
    checkLaunch("globalNorm");
    offset += blocks;
  });
  normFinish<<<1, 1024, 0, stream>>>(out, partials.as<float>(), partialCount);
  checkLaunch("globalNorm");
}

void clip_by_norm(const TensorList& xs, const float* norm, float max_norm, Stream stream) {
  const float* const* lists[1] = {xs.data};
  forEachTable<1>(lists, xs.sizes, xs.count, [&](const TensorTable<1>& table) {
    clipKernel<<<gridForTable(stream, table, clipKernel), kThreads, 0, stream>>>(table, norm, max_norm);
    checkLaunch("clipByNorm");
  });
}

}  // namespace selfe::cuda
