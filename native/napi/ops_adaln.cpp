// Bindings: modulate (x [B,L,D], shift [B,D], scale [B,D]), modulateBackward (dy, x, scale) -> [dx, dshift,
// dscale], layerNormModulate (x, shift, scale, eps, dtype?) -> [y, mean, rstd] and layerNormModulateBackward
// (dy, x, mean, rstd, scale, addTo.dx?) -> [dx, dshift, dscale] (LayerNorm without affine fused with the
// modulation; dx is added to addTo.dx when given), gatedResidual (x [B,L,D], gate [B,D], branch [B,L,D]),
// gatedResidualBackward (dout, gate, branch) -> [dgate, dbranch]. Every tensor of a call shares one dtype, f32
// or bf16 on CUDA, except the f32 row statistics mean and rstd [B,L], and in mixed precision a bf16 branch
// edge beside an f32 stream: layerNormModulate's y (dtype) and dy, gatedResidual's branch and dbranch.
#include "call.h"
#include "ops.h"
#include "selfe/kernels/adaln.h"
#include "selfe/kernels/layernorm.h"

namespace selfe::napi {

namespace {

// A [B, L, D] activation.
void expectTokens(Call& call, const TensorRef& t, const char* name) {
  call.expectFloating(t, name);
  call.expectRank(t, 3, name);
}

// A [B, D] per-sample vector matching the activation's dtype, batch and width.
void expectPerSample(Call& call, const TensorRef& t, const TensorRef& tokens, const char* name) {
  call.expectDtype(t, tokens.dtype, name);
  call.expectShape(t, makeShape({tokens.shape[0], tokens.shape[2]}), name);
}

Napi::Value modulate(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  const TensorRef shift = call.tensor(2, "shift");
  const TensorRef scale = call.tensor(3, "scale");
  expectTokens(call, x, "x");
  expectPerSample(call, shift, x, "shift");
  expectPerSample(call, scale, x, "scale");
  TensorRef y;
  const double id = call.output(x.shape, x.dtype, &y);
  const int64_t batch = x.shape[0], tokens = x.shape[1], dim = x.shape[2];
  call.device().launchFloating("modulate", x.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    modulate_forward(y.as<T>(), x.as<T>(), shift.as<T>(), scale.as<T>(), batch, tokens, dim, stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value modulateBackward(Call& call) {
  const TensorRef dy = call.tensor(1, "dy");
  const TensorRef x = call.tensor(2, "x");
  const TensorRef scale = call.tensor(3, "scale");
  expectTokens(call, x, "x");
  call.expectDtype(dy, x.dtype, "dy");
  call.expectShape(dy, x.shape, "dy");
  expectPerSample(call, scale, x, "scale");
  TensorRef dx, dshift, dscale;
  const double dxId = call.output(x.shape, x.dtype, &dx);
  const double dshiftId = call.output(scale.shape, x.dtype, &dshift);
  const double dscaleId = call.output(scale.shape, x.dtype, &dscale);
  const int64_t batch = x.shape[0], tokens = x.shape[1], dim = x.shape[2];
  call.device().launchFloating("modulateBackward", x.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    modulate_backward(dx.as<T>(), dshift.as<T>(), dscale.as<T>(), dy.as<T>(), x.as<T>(), scale.as<T>(), batch, tokens,
                      dim, stream);
  });
  return handles(call.env(), {dxId, dshiftId, dscaleId});
}

// A [B, L, D] activation with a non-empty normalised dimension.
void expectNormalisableTokens(Call& call, const TensorRef& x) {
  expectTokens(call, x, "x");
  if (x.shape[2] <= 0) call.fail(ErrorCode::Shape, "x must have a last dimension > 0, got " + x.shape.str());
}

Napi::Value layerNormModulate(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  const TensorRef shift = call.tensor(2, "shift");
  const TensorRef scale = call.tensor(3, "scale");
  expectNormalisableTokens(call, x);
  expectPerSample(call, shift, x, "shift");
  expectPerSample(call, scale, x, "scale");
  const double eps = call.number(4, "eps");
  if (!(eps > 0)) call.fail(ErrorCode::InvalidArgument, "eps must be > 0");
  // y's dtype: x's unless given (bf16 from an f32 x: a bf16 branch's input).
  const DType yDtype = call.length() > 5 && !call.arg(5).IsUndefined() ? call.dtype(5, "dtype") : x.dtype;
  if (!Call::isDtypeOrBf16(yDtype, x.dtype))
    call.fail(ErrorCode::DType, "dtype must be x's (" + Call::dtypeOrBf16(x.dtype) + "), got " + dtypeName(yDtype));
  const int64_t batch = x.shape[0], tokens = x.shape[1], dim = x.shape[2];
  TensorRef y, mean, rstd;
  const double yId = call.output(x.shape, yDtype, &y);
  const double meanId = call.output(makeShape({batch, tokens}), DType::F32, &mean);
  const double rstdId = call.output(makeShape({batch, tokens}), DType::F32, &rstd);
  const float epsF = static_cast<float>(eps);
  call.device().launchFloatingPair("layerNormModulate", x.dtype, yDtype, [=](auto&& stream, auto element, auto out) {
    using T = typename decltype(element)::type;
    using Y = typename decltype(out)::type;
    layernorm_modulate_forward(y.as<Y>(), mean.f32(), rstd.f32(), x.as<T>(), shift.as<T>(), scale.as<T>(), batch, tokens,
                               dim, epsF, stream);
  });
  return handles(call.env(), {yId, meanId, rstdId});
}

Napi::Value layerNormModulateBackward(Call& call) {
  const TensorRef dy = call.tensor(1, "dy");
  const TensorRef x = call.tensor(2, "x");
  const TensorRef mean = call.tensor(3, "mean");
  const TensorRef rstd = call.tensor(4, "rstd");
  const TensorRef scale = call.tensor(5, "scale");
  expectNormalisableTokens(call, x);
  call.expectDtypeOrBf16(dy, x.dtype, "dy");
  call.expectShape(dy, x.shape, "dy");
  const int64_t batch = x.shape[0], tokens = x.shape[1], dim = x.shape[2];
  for (const auto& [t, name] : {std::pair{mean, "mean"}, std::pair{rstd, "rstd"}}) {
    call.expectDtype(t, DType::F32, name);
    call.expectShape(t, makeShape({batch, tokens}), name);
  }
  expectPerSample(call, scale, x, "scale");
  const TensorRef dxBase = call.base(6, "addTo.dx", x.dtype, x.shape);
  TensorRef dx, dshift, dscale;
  const double dxId = call.output(x.shape, x.dtype, &dx);
  const double dshiftId = call.output(scale.shape, x.dtype, &dshift);
  const double dscaleId = call.output(scale.shape, x.dtype, &dscale);
  call.device().launchFloatingPair("layerNormModulateBackward", x.dtype, dy.dtype,
                                   [=](auto&& stream, auto element, auto gradient) {
    using T = typename decltype(element)::type;
    using D = typename decltype(gradient)::type;
    layernorm_modulate_backward(dx.as<T>(), dshift.as<T>(), dscale.as<T>(), dy.as<D>(), x.as<T>(), mean.f32(), rstd.f32(),
                                scale.as<T>(), dxBase.as<T>(), batch, tokens, dim, stream);
  });
  return handles(call.env(), {dxId, dshiftId, dscaleId});
}

Napi::Value gatedResidual(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  const TensorRef gate = call.tensor(2, "gate");
  const TensorRef branch = call.tensor(3, "branch");
  expectTokens(call, x, "x");
  expectPerSample(call, gate, x, "gate");
  call.expectDtypeOrBf16(branch, x.dtype, "branch");
  call.expectShape(branch, x.shape, "branch");
  TensorRef out;
  const double id = call.output(x.shape, x.dtype, &out);
  const int64_t batch = x.shape[0], tokens = x.shape[1], dim = x.shape[2];
  call.device().launchFloatingPair("gatedResidual", x.dtype, branch.dtype, [=](auto&& stream, auto element, auto part) {
    using T = typename decltype(element)::type;
    using B = typename decltype(part)::type;
    gated_residual_forward(out.as<T>(), x.as<T>(), gate.as<T>(), branch.as<B>(), batch, tokens, dim, stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value gatedResidualBackward(Call& call) {
  const TensorRef dout = call.tensor(1, "dout");
  const TensorRef gate = call.tensor(2, "gate");
  const TensorRef branch = call.tensor(3, "branch");
  // The stream's dtype is dout's (and the gate's); the branch's may be bf16 under an f32 stream.
  expectTokens(call, dout, "dout");
  expectPerSample(call, gate, dout, "gate");
  call.expectDtypeOrBf16(branch, dout.dtype, "branch");
  call.expectShape(branch, dout.shape, "branch");
  TensorRef dgate, dbranch;
  const double dgateId = call.output(gate.shape, dout.dtype, &dgate);
  const double dbranchId = call.output(branch.shape, branch.dtype, &dbranch);
  const int64_t batch = branch.shape[0], tokens = branch.shape[1], dim = branch.shape[2];
  call.device().launchFloatingPair("gatedResidualBackward", dout.dtype, branch.dtype,
                                   [=](auto&& stream, auto element, auto part) {
    using T = typename decltype(element)::type;
    using B = typename decltype(part)::type;
    gated_residual_backward(dgate.as<T>(), dbranch.as<B>(), dout.as<T>(), gate.as<T>(), branch.as<B>(), batch, tokens,
                            dim, stream);
  });
  return handles(call.env(), {dgateId, dbranchId});
}

}  // namespace

void registerAdaLnOps(Napi::Env env, Napi::Object ops) {
  defineOp(env, ops, "modulate", modulate);
  defineOp(env, ops, "modulateBackward", modulateBackward);
  defineOp(env, ops, "layerNormModulate", layerNormModulate);
  defineOp(env, ops, "layerNormModulateBackward", layerNormModulateBackward);
  defineOp(env, ops, "gatedResidual", gatedResidual);
  defineOp(env, ops, "gatedResidualBackward", gatedResidualBackward);
}

}  // namespace selfe::napi
