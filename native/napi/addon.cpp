// Module entry: exports { Device, ops, build }. Every op is a function ops.<name>(device, ...args).
#include <napi.h>

#include "addon_data.h"
#include "device.h"
#include "ops.h"

namespace selfe::napi {

Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  Napi::Function device = Device::Define(env);
  data->deviceConstructor = Napi::Persistent(device);
  env.SetInstanceData<AddonData>(data);

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
  build.Set("blas", Napi::String::New(env, "openblas"));

  exports.Set("Device", device);
  exports.Set("ops", ops);
  exports.Set("build", build);
  return exports;
}

}  // namespace selfe::napi

static Napi::Object initModule(Napi::Env env, Napi::Object exports) { return selfe::napi::init(env, exports); }

NODE_API_MODULE(selfe_native, initModule)
