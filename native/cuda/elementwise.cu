// CUDA elementwise kernels (see selfe/kernels/elementwise.h): f32 and bf16 storage, fp32 arithmetic.
#include <cuda_runtime.h>

#include "check.cuh"
#include "selfe/kernels/elementwise.h"
#include "tensor_table.cuh"

namespace selfe::cuda {

// The cast op converts i32 too: check.cuh's toFloat/fromFloat, extended to it.
__device__ __forceinline__ float toFloat(int32_t x) { return static_cast<float>(x); }
// Truncation toward zero, saturating, NaN -> 0 (as the CPU backend).
template <>
__device__ __forceinline__ int32_t fromFloat<int32_t>(float x) {
  if (isnan(x)) return 0;
  if (x >= 2147483648.0f) return 2147483647;
  if (x <= -2147483648.0f) return -2147483647 - 1;
  return static_cast<int32_t>(x);
}

namespace {
constexpr int kThreads = 256;

// a and out of storage T, b of U (T, or bf16 beside an f32 a: a bf16 branch added into an f32 stream).
template <class T, class U>
__global__ void binaryKernel(T* out, const T* a, const U* b, int64_t n, int64_t nb, BinaryOp op, Broadcast broadcast) {
  const int64_t inner = broadcast == Broadcast::Leading ? n / nb : 1;
  SELFE_GRID_STRIDE(i, n) {
    const int64_t j = broadcast == Broadcast::Same ? i : broadcast == Broadcast::Trailing ? i % nb : i / inner;
    const float x = toFloat(a[i]), y = toFloat(b[j]);
    out[i] = fromFloat<T>(op == BinaryOp::Add ? x + y : op == BinaryOp::Sub ? x - y : x * y);
  }
}

template <class T>
__global__ void affineKernel(T* out, const T* x, float alpha, float beta, int64_t n) {
  SELFE_GRID_STRIDE(i, n) out[i] = fromFloat<T>(alpha * toFloat(x[i]) + beta);
}

template <class T>
__global__ void axpyKernel(T* out, const T* x, const T* y, float alpha, int64_t n) {
  SELFE_GRID_STRIDE(i, n) out[i] = fromFloat<T>(alpha * toFloat(x[i]) + toFloat(y[i]));
}

// One block per row; fp32 partial sums reduced in a fixed order.
__global__ void rowDotKernel(float* out, const float* a, const float* b, int64_t cols) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;
  float acc = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) acc += a[row * cols + c] * b[row * cols + c];
  acc = blockSum(acc, shared);
  if (threadIdx.x == 0) out[row] = acc;
}

template <class Word>
__global__ void fillKernel(Word* out, Word bits, int64_t n) {
  SELFE_GRID_STRIDE(i, n) out[i] = bits;
}

template <class Out, class In>
__global__ void convertKernel(Out* out, const In* in, int64_t n) {
  SELFE_GRID_STRIDE(i, n) out[i] = fromFloat<Out>(toFloat(in[i]));
}

template <class Out>
void convertFrom(Out* out, const void* in, DType in_type, int64_t n, Stream stream) {
  const unsigned int grid = gridFor(stream, n, kThreads);
  switch (in_type) {
    case DType::F32: convertKernel<<<grid, kThreads, 0, stream>>>(out, static_cast<const float*>(in), n); break;
    case DType::I32: convertKernel<<<grid, kThreads, 0, stream>>>(out, static_cast<const int32_t*>(in), n); break;
    case DType::BF16:
      convertKernel<<<grid, kThreads, 0, stream>>>(out, static_cast<const __nv_bfloat16*>(in), n);
      break;
  }
  checkLaunch("convert");
}

// convert_all's tensors as a kernel parameter (no host-to-device copy), a multi-tensor table
// (tensor_table.cuh) of chunks of kConvertChunk elements.
constexpr int64_t kConvertChunk = 8 * kThreads;
struct ConvertTable {
  static constexpr int kCapacity = 700;  // 4 words a tensor: 22.4 KB of the 32764 bytes a kernel may take
  const void* in[kCapacity];
  void* out[kCapacity];
  int64_t sizes[kCapacity];
  int64_t chunkEnd[kCapacity];  // chunks of tensors 0..t together
  int32_t count;
};

static_assert(sizeof(ConvertTable) <= 24 * 1024, "a ConvertTable must fit in a kernel's parameters");

template <class Out, class In>
__global__ void convertTableKernel(const __grid_constant__ ConvertTable table) {
  const int64_t chunks = table.chunkEnd[table.count - 1];
  for (int64_t chunk = blockIdx.x; chunk < chunks; chunk += gridDim.x) {
    const auto [t, first] = tableChunk(table.chunkEnd, table.count, chunk, kConvertChunk);
    const int64_t end = min(first + kConvertChunk, table.sizes[t]);
    const In* in = static_cast<const In*>(table.in[t]);
    Out* out = static_cast<Out*>(table.out[t]);
    for (int64_t i = first + threadIdx.x; i < end; i += blockDim.x) out[i] = fromFloat<Out>(toFloat(in[i]));
  }
}

