// Bindings: matmul (batched, b shared across the batch when rank 2), linear (x W^T + bias).
#include <limits>

#include "call.h"
#include "ops.h"
#include "selfe/kernels/matmul.h"

namespace selfe::napi {

namespace {

// cblas_sgemm takes 32-bit sizes.
void expectBlasSize(Call& call, int64_t size, const char* what) {
  call.expect(size <= std::numeric_limits<int32_t>::max(), ErrorCode::Shape,
              std::string(what) + " = " + std::to_string(size) + " exceeds the BLAS limit of 2^31 - 1");
}

Napi::Value matmul(Call& call) {
  const TensorRef a = call.tensor(1, "a");
  const TensorRef b = call.tensor(2, "b");
  const bool transA = call.flag(3, "transA");
  const bool transB = call.flag(4, "transB");
  const float alpha = static_cast<float>(call.number(5, "alpha"));
  call.expectDtype(a, DType::F32, "a");
  call.expectDtype(b, DType::F32, "b");
  call.expect(a.shape.rank >= 2, ErrorCode::Shape, "a must have rank >= 2, got shape " + a.shape.str());
  call.expect(b.shape.rank == 2 || b.shape.rank == a.shape.rank, ErrorCode::Shape,
              "b " + b.shape.str() + " must have rank 2 or the rank of a " + a.shape.str());
  const int batchRank = a.shape.rank - 2;
  const bool sharedB = b.shape.rank == 2 && batchRank > 0;
  for (int i = 0; i < batchRank && !sharedB; ++i)
    call.expect(b.shape[i] == a.shape[i], ErrorCode::Shape,
                "the batch dimensions of b " + b.shape.str() + " must equal those of a " + a.shape.str());
  const int64_t m = transA ? a.shape.last() : a.shape[a.shape.rank - 2];
  const int64_t k = transA ? a.shape[a.shape.rank - 2] : a.shape.last();
  const int64_t kb = transB ? b.shape.last() : b.shape[b.shape.rank - 2];
  const int64_t n = transB ? b.shape[b.shape.rank - 2] : b.shape.last();
  call.expect(kb == k, ErrorCode::Shape,
              "inner dimensions differ: a " + a.shape.str() + (transA ? " (transposed)" : "") + " and b " +
                  b.shape.str() + (transB ? " (transposed)" : ""));
  expectBlasSize(call, m, "M");
  expectBlasSize(call, n, "N");
  expectBlasSize(call, k, "K");
  Shape outShape = a.shape;
  outShape.dims[outShape.rank - 2] = m;
  outShape.dims[outShape.rank - 1] = n;
  TensorRef out;
  const double id = call.output(outShape, DType::F32, &out);
  const int64_t batch = a.shape.span(0, batchRank);
  const int64_t strideB = sharedB ? 0 : k * n;
  call.device().launch("matmul", [=](cpu::Pool& pool) {
    cpu::gemm(out.f32(), a.f32(), b.f32(), batch, m, n, k, transA, transB, m * k, strideB, m * n, alpha, 0.0f, pool);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value linear(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  const TensorRef weight = call.tensor(2, "weight");
  const std::optional<TensorRef> bias = call.optionalTensor(3, "bias");
  call.expectDtype(x, DType::F32, "x");
  call.expectDtype(weight, DType::F32, "weight");
  call.expect(x.shape.rank >= 1, ErrorCode::Shape, "x must have rank >= 1, got shape " + x.shape.str());
  call.expectRank(weight, 2, "weight");
  const int64_t in = x.shape.last(), outFeatures = weight.shape[0];
  call.expect(weight.shape[1] == in, ErrorCode::Shape,
              "weight " + weight.shape.str() + " must be [out, " + std::to_string(in) + "] for x " + x.shape.str());
  if (bias) {
    call.expectDtype(*bias, DType::F32, "bias");
    call.expectShape(*bias, makeShape({outFeatures}), "bias");
  }
  const int64_t rows = x.shape.span(0, x.shape.rank - 1);
  expectBlasSize(call, rows, "rows");
  expectBlasSize(call, in, "in");
  expectBlasSize(call, outFeatures, "out");
  Shape outShape = x.shape;
  outShape.dims[outShape.rank - 1] = outFeatures;
  TensorRef y;
  const double id = call.output(outShape, DType::F32, &y);
  const float* biasData = bias ? bias->f32() : nullptr;
  call.device().launch("linear", [=](cpu::Pool& pool) {
    cpu::linear_forward(y.f32(), x.f32(), weight.f32(), biasData, rows, in, outFeatures, pool);
  });
  return Napi::Number::New(call.env(), id);
}

}  // namespace

void registerMatmulOps(Napi::Env env, Napi::Object ops) {
  defineOp(env, ops, "matmul", matmul);
  defineOp(env, ops, "linear", linear);
}

}  // namespace selfe::napi
