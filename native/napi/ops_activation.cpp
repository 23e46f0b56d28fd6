// Bindings: gelu, silu (x) and geluBackward, siluBackward (dy, x) -> dx; f32, or bf16 on CUDA.
#include "call.h"
#include "ops.h"
#include "selfe/kernels/activation.h"

namespace selfe::napi {

namespace {

// kernel(stream, y, x, n) calls the forward launcher unqualified, for either backend and storage type.
template <class Kernel>
Napi::Value forward(Call& call, const char* name, Kernel kernel) {
  const TensorRef x = call.tensor(1, "x");
  call.expectFloating(x, "x");
  TensorRef y;
  const double id = call.output(x.shape, x.dtype, &y);
  call.device().launchFloating(name, x.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    kernel(stream, y.as<T>(), x.as<T>(), x.numel());
  });
  return Napi::Number::New(call.env(), id);
}

template <class Kernel>
Napi::Value backward(Call& call, const char* name, Kernel kernel) {
  const TensorRef dy = call.tensor(1, "dy");
  const TensorRef x = call.tensor(2, "x");
  call.expectFloating(x, "x");
  call.expectDtype(dy, x.dtype, "dy");
  call.expectShape(dy, x.shape, "dy");
  TensorRef dx;
  const double id = call.output(x.shape, x.dtype, &dx);
  call.device().launchFloating(name, x.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    kernel(stream, dx.as<T>(), dy.as<T>(), x.as<T>(), x.numel());
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value gelu(Call& call) {
  return forward(call, "gelu", [](auto&& stream, auto* y, auto* x, int64_t n) { gelu_forward(y, x, n, stream); });
}
Napi::Value silu(Call& call) {
  return forward(call, "silu", [](auto&& stream, auto* y, auto* x, int64_t n) { silu_forward(y, x, n, stream); });
}
Napi::Value geluBackward(Call& call) {
  return backward(call, "geluBackward",
                  [](auto&& stream, auto* dx, auto* dy, auto* x, int64_t n) { gelu_backward(dx, dy, x, n, stream); });
}
Napi::Value siluBackward(Call& call) {
  return backward(call, "siluBackward",
                  [](auto&& stream, auto* dx, auto* dy, auto* x, int64_t n) { silu_backward(dx, dy, x, n, stream); });
}

}  // namespace

void registerActivationOps(Napi::Env env, Napi::Object ops) {
  defineOp(env, ops, "gelu", gelu);
  defineOp(env, ops, "silu", silu);
  defineOp(env, ops, "geluBackward", geluBackward);
  defineOp(env, ops, "siluBackward", siluBackward);
}

}  // namespace selfe::napi
