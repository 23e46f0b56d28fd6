// One registration function per op family (native/napi/ops_<family>.cpp), called once by addon.cpp.
#pragma once
#include <napi.h>

namespace selfe::napi {

void registerMemoryOps(Napi::Env env, Napi::Object ops);
void registerElementwiseOps(Napi::Env env, Napi::Object ops);
void registerActivationOps(Napi::Env env, Napi::Object ops);
void registerLayerNormOps(Napi::Env env, Napi::Object ops);
void registerAdaLnOps(Napi::Env env, Napi::Object ops);
void registerAttentionOps(Napi::Env env, Napi::Object ops);
void registerMatmulOps(Napi::Env env, Napi::Object ops);
void registerLayoutOps(Napi::Env env, Napi::Object ops);
void registerEmbeddingOps(Napi::Env env, Napi::Object ops);
void registerReduceOps(Napi::Env env, Napi::Object ops);
void registerScoreOps(Napi::Env env, Napi::Object ops);
void registerRandomOps(Napi::Env env, Napi::Object ops);
void registerOptimOps(Napi::Env env, Napi::Object ops);

}  // namespace selfe::napi
