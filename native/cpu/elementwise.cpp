// CPU elementwise kernels (see selfe/kernels/elementwise.h).
#include "selfe/kernels/elementwise.h"

#include <cstring>

#include "pool.h"

namespace selfe::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;

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

}  // namespace selfe::cpu
