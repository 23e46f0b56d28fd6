// The CUDA backend's stream, as the N-API Device drives it (compiled only with SELFE_WITH_CUDA): one CUDA
// stream per device, fed by one launch thread. The JS thread validates an op, allocates its outputs and queues
// its launch; the launch thread makes the CUDA and cuBLASLt calls in queue order (on an H200 host they cost a
// DiT-S training step more JS-thread time than its JavaScript did; docs/cuda.md, Design: Launch thread). Host reads are
// copied into pinned memory and completed by a helper thread that waits on an event, so the JS thread never
// blocks on the GPU. Like the CPU worker, the first failure is sticky: later launches throw it and later
// reads and syncs reject with it. Host-only header (no cuda_runtime.h), so every binding file can include it.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "allocator.h"
#include "cuda/context.h"
#include "errors.h"
#include "selfe/dtype.h"
#include "work_queue.h"

struct CUevent_st;

namespace selfe::napi {

// The device options that choose between kernels: bf16 attention at head dims 64 and 128 on the tensor-core
// kernels (else CUDA cores), its forward and backward key kernel on warpgroup tensor cores (wgmma, sm_90 only;
// else mma.sync), GEMM plans timed among cuBLASLt's candidates (else the heuristic's first), run-to-run
// determinism (no sums in an order the hardware picks), and the cuBLASLt workspace, which bounds the algorithms
// GEMM plans may pick.
struct CudaChoices {
  bool tensorCoreAttention = true;
  bool wgmmaAttention = false;
  bool timedGemmAlgorithms = false;
  bool runToRun = false;
  size_t gemmWorkspaceBytes = cuda::kDefaultGemmWorkspaceBytes;
};

class CudaStream : public cuda::ScratchPool {
 public:
  // Number of usable CUDA devices (0 without a driver or a device).
  static int deviceCount();

  // Throws OpError(Device, "Device", ...) when the device cannot be used.
  CudaStream(int ordinal, int64_t memoryLimitBytes, CudaChoices choices);
  ~CudaStream() override;
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;

  // Queues body(stream) for the launch thread, which runs it with this device current. `op` must outlive the
  // device (a string literal). Throws the sticky failure, naming the op that failed, once one launch failed:
  // a cuda::Error on the launch thread (SELFE_OUT_OF_MEMORY or SELFE_DEVICE) skips every later launch.
  template <class Body>
  void launch(const char* op, Body&& body) {
    throwIfFailed(op);
    launcher_.push(op, [this, op, body = std::forward<Body>(body)]() mutable {
      makeCurrent();
      context_.launchPosition = launcher_.running();
      try {
        body(stream_);
      } catch (const cuda::Error& error) {
        recordFailure(op, error);
        throw;
      } catch (const std::exception& error) {
        recordFailure(op, cuda::Error(cuda::Error::Kind::Device, error.what()));
        throw;
      } catch (...) {
        recordFailure(op, cuda::Error(cuda::Error::Kind::Device, "unknown failure"));
        throw;
      }
    });
  }
  // How many launches, reads, syncs and uploads have been queued so far: a tensor released now has its last user
  // at or before this position.
  uint64_t queued() const { return launcher_.pushed(); }
  // The launch thread's time making launches, reads, syncs and uploads (blocked in CUDA calls included), and its
  // split by op: the CUDA and cuBLASLt calls each op makes.
  WorkQueue::Times launchTimes() const { return launcher_.times(); }

