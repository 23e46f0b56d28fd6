// What a CUDA launcher reaches through its Stream besides the stream itself: per-device state owned by the
// device that launches (the N-API Device), never global. Host-only C++, so the N-API layer includes it
// without nvcc.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "selfe/stream.h"

namespace selfe::cuda {

// A failure found inside a kernel (an embedding id out of range). The first kernel to find one writes it to
// pinned host memory the device can write; every read or sync of the device queued after that kernel's launch
// reports it (sticky, as on the CPU backend). values[] are the numbers the message quotes; `launch` is the
// launch's queue position (Context::launchPosition), so a read queued before it completes with its data even
// when the kernel has run by the time the read is reported.
enum StatusCode : int32_t { kStatusNone = 0, kStatusWriting = -1, kStatusEmbeddingId = 1, kStatusEmbeddingBackwardId = 2 };
struct DeviceStatus {
  int32_t code;
  int32_t unused;
  int64_t values[3];
  uint64_t launch;
};

// Temporary device memory for one launcher call, from the device's caching allocator. A block goes back as
// soon as the launcher has enqueued the work that uses it: the stream runs in order, so whoever is handed
// the block next runs after that work.
class ScratchPool {
 public:
  virtual ~ScratchPool() = default;
  // nullptr when the device is out of memory.
  virtual void* allocate(size_t bytes, size_t* rounded) = 0;
  virtual void release(void* ptr, size_t rounded) = 0;
};

// cuBLASLt handle, its workspace and the per-shape algorithm cache (matmul.cu, built only with cuBLAS).
struct GemmState;
// The default of the device option gemmWorkspaceBytes: cuBLASLt's recommended workspace on Hopper.
// (PyTorch's cuBLASLt path asks its heuristic with 1 MiB by its source, CUBLASLT_WORKSPACE_SIZE's default.)
constexpr size_t kDefaultGemmWorkspaceBytes = size_t{32} << 20;
// workspaceBytes: the most device memory any algorithm may use; the heuristic is told it and only that much is
// allocated (none at 0: only algorithms that need no workspace run).
GemmState* createGemmState(int ordinal, size_t workspaceBytes);
void destroyGemmState(GemmState* state);

struct Context {
  int ordinal = 0;
  int smCount = 1;
  // Largest dynamic shared memory a block may opt into.
  size_t maxSharedPerBlock = 48 << 10;
  // Device-visible address of the pinned failure record.
  DeviceStatus* status = nullptr;
  // The queue position of the launch being made (set on the launch thread before each launch): what a kernel
  // writes into the failure record as its `launch`.
  uint64_t launchPosition = 0;
  ScratchPool* scratch = nullptr;
  GemmState* gemm = nullptr;
  // Whether bf16 attention at head dims 64 and 128 may use the tensor-core kernels (the device option
  // attentionKernels: "auto" or "mma.sync"), or every attention stays on the CUDA-core kernels ("simt").
  bool tensorCoreAttention = true;
  // Whether bf16 attention's forward and backward key kernel (at head dim 64 past 256 keys, at 128 always) run on
  // warpgroup tensor cores where the device runs the build's sm_90a code (runsSm90a: compute capability 9.0
  // exactly): attentionKernels "auto"; "mma.sync" keeps them on the FlashAttention-2-style kernels.
  bool wgmmaAttention = false;
  bool runsSm90a = false;
  // Whether a GEMM plan times the cuBLASLt heuristic's first candidates on its first call and keeps the
  // quickest (the device option gemmAlgorithms: "timed"), or takes the heuristic's first ("heuristic").
  bool timedGemmAlgorithms = false;
  // Whether every result must be the same from run to run on this GPU (the device option determinism:
  // "run-to-run"): bf16 attention's backward then computes dq in a kernel of its own instead of adding it with
  // atomics, whose order the hardware picks ("not-guaranteed").
  bool runToRun = false;
};

// A CUDA failure as launchers throw it; the N-API layer turns it into SELFE_OUT_OF_MEMORY or SELFE_DEVICE
// carrying the op's name.
class Error : public std::runtime_error {
 public:
  enum class Kind { OutOfMemory, Device };
  Error(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// Scratch memory for one launcher call, handed back when it goes out of scope (after its launches).
class Scratch {
 public:
  Scratch(Stream stream, size_t bytes) : pool_(stream.context->scratch) {
    if (bytes == 0) return;
    ptr_ = pool_->allocate(bytes, &rounded_);
    if (ptr_ == nullptr)
      throw Error(Error::Kind::OutOfMemory, "cannot allocate " + std::to_string(bytes) + " bytes of scratch memory");
  }
  ~Scratch() {
    if (ptr_ != nullptr) pool_->release(ptr_, rounded_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  ScratchPool* pool_;
  void* ptr_ = nullptr;
  size_t rounded_ = 0;
};

}  // namespace selfe::cuda
