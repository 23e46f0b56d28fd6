// Bindings: gelu, silu (x) and geluBackward, siluBackward (dy, x) -> dx.
#include "call.h"
#include "ops.h"
#include "selfe/kernels/activation.h"

namespace selfe::napi {

namespace {

using Forward = void (*)(float*, const float*, int64_t, cpu::Stream);
using Backward = void (*)(float*, const float*, const float*, int64_t, cpu::Stream);

Napi::Value forward(Call& call, Forward kernel, const char* name) {
  const TensorRef x = call.tensor(1, "x");
  call.expectDtype(x, DType::F32, "x");
  TensorRef y;
  const double id = call.output(x.shape, DType::F32, &y);
  call.device().launch(name, [=](cpu::Pool& pool) { kernel(y.f32(), x.f32(), x.numel(), pool); });
  return Napi::Number::New(call.env(), id);
}

Napi::Value backward(Call& call, Backward kernel, const char* name) {
  const TensorRef dy = call.tensor(1, "dy");
  const TensorRef x = call.tensor(2, "x");
  call.expectDtype(dy, DType::F32, "dy");
  call.expectDtype(x, DType::F32, "x");
  call.expectShape(dy, x.shape, "dy");
  TensorRef dx;
  const double id = call.output(x.shape, DType::F32, &dx);
  call.device().launch(name, [=](cpu::Pool& pool) { kernel(dx.f32(), dy.f32(), x.f32(), x.numel(), pool); });
  return Napi::Number::New(call.env(), id);
}

Napi::Value gelu(Call& call) { return forward(call, cpu::gelu_forward, "gelu"); }
Napi::Value silu(Call& call) { return forward(call, cpu::silu_forward, "silu"); }
Napi::Value geluBackward(Call& call) { return backward(call, cpu::gelu_backward, "geluBackward"); }
Napi::Value siluBackward(Call& call) { return backward(call, cpu::silu_backward, "siluBackward"); }

}  // namespace

void registerActivationOps(Napi::Env env, Napi::Object ops) {
  defineOp(env, ops, "gelu", gelu);
  defineOp(env, ops, "silu", silu);
  defineOp(env, ops, "geluBackward", geluBackward);
  defineOp(env, ops, "siluBackward", siluBackward);
}

}  // namespace selfe::napi
