// The "stream" argument every kernel launcher takes last. Each backend names its own Stream type, so one
// declaration macro per kernel family yields matching CPU and CUDA signatures. Both Stream types are classes
// of their backend's namespace, so an unqualified kernel call made with one resolves (by argument-dependent
// lookup) to that backend's launcher: the N-API layer writes each op once for both backends.
#pragma once

struct CUstream_st;

namespace selfe::cpu {
class Pool;
using Stream = Pool&;
}  // namespace selfe::cpu

namespace selfe::cuda {
struct Context;
// A CUDA stream and the device context its launchers draw on (cuBLASLt handle and workspace, scratch memory,
// the in-kernel failure record); see native/cuda/context.h. Converts to cudaStream_t for launches.
struct Stream {
  CUstream_st* handle;
  Context* context;
  operator CUstream_st*() const { return handle; }
};
}  // namespace selfe::cuda

// Declares a kernel family in both backend namespaces from one list, so the signatures cannot drift.
#define SELFE_DECLARE_FOR_BACKENDS(FAMILY) \
  namespace selfe::cpu {                   \
  FAMILY                                   \
  }                                        \
  namespace selfe::cuda {                  \
  FAMILY                                   \
  }

// Declares the bf16-storage launchers of a family, which only the CUDA backend has (the CPU backends keep
// no bf16 tensors; they are tested against the f32 CPU kernels on bf16-rounded inputs).
#define SELFE_DECLARE_FOR_CUDA(FAMILY) \
  namespace selfe::cuda {              \
  FAMILY                               \
  }