  // The tensors' memory: used on the JS thread only (kernel temporaries have their own, below).
  CachingAllocator& memory() { return *memory_; }
  // The tensors' allocator statistics with the kernel temporaries' cached bytes and system allocations added.
  AllocatorStats stats();
  // Waits for the launch queue and the stream, then gives the kernel temporaries' cached blocks back (the
  // tensors' allocator calls it before it gives back its own).
  void emptyScratchCache();
  // Each of the next three names its work `op` (a string literal: the launch thread's time by op keeps it).
  // Copies `bytes` host bytes (valid during the call) into device memory in stream order; with
  // `toBf16`, the host holds f32 values and the device receives them rounded to bf16.
  void upload(void* dst, const void* src, size_t hostBytes, bool toBf16, const char* op);
  // Copies the tensor to pinned memory in stream order, then, on the helper thread once the stream got
  // there, calls done(failure, staged bytes) ("" when healthy). `release` must be called (on the JS thread)
  // once the staged bytes are no longer needed.
  using Done = std::function<void(const std::string& failure, const void* staged)>;
  std::function<void()> download(const void* src, size_t bytes, Done done, const char* op);
  // Calls done(failure) on the helper thread once the stream has run everything enqueued so far.
  void whenReached(std::function<void(const std::string&)> done, const char* op);
  // Blocks until every queued launch has been made and the stream is idle (emptyCache, dispose).
  void synchronize();
  std::string failure();
  // Makes this device current on the calling thread (launches and allocations do it themselves).
  void makeCurrent();
  int ordinal() const { return context_.ordinal; }
  CudaChoices choices() const { return choices_; }
  int64_t pinnedBytes() const;
  // Drains the stream and the helper thread, then frees every CUDA resource. Idempotent.
  void shutdown();

  // cuda::ScratchPool: kernel temporaries, on the launch thread, from an allocator of their own. Sharing the
  // tensors' would let a launch take a block the JS thread released while launches still queued read it. When
  // the device is full, the tensors' cached blocks released before the running launch was queued are given
  // back first (their last users have all been launched).
  void* allocate(size_t bytes, size_t* rounded) override;
  void release(void* ptr, size_t rounded) override;

 private:
  struct Completion {
    CUevent_st* event;
    std::function<void(const std::string&)> done;
    // The read's, sync's or upload's queue position: only a failure record written by a launch before it is its failure.
    uint64_t position;
  };
  struct PendingStaging {
    CUevent_st* event;
    void* block;
    size_t rounded;
  };

  // On the launch thread: remembers the first failure (op and reason); later launches throw it, and the launch
  // queue skips what is queued after it.
  void recordFailure(const char* op, const cuda::Error& error);
  void throwIfFailed(const char* op);
  // On the launch thread: an event recorded on the stream now (cuda::Error when that fails).
  CUevent_st* recordEvent();
  // Hands the helper thread an event to wait for and what to call once the stream reached it.
  void complete(CUevent_st* event, std::function<void(const std::string&)> done);
  void completeFailed(const std::string& failure, std::function<void(const std::string&)> done);
  void recycleEvent(CUevent_st* event);
  void reapStaging();
  void completionLoop();
  std::string statusFailure(uint64_t before);

  const CudaChoices choices_;
  cuda::Context context_;
  cuda::Stream stream_{nullptr, &context_};
  cuda::DeviceStatus* status_ = nullptr;  // host address of the pinned failure record
  std::unique_ptr<CachingAllocator> memory_;
  std::mutex scratchMutex_;  // the launch thread allocates; stats and emptyScratchCache read on the JS thread
  std::unique_ptr<CachingAllocator> scratch_;
  std::shared_ptr<CachingAllocator> pinned_;  // the JS thread's alone
  std::mutex stagingMutex_;  // staging_: the launch thread appends, the JS thread reaps
  std::deque<PendingStaging> staging_;
  // Set with failure_ (under mutex_) by the first failed launch: whether it was out of memory.
  std::atomic<bool> launchFailed_{false};
  bool launchOutOfMemory_ = false;
  // Stops the launch threads of the devices still open when the process exits (std::atexit), before the
  // CUDA runtime and the static state their launches use are torn down.
  static void stopAtExit();
  void stopThreads();

  std::mutex mutex_;  // guards everything below (shared with the helper thread)
  std::condition_variable wake_, idle_;
  std::deque<Completion> completions_;
  std::vector<CUevent_st*> freeEvents_;
  std::string failure_;       // the first failed launch, upload, read or sync (on the launch thread)
  std::string asyncFailure_;  // found by the helper thread: a fault, or a failure record a kernel wrote
  bool busy_ = false;
  bool stop_ = false;
  bool shutDown_ = false;
  std::thread helper_;
  // Last, so that it is destroyed (drained and stopped) first.
  WorkQueue launcher_;
};

}  // namespace selfe::napi
