// Bindings: classifierScoreDirection, fakeScoreMix, energyPreservingRenorm, velocityTarget,
// selfEvaluationTarget, cfgCombine, energyPreservingCfg. Rows are dim 0 of each tensor.
#include "call.h"
#include "ops.h"
#include "selfe/kernels/score.h"

namespace selfe::napi {

namespace {

// An f32 operand with the same shape as `like`.
TensorRef sameAs(Call& call, size_t i, const char* name, const TensorRef& like) {
  const TensorRef t = call.tensor(i, name);
  call.expectDtype(t, DType::F32, name);
  call.expectShape(t, like.shape, name);
  return t;
}

TensorRef f32(Call& call, size_t i, const char* name) {
  const TensorRef t = call.tensor(i, name);
  call.expectDtype(t, DType::F32, name);
  return t;
}

// An f32 tensor of samples: rows are dim 0, so it needs one.
TensorRef f32Rows(Call& call, size_t i, const char* name) {
  const TensorRef x = f32(call, i, name);
  if (x.shape.rank < 1) call.fail(ErrorCode::Shape, std::string(name) + " must have a row dimension, got shape []");
  return x;
}

TensorRef perRow(Call& call, size_t i, const char* name, const TensorRef& x) {
  const TensorRef t = call.tensor(i, name);
  call.expectDtype(t, DType::F32, name);
  call.expectShape(t, makeShape({x.shape[0]}), name);
  return t;
}

int64_t colsOf(const TensorRef& x) { return x.shape.span(1, x.shape.rank); }

Napi::Value classifierScoreDirection(Call& call) {
  const TensorRef gUncond = f32(call, 1, "gUncond");
  const TensorRef gCond = sameAs(call, 2, "gCond", gUncond);
  TensorRef out;
  const double id = call.output(gUncond.shape, DType::F32, &out);
  call.device().launch("classifierScoreDirection", [=](auto&& stream) {
    classifier_score_direction(out.f32(), gUncond.f32(), gCond.f32(), gUncond.numel(), stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value fakeScoreMix(Call& call) {
  const TensorRef gUncond = f32(call, 1, "gUncond");
  const TensorRef gCond = sameAs(call, 2, "gCond", gUncond);
  const TensorRef gFake = sameAs(call, 3, "gFake", gUncond);
  const float k = static_cast<float>(call.number(4, "k"));
  TensorRef out;
  const double id = call.output(gUncond.shape, DType::F32, &out);
  call.device().launch("fakeScoreMix", [=](auto&& stream) {
    fake_score_mix(out.f32(), gUncond.f32(), gCond.f32(), gFake.f32(), k, gUncond.numel(), stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value energyPreservingRenorm(Call& call) {
  const TensorRef x = f32Rows(call, 1, "x");
  const TensorRef ref = sameAs(call, 2, "ref", x);
  TensorRef out;
  const double id = call.output(x.shape, DType::F32, &out);
  call.device().launch("energyPreservingRenorm", [=](auto&& stream) {
    energy_preserving_renorm(out.f32(), x.f32(), ref.f32(), x.shape[0], colsOf(x), stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value velocityTarget(Call& call) {
  const TensorRef xt = f32Rows(call, 1, "xt");
  const TensorRef xRenorm = sameAs(call, 2, "xRenorm", xt);
  const TensorRef t = perRow(call, 3, "t", xt);
  TensorRef out;
  const double id = call.output(xt.shape, DType::F32, &out);
  call.device().launch("velocityTarget", [=](auto&& stream) {
    velocity_target(out.f32(), xt.f32(), xRenorm.f32(), t.f32(), xt.shape[0], colsOf(xt), stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value selfEvaluationTarget(Call& call) {
  const TensorRef x0 = f32Rows(call, 1, "x0");
  const TensorRef x0Hat = sameAs(call, 2, "x0Hat", x0);
  const TensorRef xt = sameAs(call, 3, "xt", x0);
  const TensorRef t = perRow(call, 4, "t", x0);
  const TensorRef lambda = perRow(call, 5, "lambda", x0);
  const TensorRef gUncond = sameAs(call, 6, "gUncond", x0);
  const TensorRef gCond = sameAs(call, 7, "gCond", x0);
  const std::optional<TensorRef> gFake = call.optionalTensor(8, "gFake");
  const float k = static_cast<float>(call.number(9, "k"));
  if (gFake) {
    call.expectDtype(*gFake, DType::F32, "gFake");
    call.expectShape(*gFake, x0.shape, "gFake");
  }
  TensorRef out;
  const double id = call.output(x0.shape, DType::F32, &out);
  const float* fake = gFake ? gFake->f32() : nullptr;
  call.device().launch("selfEvaluationTarget", [=](auto&& stream) {
    self_evaluation_target(out.f32(), x0.f32(), x0Hat.f32(), xt.f32(), t.f32(), lambda.f32(), gUncond.f32(),
                                gCond.f32(), fake, k, x0.shape[0], colsOf(x0), stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value cfgCombine(Call& call) {
  const TensorRef vUncond = f32(call, 1, "vUncond");
  const TensorRef vCond = sameAs(call, 2, "vCond", vUncond);
  const float omega = static_cast<float>(call.number(3, "omega"));
  TensorRef out;
  const double id = call.output(vUncond.shape, DType::F32, &out);
  call.device().launch("cfgCombine", [=](auto&& stream) {
    cfg_combine(out.f32(), vUncond.f32(), vCond.f32(), omega, vUncond.numel(), stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value energyPreservingCfg(Call& call) {
  const TensorRef vUncond = f32Rows(call, 1, "vUncond");
  const TensorRef vCond = sameAs(call, 2, "vCond", vUncond);
  const float omega = static_cast<float>(call.number(3, "omega"));
  TensorRef out;
  const double id = call.output(vUncond.shape, DType::F32, &out);
  call.device().launch("energyPreservingCfg", [=](auto&& stream) {
    energy_preserving_cfg(out.f32(), vUncond.f32(), vCond.f32(), omega, vUncond.shape[0], colsOf(vUncond), stream);
  });
  return Napi::Number::New(call.env(), id);
}

}  // namespace

void registerScoreOps(Napi::Env env, Napi::Object ops) {
  defineOp(env, ops, "classifierScoreDirection", classifierScoreDirection);
  defineOp(env, ops, "fakeScoreMix", fakeScoreMix);
  defineOp(env, ops, "energyPreservingRenorm", energyPreservingRenorm);
  defineOp(env, ops, "velocityTarget", velocityTarget);
  defineOp(env, ops, "selfEvaluationTarget", selfEvaluationTarget);
  defineOp(env, ops, "cfgCombine", cfgCombine);
  defineOp(env, ops, "energyPreservingCfg", energyPreservingCfg);
}

}  // namespace selfe::napi
