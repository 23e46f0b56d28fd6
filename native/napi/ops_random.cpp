// Bindings: randomUniform, randomNormal (Philox streams addressed by seed and block offset).
#include "call.h"
#include "ops.h"
#include "selfe/kernels/random.h"

namespace selfe::napi {

namespace {

// Seeds and offsets travel as JS numbers, exact only below 2^53.
constexpr int64_t kMaxExactInteger = (int64_t{1} << 53) - 1;

// kernel(stream, out, n, seed, offset) calls the launcher unqualified, for either backend.
template <class Kernel>
Napi::Value random(Call& call, const char* op, Kernel kernel) {
  const Shape shape = call.shape(1, "shape");
  const uint64_t seed = static_cast<uint64_t>(call.integer(2, "seed", 0, kMaxExactInteger));
  const uint64_t offset = static_cast<uint64_t>(call.integer(3, "offset", 0, kMaxExactInteger));
  TensorRef out;
  const double id = call.output(shape, DType::F32, &out);
  call.device().launch(op, [=](auto&& stream) { kernel(stream, out.f32(), out.numel(), seed, offset); });
  return Napi::Number::New(call.env(), id);
}

Napi::Value randomUniform(Call& call) {
  return random(call, "randomUniform", [](auto&& stream, float* out, int64_t n, uint64_t seed, uint64_t offset) {
    random_uniform(out, n, seed, offset, stream);
  });
}
Napi::Value randomNormal(Call& call) {
  return random(call, "randomNormal", [](auto&& stream, float* out, int64_t n, uint64_t seed, uint64_t offset) {
    random_normal(out, n, seed, offset, stream);
  });
}

}  // namespace

void registerRandomOps(Napi::Env env, Napi::Object ops) {
  defineOp(env, ops, "randomUniform", randomUniform);
  defineOp(env, ops, "randomNormal", randomNormal);
}

}  // namespace selfe::napi
