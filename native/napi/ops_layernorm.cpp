// Bindings: layerNorm (x, weight?, bias?, eps, dtype?) -> [y, mean, rstd] and layerNormBackward (dy, x, mean,
// rstd, weight?, withBias, addTo.dx?) -> [dx, dweight | null, dbias | null], dx added to addTo.dx when
// given. Weight and bias are independent: either may be given without the other. x, weight, bias and the
// gradients share one dtype (f32, or bf16 on CUDA); mean and rstd are always f32. In mixed precision y (dtype)
// and dy may be bf16 beside an f32 x: a bf16 branch's input.
#include "call.h"
#include "ops.h"
#include "selfe/kernels/layernorm.h"

namespace selfe::napi {

namespace {

// x's shape without its last dimension: the shape of the per-row statistics.
Shape rowShape(const Shape& x) {
  Shape rows = x;
  --rows.rank;
  return rows;
}

// x must be f32 (or bf16 on CUDA) with a non-empty last dimension (the normalised one).
void expectNormalisable(Call& call, const TensorRef& x) {
  call.expectFloating(x, "x");
  if (!(x.shape.rank >= 1 && x.shape.last() > 0))
    call.fail(ErrorCode::Shape, "x must have rank >= 1 and a last dimension > 0, got " + x.shape.str());
}

// An optional affine parameter of x's dtype and width.
void expectAffine(Call& call, const std::optional<TensorRef>& t, DType dtype, int64_t dim, const char* name) {
  if (!t) return;
  call.expectDtype(*t, dtype, name);
  call.expectShape(*t, makeShape({dim}), name);
}

Napi::Value layerNorm(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  expectNormalisable(call, x);
  const int64_t dim = x.shape.last();
  const std::optional<TensorRef> weight = call.optionalTensor(2, "weight");
  const std::optional<TensorRef> bias = call.optionalTensor(3, "bias");
  expectAffine(call, weight, x.dtype, dim, "weight");
  expectAffine(call, bias, x.dtype, dim, "bias");
  const double eps = call.number(4, "eps");
  if (!(eps > 0)) call.fail(ErrorCode::InvalidArgument, "eps must be > 0");
  // y's dtype: x's unless given (bf16 from an f32 x: a bf16 branch's input).
  const DType yDtype = call.length() > 5 && !call.arg(5).IsUndefined() ? call.dtype(5, "dtype") : x.dtype;
  if (!Call::isDtypeOrBf16(yDtype, x.dtype))
    call.fail(ErrorCode::DType, "dtype must be x's (" + Call::dtypeOrBf16(x.dtype) + "), got " + dtypeName(yDtype));
  TensorRef y, mean, rstd;
  const double yId = call.output(x.shape, yDtype, &y);
  const double meanId = call.output(rowShape(x.shape), DType::F32, &mean);
  const double rstdId = call.output(rowShape(x.shape), DType::F32, &rstd);
  const void* w = weight ? weight->data : nullptr;
  const void* b = bias ? bias->data : nullptr;
  const int64_t rows = mean.numel();
  const float epsF = static_cast<float>(eps);
  call.device().launchFloatingPair("layerNorm", x.dtype, yDtype, [=](auto&& stream, auto element, auto out) {
    using T = typename decltype(element)::type;
    using Y = typename decltype(out)::type;
    layernorm_forward(y.as<Y>(), mean.f32(), rstd.f32(), x.as<T>(), static_cast<const T*>(w), static_cast<const T*>(b),
                      rows, dim, epsF, stream);
  });
  return handles(call.env(), {yId, meanId, rstdId});
}

Napi::Value layerNormBackward(Call& call) {
  const TensorRef dy = call.tensor(1, "dy");
  const TensorRef x = call.tensor(2, "x");
  const TensorRef mean = call.tensor(3, "mean");
  const TensorRef rstd = call.tensor(4, "rstd");
  expectNormalisable(call, x);
  call.expectDtypeOrBf16(dy, x.dtype, "dy");
  call.expectShape(dy, x.shape, "dy");
  for (const auto& [t, name] : {std::pair{mean, "mean"}, std::pair{rstd, "rstd"}}) {
    call.expectDtype(t, DType::F32, name);
    call.expectShape(t, rowShape(x.shape), name);
  }
  const int64_t dim = x.shape.last();
  const std::optional<TensorRef> weight = call.optionalTensor(5, "weight");
  expectAffine(call, weight, x.dtype, dim, "weight");
  const bool withBias = call.flag(6, "withBias");
  const TensorRef dxBase = call.base(7, "addTo.dx", x.dtype, x.shape);
  TensorRef dx, dweight{}, dbias{};
  const double dxId = call.output(x.shape, x.dtype, &dx);
  const double dweightId = weight ? call.output(makeShape({dim}), x.dtype, &dweight) : 0;
  const double dbiasId = withBias ? call.output(makeShape({dim}), x.dtype, &dbias) : 0;
  const void* w = weight ? weight->data : nullptr;
  const int64_t rows = mean.numel();
  call.device().launchFloatingPair("layerNormBackward", x.dtype, dy.dtype, [=](auto&& stream, auto element, auto gradient) {
    using T = typename decltype(element)::type;
    using D = typename decltype(gradient)::type;
    layernorm_backward(dx.as<T>(), dweight.as<T>(), dbias.as<T>(), dy.as<D>(), x.as<T>(), mean.f32(), rstd.f32(),
                       static_cast<const T*>(w), dxBase.as<T>(), rows, dim, stream);
  });
  Napi::Env env = call.env();
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::Number::New(env, dxId));
  out.Set(1u, weight ? Napi::Value(Napi::Number::New(env, dweightId)) : env.Null());
  out.Set(2u, withBias ? Napi::Value(Napi::Number::New(env, dbiasId)) : env.Null());
  return out;
}

}  // namespace

void registerLayerNormOps(Napi::Env env, Napi::Object ops) {
  defineOp(env, ops, "layerNorm", layerNorm);
  defineOp(env, ops, "layerNormBackward", layerNormBackward);
}

}  // namespace selfe::napi
