// Bindings: matmul (batched, b shared across the batch when rank 2), linear (x W^T + bias), linearGelu
// (x, weight, bias?) -> [gelu(x W^T + bias), x W^T + bias], linearBackward. Operands share one dtype: f32, or bf16 on CUDA
// (fp32 accumulation either way).
#include <limits>
#include <tuple>

#include "call.h"
#include "ops.h"
#include "selfe/kernels/elementwise.h"
#include "selfe/kernels/matmul.h"
#include "selfe/kernels/reduce.h"

namespace selfe::napi {

namespace {

// cblas_sgemm takes 32-bit sizes, and cuBLASLt supports no more.
void expectBlasSize(Call& call, int64_t size, const char* what) {
  if (size > std::numeric_limits<int32_t>::max())
    call.fail(ErrorCode::Shape, std::string(what) + " = " + std::to_string(size) +
        " exceeds the BLAS limit of 2^31 - 1");
}

Napi::Value matmul(Call& call) {
  const TensorRef a = call.tensor(1, "a");
  const TensorRef b = call.tensor(2, "b");
  const bool transA = call.flag(3, "transA");
  const bool transB = call.flag(4, "transB");
  const float alpha = static_cast<float>(call.number(5, "alpha"));
  call.expectFloating(a, "a");
  call.expectDtype(b, a.dtype, "b");
  if (a.shape.rank < 2) call.fail(ErrorCode::Shape, "a must have rank >= 2, got shape " + a.shape.str());
  if (b.shape.rank != 2 && b.shape.rank != a.shape.rank)
    call.fail(ErrorCode::Shape, "b " + b.shape.str() + " must have rank 2 or the rank of a " + a.shape.str());
  const int batchRank = a.shape.rank - 2;
  const bool sharedB = b.shape.rank == 2 && batchRank > 0;
  for (int i = 0; i < batchRank && !sharedB; ++i)
    if (b.shape[i] != a.shape[i])
      call.fail(ErrorCode::Shape, "the batch dimensions of b " + b.shape.str() + " must equal those of a " +
          a.shape.str());
  const int64_t m = transA ? a.shape.last() : a.shape[a.shape.rank - 2];
  const int64_t k = transA ? a.shape[a.shape.rank - 2] : a.shape.last();
  const int64_t kb = transB ? b.shape.last() : b.shape[b.shape.rank - 2];
  const int64_t n = transB ? b.shape[b.shape.rank - 2] : b.shape.last();
  if (kb != k)
    call.fail(ErrorCode::Shape, "inner dimensions differ: a " + a.shape.str() + (transA ? " (transposed)" : "") +
        " and b " + b.shape.str() + (transB ? " (transposed)" : ""));
  expectBlasSize(call, m, "M");
  expectBlasSize(call, n, "N");
  expectBlasSize(call, k, "K");
  Shape outShape = a.shape;
  outShape.dims[outShape.rank - 2] = m;
  outShape.dims[outShape.rank - 1] = n;
  TensorRef out;
  const double id = call.output(outShape, a.dtype, &out);
  const int64_t batch = a.shape.span(0, batchRank);
  const int64_t strideB = sharedB ? 0 : k * n;
  call.device().launchFloating("matmul", a.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    gemm(out.as<T>(), a.as<T>(), b.as<T>(), batch, m, n, k, transA, transB, m * k, strideB, m * n, alpha, 0.0f, stream);
  });
  return Napi::Number::New(call.env(), id);
}

// The sizes of y = x W^T for x [..., in] and weight [out, in], validated; outShape is x's with its last
// dimension replaced by out.
struct LinearShapes {
  int64_t rows, in, out;
  Shape outShape;
};

LinearShapes linearShapes(Call& call, const TensorRef& x, const TensorRef& weight) {
  call.expectFloating(x, "x");
  call.expectDtype(weight, x.dtype, "weight");
  if (x.shape.rank < 1) call.fail(ErrorCode::Shape, "x must have rank >= 1, got shape " + x.shape.str());
  call.expectRank(weight, 2, "weight");
  const int64_t in = x.shape.last(), outFeatures = weight.shape[0];
  if (weight.shape[1] != in)
    call.fail(ErrorCode::Shape, "weight " + weight.shape.str() + " must be [out, " + std::to_string(in) + "] for x " +
        x.shape.str());
  const int64_t rows = x.shape.span(0, x.shape.rank - 1);
  expectBlasSize(call, rows, "rows");
  expectBlasSize(call, in, "in");
  expectBlasSize(call, outFeatures, "out");
  Shape outShape = x.shape;
  outShape.dims[outShape.rank - 1] = outFeatures;
  return {rows, in, outFeatures, outShape};
}

// The operands of y = x W^T + bias, validated.
struct LinearProblem {
  TensorRef x, weight;
  const void* bias;
  int64_t rows, in, out;
  Shape outShape;
};

LinearProblem linearProblem(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  const TensorRef weight = call.tensor(2, "weight");
  const std::optional<TensorRef> bias = call.optionalTensor(3, "bias");
  const LinearShapes s = linearShapes(call, x, weight);
  if (bias) {
    call.expectDtype(*bias, x.dtype, "bias");
    call.expectShape(*bias, makeShape({s.out}), "bias");
  }
  return {x, weight, bias ? bias->data : nullptr, s.rows, s.in, s.out, s.outShape};
}

Napi::Value linear(Call& call) {
  const LinearProblem p = linearProblem(call);
  TensorRef y;
  const double id = call.output(p.outShape, p.x.dtype, &y);
  call.device().launchFloating("linear", p.x.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    linear_forward(y.as<T>(), p.x.as<T>(), p.weight.as<T>(), static_cast<const T*>(p.bias), p.rows, p.in, p.out, stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value linearGelu(Call& call) {
  const LinearProblem p = linearProblem(call);
  TensorRef y, pre;
  const double yId = call.output(p.outShape, p.x.dtype, &y);
  const double preId = call.output(p.outShape, p.x.dtype, &pre);
  call.device().launchFloating("linearGelu", p.x.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    linear_gelu_forward(y.as<T>(), pre.as<T>(), p.x.as<T>(), p.weight.as<T>(), static_cast<const T*>(p.bias), p.rows, p.in,
                        p.out, stream);
  });
  return handles(call.env(), {yId, preId});
}

// (dy, x, weight, dx?, dweight?, dbias?, addTo.dx?, addTo.dweight?, addTo.dbias?) -> [dx | null, dweight | null,
// dbias | null]: linear's backward on the flattened rows in one call (two GEMMs and a column sum), where the
// autograd rule took six calls and views. A gradient with an addTo tensor is that tensor plus the gradient
// (autograd's accumulation of a tensor used more than once): the GEMMs read it as their C (gemm_add), the
// column sum takes one add.
Napi::Value linearBackward(Call& call) {
  const TensorRef dy = call.tensor(1, "dy");
  const TensorRef x = call.tensor(2, "x");
  const TensorRef weight = call.tensor(3, "weight");
  const bool wantDx = call.flag(4, "dx"), wantDweight = call.flag(5, "dweight"), wantDbias = call.flag(6, "dbias");
  const LinearShapes s = linearShapes(call, x, weight);
  call.expectDtype(dy, x.dtype, "dy");
  call.expectShape(dy, s.outShape, "dy");
  const int64_t rows = s.rows, in = s.in, out = s.out;
  const TensorRef dxBase = call.base(7, "addTo.dx", x.dtype, x.shape);
  const TensorRef dweightBase = call.base(8, "addTo.dweight", x.dtype, weight.shape);
  const TensorRef dbiasBase = call.base(9, "addTo.dbias", x.dtype, makeShape({out}));
  for (const auto& [base, wanted, name] : {std::tuple{dxBase, wantDx, "dx"}, std::tuple{dweightBase, wantDweight, "dweight"},
                                           std::tuple{dbiasBase, wantDbias, "dbias"}})
    if (base.data != nullptr && !wanted)
      call.fail(ErrorCode::InvalidArgument, std::string("addTo.") + name + " is given but " + name +
          " is not asked for");
  TensorRef dx, dweight, dbias;
  const double dxId = wantDx ? call.output(x.shape, x.dtype, &dx) : 0;
  const double dweightId = wantDweight ? call.output(weight.shape, x.dtype, &dweight) : 0;
  const double dbiasId = wantDbias ? call.output(makeShape({out}), x.dtype, &dbias) : 0;
  call.device().launchFloating("linearBackward", x.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    // dx [rows, in] = dy [rows, out] W [out, in]; dweight [out, in] = dy^T x, dy stored [rows, out].
    if (wantDx && dxBase.data != nullptr)
      gemm_add(dx.as<T>(), dxBase.as<T>(), dy.as<T>(), weight.as<T>(), rows, in, out, false, false, 1.0f, stream);
    else if (wantDx)
      gemm(dx.as<T>(), dy.as<T>(), weight.as<T>(), 1, rows, in, out, false, false, rows * out, 0, rows * in, 1.0f, 0.0f,
           stream);
    if (wantDweight && dweightBase.data != nullptr)
      gemm_add(dweight.as<T>(), dweightBase.as<T>(), dy.as<T>(), x.as<T>(), out, in, rows, true, false, 1.0f, stream);
    else if (wantDweight)
      gemm(dweight.as<T>(), dy.as<T>(), x.as<T>(), 1, out, in, rows, true, false, rows * out, 0, out * in, 1.0f, 0.0f,
           stream);
    if (wantDbias) {
      sum_axis(dbias.as<T>(), dy.as<T>(), 1, rows, out, stream);
      if (dbiasBase.data != nullptr)
        binary_forward(dbias.as<T>(), dbias.as<T>(), dbiasBase.as<T>(), out, out, BinaryOp::Add, Broadcast::Same, stream);
    }
  });
  Napi::Array result = Napi::Array::New(call.env(), 3);
  const auto handleOrNull = [&](bool wanted, double id) {
    return wanted ? Napi::Value(Napi::Number::New(call.env(), id)) : call.env().Null();
  };
  result.Set(0u, handleOrNull(wantDx, dxId));
  result.Set(1u, handleOrNull(wantDweight, dweightId));
  result.Set(2u, handleOrNull(wantDbias, dbiasId));
  return result;
}

}  // namespace

void registerMatmulOps(Napi::Env env, Napi::Object ops) {
  defineOp(env, ops, "matmul", matmul);
  defineOp(env, ops, "linear", linear);
  defineOp(env, ops, "linearGelu", linearGelu);
  defineOp(env, ops, "linearBackward", linearBackward);
}

}  // namespace selfe::napi
