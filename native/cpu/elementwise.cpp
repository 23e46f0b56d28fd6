// CPU elementwise kernels (see selfe/kernels/elementwise.h).
#include "selfe/kernels/elementwise.h"

#include <cmath>
#include <cstring>

#include "pool.h"

namespace selfe::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;

float readAsFloat(const void* in, DType type, int64_t i) {
  switch (type) {
    case DType::F32: return static_cast<const float*>(in)[i];
    case DType::I32: return static_cast<float>(static_cast<const int32_t*>(in)[i]);
    case DType::BF16: return floatFromBf16(static_cast<const bf16*>(in)[i]);
  }
  return 0.0f;
}

// To i32: truncation toward zero, saturating, NaN -> 0 (what the CUDA backend does too).
void writeFromFloat(void* out, DType type, int64_t i, float value) {
  switch (type) {
    case DType::F32: static_cast<float*>(out)[i] = value; return;
    case DType::BF16: static_cast<bf16*>(out)[i] = bf16FromFloat(value); return;
    case DType::I32: {
      int32_t v;
      if (std::isnan(value)) v = 0;
      else if (value >= 2147483648.0f) v = INT32_MAX;
      else if (value <= -2147483648.0f) v = INT32_MIN;
      else v = static_cast<int32_t>(value);
      static_cast<int32_t*>(out)[i] = v;
      return;
    }
  }
}

template <class Op>
void binaryLoop(float* out, const float* a, const float* b, int64_t n, int64_t nb, Broadcast broadcast, Op op,
                Pool& pool) {
  switch (broadcast) {
    case Broadcast::Same:
      pool.parallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) out[i] = op(a[i], b[i]);
      });
      return;
    case Broadcast::Trailing:
      pool.parallelFor(n / nb, std::max<int64_t>(1, kGrain / nb), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r)
          for (int64_t j = 0; j < nb; ++j) out[r * nb + j] = op(a[r * nb + j], b[j]);
      });
      return;
    case Broadcast::Leading: {
      const int64_t inner = n / nb;
      pool.parallelFor(nb, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, inner)), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r)
          for (int64_t j = 0; j < inner; ++j) out[r * inner + j] = op(a[r * inner + j], b[r]);
      });
      return;
    }
  }
}
}  // namespace

void binary_forward(float* out, const float* a, const float* b, int64_t n, int64_t nb, BinaryOp op,
                    Broadcast broadcast, Stream pool) {
  if (n == 0) return;
  switch (op) {
    case BinaryOp::Add: return binaryLoop(out, a, b, n, nb, broadcast, [](float x, float y) { return x + y; }, pool);
    case BinaryOp::Sub: return binaryLoop(out, a, b, n, nb, broadcast, [](float x, float y) { return x - y; }, pool);
    case BinaryOp::Mul: return binaryLoop(out, a, b, n, nb, broadcast, [](float x, float y) { return x * y; }, pool);
  }
}

void affine_forward(float* out, const float* x, float alpha, float beta, int64_t n, Stream pool) {
  pool.parallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = alpha * x[i] + beta;
  });
}

void axpy_forward(float* out, const float* x, const float* y, float alpha, int64_t n, Stream pool) {
  pool.parallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = alpha * x[i] + y[i];
  });
}

void row_dot_forward(float* out, const float* a, const float* b, int64_t rows, int64_t cols, Stream pool) {
  pool.parallelFor(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, cols)), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      double acc = 0;
      for (int64_t c = 0; c < cols; ++c) acc += static_cast<double>(a[r * cols + c]) * b[r * cols + c];
      out[r] = static_cast<float>(acc);
    }
  });
}

void fill32(void* out, uint32_t bits, int64_t n, Stream pool) {
  auto* words = static_cast<uint32_t*>(out);
  pool.parallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) words[i] = bits;
  });
}

void copy_bytes(void* dst, const void* src, int64_t bytes, Stream pool) {
  auto* d = static_cast<uint8_t*>(dst);
  const auto* s = static_cast<const uint8_t*>(src);
  pool.parallelFor(bytes, int64_t{1} << 20, [&](int64_t begin, int64_t end) { std::memmove(d + begin, s + begin, end - begin); });
}

void convert(void* out, DType out_type, const void* in, DType in_type, int64_t n, Stream pool) {
  if (out_type == in_type) return copy_bytes(out, in, n * static_cast<int64_t>(dtypeSize(in_type)), pool);
  pool.parallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) writeFromFloat(out, out_type, i, readAsFloat(in, in_type, i));
  });
}

void convert_all(void* const* outs, DType out_type, const void* const* ins, DType in_type, const int64_t* sizes,
                 int32_t count, Stream pool) {
  for (int32_t t = 0; t < count; ++t) convert(outs[t], out_type, ins[t], in_type, sizes[t], pool);
}

}  // namespace selfe::cpu
