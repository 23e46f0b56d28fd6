// Per-environment state of the addon (one per Node.js worker or main thread).
#pragma once
#include <napi.h>

namespace selfe::napi {

struct AddonData {
  Napi::FunctionReference deviceConstructor;
};

}  // namespace selfe::napi
