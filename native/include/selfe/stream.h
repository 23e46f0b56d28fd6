// The "stream" argument every kernel launcher takes last. Each backend names its own Stream type, so one
// declaration macro per kernel family yields matching CPU and CUDA signatures.
#pragma once

struct CUstream_st;

namespace selfe::cpu {
class Pool;
using Stream = Pool&;
}  // namespace selfe::cpu

namespace selfe::cuda {
using Stream = CUstream_st*;
}  // namespace selfe::cuda

// Declares a kernel family in both backend namespaces from one list, so the signatures cannot drift.
#define SELFE_DECLARE_FOR_BACKENDS(FAMILY) \
  namespace selfe::cpu {                   \
  FAMILY                                   \
  }                                        \
  namespace selfe::cuda {                  \
  FAMILY                                   \
  }
