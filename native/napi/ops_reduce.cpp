// Bindings: sum, mean (x) -> [], sumAxis (x, axis) -> x.shape without axis (f32, or bf16 on CUDA), mse
// (a, b) -> [], mseRows (a, b, prefixRank) -> a.shape[:prefixRank]. A mean over no elements is refused
// rather than returned as NaN.
#include <string>

#include "call.h"
#include "ops.h"
#include "selfe/kernels/elementwise.h"
#include "selfe/kernels/reduce.h"

namespace selfe::napi {

namespace {

const Shape kScalar{};

// a and b: f32 and of one shape.
void expectPair(Call& call, const TensorRef& a, const TensorRef& b) {
  call.expectDtype(a, DType::F32, "a");
  call.expectDtype(b, DType::F32, "b");
  call.expectShape(b, a.shape, "b");
}

Napi::Value sum(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  call.expectDtype(x, DType::F32, "x");
  TensorRef out;
  const double id = call.output(kScalar, DType::F32, &out);
  const int64_t n = x.numel();
  call.device().launch("sum", [=](auto&& stream) { sum_all(out.f32(), x.f32(), n, stream); });
  return Napi::Number::New(call.env(), id);
}

Napi::Value mean(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  call.expectDtype(x, DType::F32, "x");
  const int64_t n = x.numel();
  if (n <= 0) call.fail(ErrorCode::Shape, "x " + x.shape.str() + " is empty; its mean is undefined");
  TensorRef out;
  const double id = call.output(kScalar, DType::F32, &out);
  const float inverse = static_cast<float>(1.0 / static_cast<double>(n));
  call.device().launch("mean", [=](auto&& stream) {
    sum_all(out.f32(), x.f32(), n, stream);
    affine_forward(out.f32(), out.f32(), inverse, 0.0f, 1, stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value sumAxis(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  call.expectFloating(x, "x");
  if (x.shape.rank < 1) call.fail(ErrorCode::Shape, "x must have rank >= 1 to have an axis, got shape []");
  const int axis = static_cast<int>(call.integer(2, "axis", 0, x.shape.rank - 1));
  Shape shape;
  for (int i = 0; i < x.shape.rank; ++i)
    if (i != axis) shape.dims[shape.rank++] = x.shape[i];
  TensorRef out;
  const double id = call.output(shape, x.dtype, &out);
  if (out.numel() == 0) return Napi::Number::New(call.env(), id);
  const int64_t outer = x.shape.span(0, axis), length = x.shape[axis], inner = x.shape.span(axis + 1, x.shape.rank);
  call.device().launchFloating("sumAxis", x.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    sum_axis(out.as<T>(), x.as<T>(), outer, length, inner, stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value mse(Call& call) {
  const TensorRef a = call.tensor(1, "a");
  const TensorRef b = call.tensor(2, "b");
  expectPair(call, a, b);
  const int64_t n = a.numel();
  if (n <= 0) call.fail(ErrorCode::Shape, "a " + a.shape.str() + " is empty; its mean is undefined");
  TensorRef out;
  const double id = call.output(kScalar, DType::F32, &out);
  call.device().launch("mse", [=](auto&& stream) { mse_all(out.f32(), a.f32(), b.f32(), n, stream); });
  return Napi::Number::New(call.env(), id);
}

Napi::Value mseRows(Call& call) {
  const TensorRef a = call.tensor(1, "a");
  const TensorRef b = call.tensor(2, "b");
  expectPair(call, a, b);
  const int prefixRank = static_cast<int>(call.integer(3, "prefixRank", 0, a.shape.rank));
  Shape shape;
  for (int i = 0; i < prefixRank; ++i) shape.dims[shape.rank++] = a.shape[i];
  const int64_t rows = shape.numel();
  if (!(rows == 0 || a.shape.span(prefixRank, a.shape.rank) > 0))
    call.fail(ErrorCode::Shape, "rows of a " + a.shape.str() + " after dimension " + std::to_string(prefixRank) +
        " are empty; their mean is undefined");
  TensorRef out;
  const double id = call.output(shape, DType::F32, &out);
  if (rows == 0) return Napi::Number::New(call.env(), id);
  const int64_t cols = a.numel() / rows;
  call.device().launch("mseRows", [=](auto&& stream) { mse_rows(out.f32(), a.f32(), b.f32(), rows, cols, stream); });
  return Napi::Number::New(call.env(), id);
}

}  // namespace

void registerReduceOps(Napi::Env env, Napi::Object ops) {
  defineOp(env, ops, "sum", sum);
  defineOp(env, ops, "mean", mean);
  defineOp(env, ops, "sumAxis", sumAxis);
  defineOp(env, ops, "mse", mse);
  defineOp(env, ops, "mseRows", mseRows);
}

}  // namespace selfe::napi