template <class Out, class In>
void convertTables(void* const* outs, const void* const* ins, const int64_t* sizes, int32_t count, Stream stream) {
  ConvertTable table{};
  const auto launch = [&] {
    const int64_t chunks = table.chunkEnd[table.count - 1];
    convertTableKernel<Out, In><<<gridFor(stream, chunks * kThreads, kThreads), kThreads, 0, stream>>>(table);
    checkLaunch("castAll");
    table.count = 0;
  };
  for (int32_t t = 0; t < count; ++t) {
    if (sizes[t] == 0) continue;
    const int32_t n = table.count;
    table.in[n] = ins[t];
    table.out[n] = outs[t];
    table.sizes[n] = sizes[t];
    table.chunkEnd[n] = (n == 0 ? 0 : table.chunkEnd[n - 1]) + (sizes[t] + kConvertChunk - 1) / kConvertChunk;
    table.count = n + 1;
    if (table.count == ConvertTable::kCapacity) launch();
  }
  if (table.count > 0) launch();
}

template <class T, class U>
void binaryLaunch(T* out, const T* a, const U* b, int64_t n, int64_t nb, BinaryOp op, Broadcast broadcast,
                  Stream stream) {
  if (n == 0) return;
  binaryKernel<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(out, a, b, n, nb, op, broadcast);
  checkLaunch("binary");
}

template <class T>
void affineLaunch(T* out, const T* x, float alpha, float beta, int64_t n, Stream stream) {
  if (n == 0) return;
  affineKernel<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(out, x, alpha, beta, n);
  checkLaunch("affine");
}

template <class T>
void axpyLaunch(T* out, const T* x, const T* y, float alpha, int64_t n, Stream stream) {
  if (n == 0) return;
  axpyKernel<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(out, x, y, alpha, n);
  checkLaunch("axpy");
}
}  // namespace

void binary_forward(float* out, const float* a, const float* b, int64_t n, int64_t nb, BinaryOp op,
                    Broadcast broadcast, Stream stream) {
  binaryLaunch(out, a, b, n, nb, op, broadcast, stream);
}
void binary_forward(bf16* out, const bf16* a, const bf16* b, int64_t n, int64_t nb, BinaryOp op, Broadcast broadcast,
                    Stream stream) {
  binaryLaunch(dev(out), dev(a), dev(b), n, nb, op, broadcast, stream);
}
void binary_forward(float* out, const float* a, const bf16* b, int64_t n, int64_t nb, BinaryOp op, Broadcast broadcast,
                    Stream stream) {
  binaryLaunch(out, a, dev(b), n, nb, op, broadcast, stream);
}

void affine_forward(float* out, const float* x, float alpha, float beta, int64_t n, Stream stream) {
  affineLaunch(out, x, alpha, beta, n, stream);
}
void affine_forward(bf16* out, const bf16* x, float alpha, float beta, int64_t n, Stream stream) {
  affineLaunch(dev(out), dev(x), alpha, beta, n, stream);
}

void axpy_forward(float* out, const float* x, const float* y, float alpha, int64_t n, Stream stream) {
  axpyLaunch(out, x, y, alpha, n, stream);
}
void axpy_forward(bf16* out, const bf16* x, const bf16* y, float alpha, int64_t n, Stream stream) {
  axpyLaunch(dev(out), dev(x), dev(y), alpha, n, stream);
}

void row_dot_forward(float* out, const float* a, const float* b, int64_t rows, int64_t cols, Stream stream) {
  if (rows == 0) return;
  rowDotKernel<<<static_cast<unsigned int>(rows), kThreads, 0, stream>>>(out, a, b, cols);
  checkLaunch("rowDot");
}

void fill32(void* out, uint32_t bits, int64_t n, Stream stream) {
  if (n == 0) return;
  fillKernel<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(static_cast<uint32_t*>(out), bits, n);
  checkLaunch("fill");
}

void fill16(void* out, uint16_t bits, int64_t n, Stream stream) {
  if (n == 0) return;
  fillKernel<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(static_cast<uint16_t*>(out), bits, n);
  checkLaunch("fill");
}

void copy_bytes(void* dst, const void* src, int64_t bytes, Stream stream) {
  if (bytes == 0 || dst == src) return;
  check(cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), cudaMemcpyDeviceToDevice, stream), "copy");
}

void convert(void* out, DType out_type, const void* in, DType in_type, int64_t n, Stream stream) {
  if (n == 0) return;
  if (out_type == in_type) return copy_bytes(out, in, n * static_cast<int64_t>(dtypeSize(in_type)), stream);
  switch (out_type) {
    case DType::F32: return convertFrom(static_cast<float*>(out), in, in_type, n, stream);
    case DType::I32: return convertFrom(static_cast<int32_t*>(out), in, in_type, n, stream);
    case DType::BF16: return convertFrom(static_cast<__nv_bfloat16*>(out), in, in_type, n, stream);
  }
}

void convert_all(void* const* outs, DType out_type, const void* const* ins, DType in_type, const int64_t* sizes,
                 int32_t count, Stream stream) {
  if (out_type == DType::BF16 && in_type == DType::F32)
    return convertTables<__nv_bfloat16, float>(outs, ins, sizes, count, stream);
  if (out_type == DType::F32 && in_type == DType::BF16)
    return convertTables<float, __nv_bfloat16>(outs, ins, sizes, count, stream);
  for (int32_t t = 0; t < count; ++t) convert(outs[t], out_type, ins[t], in_type, sizes[t], stream);
}

}  // namespace selfe::cuda
