// Module entry: exports { Device, ops, build, cudaDeviceCount }. Every op is a function ops.<name>(device,
// ...args) that dispatches on the device's backend.
#include <napi.h>

#include "device.h"
#include "ops.h"

namespace selfe::napi {

namespace {
// Usable CUDA devices: 0 where the CUDA backend was not built, or no driver or GPU is present.
Napi::Value cudaDeviceCount(const Napi::CallbackInfo& info) {
#ifdef SELFE_WITH_CUDA
  return Napi::Number::New(info.Env(), CudaStream::deviceCount());
#else
  return Napi::Number::New(info.Env(), 0);
#endif
}
}  // namespace

Napi::Object init(Napi::Env env, Napi::Object exports) {
  Napi::Function device = Device::Define(env);

  Napi::Object ops = Napi::Object::New(env);
  registerMemoryOps(env, ops);
  registerElementwiseOps(env, ops);
  registerActivationOps(env, ops);
  registerLayerNormOps(env, ops);
  registerAdaLnOps(env, ops);
  registerAttentionOps(env, ops);
  registerMatmulOps(env, ops);
  registerLayoutOps(env, ops);
  registerEmbeddingOps(env, ops);
  registerReduceOps(env, ops);
  registerScoreOps(env, ops);
  registerRandomOps(env, ops);
  registerOptimOps(env, ops);

  Napi::Object build = Napi::Object::New(env);
  build.Set("backends", Napi::String::New(env, SELFE_BUILT_BACKENDS));
#ifdef SELFE_WITH_CUDA
  build.Set("blas", Napi::String::New(env, "openblas,cublaslt"));
#else
  build.Set("blas", Napi::String::New(env, "openblas"));
#endif

  exports.Set("Device", device);
  exports.Set("ops", ops);
  exports.Set("build", build);
  exports.Set("cudaDeviceCount", Napi::Function::New(env, cudaDeviceCount, "cudaDeviceCount"));
  return exports;
}

}  // namespace selfe::napi

static Napi::Object initModule(Napi::Env env, Napi::Object exports) { return selfe::napi::init(env, exports); }

NODE_API_MODULE(selfe_native, initModule)
