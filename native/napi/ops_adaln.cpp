// Bindings: modulate (x [B,L,D], shift [B,D], scale [B,D]), modulateBackward (dy, x, scale) -> [dx, dshift,
// dscale], gatedResidual (x [B,L,D], gate [B,D], branch [B,L,D]), gatedResidualBackward (dout, gate,
// branch) -> [dgate, dbranch].
#include "call.h"
#include "ops.h"
#include "selfe/kernels/adaln.h"

namespace selfe::napi {

namespace {

// An f32 [B, L, D] activation.
void expectTokens(Call& call, const TensorRef& t, const char* name) {
  call.expectDtype(t, DType::F32, name);
  call.expectRank(t, 3, name);
}

// An f32 [B, D] per-sample vector matching the activation's batch and width.
void expectPerSample(Call& call, const TensorRef& t, const Shape& tokens, const char* name) {
  call.expectDtype(t, DType::F32, name);
  call.expectShape(t, makeShape({tokens[0], tokens[2]}), name);
}

Napi::Value modulate(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  const TensorRef shift = call.tensor(2, "shift");
  const TensorRef scale = call.tensor(3, "scale");
  expectTokens(call, x, "x");
  expectPerSample(call, shift, x.shape, "shift");
  expectPerSample(call, scale, x.shape, "scale");
  TensorRef y;
  const double id = call.output(x.shape, DType::F32, &y);
  const int64_t batch = x.shape[0], tokens = x.shape[1], dim = x.shape[2];
  call.device().launch("modulate", [=](cpu::Pool& pool) {
    cpu::modulate_forward(y.f32(), x.f32(), shift.f32(), scale.f32(), batch, tokens, dim, pool);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value modulateBackward(Call& call) {
  const TensorRef dy = call.tensor(1, "dy");
  const TensorRef x = call.tensor(2, "x");
  const TensorRef scale = call.tensor(3, "scale");
  expectTokens(call, x, "x");
  call.expectDtype(dy, DType::F32, "dy");
  call.expectShape(dy, x.shape, "dy");
  expectPerSample(call, scale, x.shape, "scale");
  TensorRef dx, dshift, dscale;
  const double dxId = call.output(x.shape, DType::F32, &dx);
  const double dshiftId = call.output(scale.shape, DType::F32, &dshift);
  const double dscaleId = call.output(scale.shape, DType::F32, &dscale);
  const int64_t batch = x.shape[0], tokens = x.shape[1], dim = x.shape[2];
  call.device().launch("modulateBackward", [=](cpu::Pool& pool) {
    cpu::modulate_backward(dx.f32(), dshift.f32(), dscale.f32(), dy.f32(), x.f32(), scale.f32(), batch, tokens, dim,
                           pool);
  });
  return handles(call.env(), {dxId, dshiftId, dscaleId});
}

Napi::Value gatedResidual(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  const TensorRef gate = call.tensor(2, "gate");
  const TensorRef branch = call.tensor(3, "branch");
  expectTokens(call, x, "x");
  expectPerSample(call, gate, x.shape, "gate");
  call.expectDtype(branch, DType::F32, "branch");
  call.expectShape(branch, x.shape, "branch");
  TensorRef out;
  const double id = call.output(x.shape, DType::F32, &out);
  const int64_t batch = x.shape[0], tokens = x.shape[1], dim = x.shape[2];
  call.device().launch("gatedResidual", [=](cpu::Pool& pool) {
    cpu::gated_residual_forward(out.f32(), x.f32(), gate.f32(), branch.f32(), batch, tokens, dim, pool);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value gatedResidualBackward(Call& call) {
  const TensorRef dout = call.tensor(1, "dout");
  const TensorRef gate = call.tensor(2, "gate");
  const TensorRef branch = call.tensor(3, "branch");
  expectTokens(call, branch, "branch");
  call.expectDtype(dout, DType::F32, "dout");
  call.expectShape(dout, branch.shape, "dout");
  expectPerSample(call, gate, branch.shape, "gate");
  TensorRef dgate, dbranch;
  const double dgateId = call.output(gate.shape, DType::F32, &dgate);
  const double dbranchId = call.output(branch.shape, DType::F32, &dbranch);
  const int64_t batch = branch.shape[0], tokens = branch.shape[1], dim = branch.shape[2];
  call.device().launch("gatedResidualBackward", [=](cpu::Pool& pool) {
    cpu::gated_residual_backward(dgate.f32(), dbranch.f32(), dout.f32(), gate.f32(), branch.f32(), batch, tokens, dim,
                                 pool);
  });
  return handles(call.env(), {dgateId, dbranchId});
}

}  // namespace

void registerAdaLnOps(Napi::Env env, Napi::Object ops) {
  defineOp(env, ops, "modulate", modulate);
  defineOp(env, ops, "modulateBackward", modulateBackward);
  defineOp(env, ops, "gatedResidual", gatedResidual);
  defineOp(env, ops, "gatedResidualBackward", gatedResidualBackward);
}

}  // namespace selfe::napi
