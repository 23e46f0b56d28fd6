#include "cuda_stream.h"

#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <set>

namespace selfe::napi {

namespace {
// The device each thread last made current, so launches skip a cudaSetDevice that changes nothing.
thread_local int currentOrdinal = -1;

std::string errorText(cudaError_t error) { return cudaGetErrorString(error); }

// Queries that answer "not ready" must not leave that answer behind for the next launch check.
void clearNotReady(cudaError_t error) {
  if (error == cudaErrorNotReady) cudaGetLastError();
}

// The devices open now, whose threads stopAtExit stops.
std::mutex openMutex;
std::set<CudaStream*>& openStreams() {
  // Never destroyed: stopAtExit, registered before the first use, runs after any static's destructor would.
  static auto* streams = new std::set<CudaStream*>;
  return *streams;
}

cuda::Error asError(cudaError_t error, const std::string& what) {
  const auto kind = error == cudaErrorMemoryAllocation ? cuda::Error::Kind::OutOfMemory : cuda::Error::Kind::Device;
  return cuda::Error(kind, what + ": " + errorText(error));
}
}  // namespace

int CudaStream::deviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

CudaStream::CudaStream(int ordinal, int64_t memoryLimitBytes, CudaChoices choices) : choices_(choices) {
  int count = 0;
  const cudaError_t found = cudaGetDeviceCount(&count);
  if (found != cudaSuccess) {
    cudaGetLastError();
    throw OpError(ErrorCode::Device, "Device", "no CUDA device is usable: " + errorText(found));
  }
  if (ordinal >= count)
    throw OpError(ErrorCode::Device, "Device",
                  "CUDA device " + std::to_string(ordinal) + " does not exist (" + std::to_string(count) + " found)");
  context_.ordinal = ordinal;
  context_.tensorCoreAttention = choices.tensorCoreAttention;
  context_.wgmmaAttention = choices.wgmmaAttention;
  context_.timedGemmAlgorithms = choices.timedGemmAlgorithms;
  context_.runToRun = choices.runToRun;
  try {
    const auto need = [](cudaError_t error, const char* what) {
      if (error != cudaSuccess) throw asError(error, what);
    };
    need(cudaSetDevice(ordinal), "cudaSetDevice");
    currentOrdinal = ordinal;
    cudaDeviceProp properties{};
    need(cudaGetDeviceProperties(&properties, ordinal), "cudaGetDeviceProperties");
    context_.smCount = properties.multiProcessorCount;
    context_.maxSharedPerBlock = properties.sharedMemPerBlockOptin;
    context_.runsSm90a = properties.major == 9 && properties.minor == 0;
    cudaStream_t stream = nullptr;
    need(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    stream_.handle = stream;
    need(cudaHostAlloc(reinterpret_cast<void**>(&status_), sizeof(cuda::DeviceStatus), cudaHostAllocMapped),
         "failure record");
    std::memset(status_, 0, sizeof(cuda::DeviceStatus));
    need(cudaHostGetDevicePointer(reinterpret_cast<void**>(&context_.status), status_, 0), "failure record");
    const int device = ordinal;
    const SystemMemory deviceMemory{[device](size_t bytes) -> void* {
                                      void* ptr = nullptr;
                                      cudaSetDevice(device);
                                      if (cudaMalloc(&ptr, bytes) == cudaSuccess) return ptr;
                                      cudaGetLastError();  // an allocation failure is not sticky
                                      return nullptr;
                                    },
                                    [device](void* ptr) {
                                      cudaSetDevice(device);
                                      cudaFree(ptr);
                                    }};
    // A tensor that does not fit empties the kernel temporaries' cache too (after the queue and the stream).
    memory_ = std::make_unique<CachingAllocator>(memoryLimitBytes, [this] { emptyScratchCache(); }, deviceMemory);
    // Emptied on the launch thread itself, which has made every launch before: the stream alone is waited for.
    scratch_ = std::make_unique<CachingAllocator>(
        0,
        [this] {
          if (cudaStreamSynchronize(stream_.handle) != cudaSuccess) cudaGetLastError();
        },
        deviceMemory);
    pinned_ = std::make_shared<CachingAllocator>(
        0, nullptr, SystemMemory{[](size_t bytes) -> void* {
                                   void* ptr = nullptr;
                                   if (cudaHostAlloc(&ptr, bytes, cudaHostAllocPortable) == cudaSuccess) return ptr;
                                   cudaGetLastError();
                                   return nullptr;
                                 },
                                 [](void* ptr) { cudaFreeHost(ptr); }});
    context_.scratch = this;
    context_.gemm = cuda::createGemmState(ordinal, choices.gemmWorkspaceBytes);
    helper_ = std::thread([this] { completionLoop(); });
    // process.exit() runs no environment cleanup hooks: the threads of devices left open would go on launching
    // while the runtime is torn down. Registered after the runtime's own (it is initialised by now), so it runs first.
    static std::once_flag registered;
    std::call_once(registered, [] { std::atexit(&CudaStream::stopAtExit); });
    std::lock_guard<std::mutex> lock(openMutex);
    openStreams().insert(this);
  } catch (const cuda::Error& error) {
    shutdown();
    throw OpError(ErrorCode::Device, "Device", std::string("cannot open CUDA device ") + std::to_string(ordinal) + ": " + error.what());
  }
}

CudaStream::~CudaStream() { shutdown(); }

void CudaStream::makeCurrent() {
  if (currentOrdinal == context_.ordinal) return;
  cudaSetDevice(context_.ordinal);
  currentOrdinal = context_.ordinal;
}

void CudaStream::recordFailure(const char* op, const cuda::Error& error) {
  const std::string failure = std::string(op) + ": " + error.what();
  launcher_.fail(failure);
  std::lock_guard<std::mutex> lock(mutex_);
  if (failure_.empty()) failure_ = failure;
  if (!launchFailed_.load(std::memory_order_relaxed)) launchOutOfMemory_ = error.kind() == cuda::Error::Kind::OutOfMemory;
  launchFailed_.store(true, std::memory_order_release);
}

void CudaStream::throwIfFailed(const char* op) {
  if (!launchFailed_.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  throw OpError(launchOutOfMemory_ ? ErrorCode::OutOfMemory : ErrorCode::Device, op,
                "an earlier launch on this device failed, so nothing more runs on it: " + failure_);
}

CUevent_st* CudaStream::recordEvent() {
  cudaEvent_t event = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!freeEvents_.empty()) {
      event = freeEvents_.back();
      freeEvents_.pop_back();
    }
  }
  if (event == nullptr) {
    // Blocking sync: the helper thread sleeps in cudaEventSynchronize instead of spinning.
    const cudaError_t created = cudaEventCreateWithFlags(&event, cudaEventDisableTiming | cudaEventBlockingSync);
    if (created != cudaSuccess) throw asError(created, "cudaEventCreate");
  }
  const cudaError_t recorded = cudaEventRecord(event, stream_.handle);
  if (recorded != cudaSuccess) {
    recycleEvent(event);
    throw asError(recorded, "cudaEventRecord");
  }
  return event;
}

void CudaStream::recycleEvent(CUevent_st* event) {
  std::lock_guard<std::mutex> lock(mutex_);
  freeEvents_.push_back(event);
}

// Staging blocks of finished uploads go back to the pinned cache (on the JS thread, which alone uses it). A
// block without an event is one whose copy never ran.
void CudaStream::reapStaging() {
  std::lock_guard<std::mutex> lock(stagingMutex_);
  while (!staging_.empty()) {
    const PendingStaging& front = staging_.front();
    if (front.event != nullptr) {
      const cudaError_t state = cudaEventQuery(front.event);
      clearNotReady(state);
      if (state == cudaErrorNotReady) return;
      recycleEvent(front.event);
    }
    pinned_->deallocate(front.block, front.rounded);
    staging_.pop_front();
  }
}

void CudaStream::upload(void* dst, const void* src, size_t hostBytes, bool toBf16, const char* op) {
  throwIfFailed(op);
  reapStaging();
  const size_t deviceBytes = toBf16 ? hostBytes / 2 : hostBytes;
  if (deviceBytes == 0) return;
  size_t rounded = 0;
  void* block = pinned_->allocate(deviceBytes, &rounded);
  if (block == nullptr)
    throw OpError(ErrorCode::OutOfMemory, op, "cannot allocate " + std::to_string(deviceBytes) + " bytes of pinned staging memory");
  // The JS array is valid during this call only: its bytes are staged now, the copy is queued.
  if (toBf16) {
    const auto* values = static_cast<const float*>(src);
    auto* out = static_cast<bf16*>(block);
    for (size_t i = 0; i < deviceBytes / 2; ++i) out[i] = bf16FromFloat(values[i]);
  } else {
    std::memcpy(block, src, deviceBytes);
  }
  // A completion, so that it runs after a failure too and the block is handed back.
  launcher_.pushCompletion(op, [this, dst, block, deviceBytes, rounded, op](const std::string& failure) {
    bool copying = false;
    CUevent_st* event = nullptr;
    if (failure.empty()) {
      makeCurrent();
      try {
        const cudaError_t copied = cudaMemcpyAsync(dst, block, deviceBytes, cudaMemcpyHostToDevice, stream_.handle);
        if (copied != cudaSuccess) throw asError(copied, "upload");
        copying = true;
        event = recordEvent();
      } catch (const cuda::Error& error) {
        recordFailure(op, error);
        // A copy that may still read the block keeps it lent (the context is broken then).
        if (copying) return;
      }
    }
    std::lock_guard<std::mutex> lock(stagingMutex_);
    staging_.push_back(PendingStaging{event, block, rounded});
  });
}

std::function<void()> CudaStream::download(const void* src, size_t bytes, Done done, const char* op) {
  reapStaging();
  size_t rounded = 0;
  void* block = pinned_->allocate(bytes, &rounded);
  if (block == nullptr)
    throw OpError(ErrorCode::OutOfMemory, op, "cannot allocate " + std::to_string(bytes) + " bytes of pinned staging memory");
  // A copy that may still write the block keeps it lent (the context is broken then).
  auto copying = std::make_shared<std::atomic<bool>>(false);
  std::function<void()> release = [pinned = pinned_, block, rounded, copying] {
    if (!copying->load()) pinned->deallocate(block, rounded);
  };
  launcher_.pushCompletion(op, [this, src, bytes, block, op, copying, done = std::move(done)](const std::string& failure) {
    if (!failure.empty()) return completeFailed(failure, [done, block](const std::string& f) { done(f, block); });
    makeCurrent();
    try {
      if (bytes > 0) {
        const cudaError_t copied = cudaMemcpyAsync(block, src, bytes, cudaMemcpyDeviceToHost, stream_.handle);
        if (copied != cudaSuccess) throw asError(copied, "read");
        copying->store(true);
      }
      CUevent_st* event = recordEvent();
      copying->store(false);
      complete(event, [done, block](const std::string& reached) { done(reached, block); });
    } catch (const cuda::Error& error) {
      recordFailure(op, error);
      completeFailed(this->failure(), [done, block](const std::string& f) { done(f, block); });
    }
  });
  return release;
}

void CudaStream::whenReached(std::function<void(const std::string&)> done, const char* op) {
  launcher_.pushCompletion(op, [this, op, done = std::move(done)](const std::string& failure) {
    if (!failure.empty()) return completeFailed(failure, done);
    makeCurrent();
    try {
      complete(recordEvent(), done);
    } catch (const cuda::Error& error) {
      recordFailure(op, error);
      completeFailed(this->failure(), done);
    }
  });
}

// A completion that failed before its event: the helper thread still calls it in queue order, after the reads
// and syncs queued before it have completed.
void CudaStream::completeFailed(const std::string& failure, std::function<void(const std::string&)> done) {
  complete(nullptr, [failure, done = std::move(done)](const std::string&) { done(failure); });
}

void CudaStream::complete(CUevent_st* event, std::function<void(const std::string&)> done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Called from a completion on the launch thread: the item running is the completion itself.
    completions_.push_back(Completion{event, std::move(done), launcher_.running()});
  }
  wake_.notify_one();
}

void CudaStream::synchronize() {
  launcher_.drain();
  makeCurrent();
  const cudaError_t error = cudaStreamSynchronize(stream_.handle);
  if (error != cudaSuccess) cudaGetLastError();
}

AllocatorStats CudaStream::stats() {
  AllocatorStats total = memory_->stats();
  std::lock_guard<std::mutex> lock(scratchMutex_);
  total.cachedBytes += scratch_->stats().cachedBytes;
  total.systemAllocs += scratch_->stats().systemAllocs;
  return total;
}

void CudaStream::emptyScratchCache() {
  // Nothing is queued while the JS thread is here, so after the drain the launch thread holds no temporary.
  synchronize();
  std::lock_guard<std::mutex> lock(scratchMutex_);
  scratch_->emptyCache();
}

std::string CudaStream::failure() {
  std::lock_guard<std::mutex> lock(mutex_);
  return failure_.empty() ? asyncFailure_ : failure_;
}

int64_t CudaStream::pinnedBytes() const {
  const AllocatorStats& s = pinned_->stats();
  return s.liveBytes + s.cachedBytes;
}

// The in-kernel failure record as a message in the CPU backend's words: "" when none, or when the launch that
// wrote it was queued after `before` (a completion's position).
std::string CudaStream::statusFailure(uint64_t before) {
  const volatile cuda::DeviceStatus* status = status_;
  const int32_t code = status->code;
  if (code == cuda::kStatusNone || code == cuda::kStatusWriting || status->launch >= before) return "";
  const int64_t id = status->values[0], position = status->values[1], vocab = status->values[2];
  const char* op = code == cuda::kStatusEmbeddingBackwardId ? "embeddingBackward" : "embedding";
  return std::string(op) + ": id " + std::to_string(id) + " at position " + std::to_string(position) +
         " is outside the vocabulary [0, " + std::to_string(vocab) + ")";
}

void CudaStream::completionLoop() {
  cudaSetDevice(context_.ordinal);
  currentOrdinal = context_.ordinal;
  for (;;) {
    Completion item;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stop_ || !completions_.empty(); });
      if (completions_.empty()) return;  // stopping, and nothing is left to complete
      item = std::move(completions_.front());
      completions_.pop_front();
      busy_ = true;
    }
    const cudaError_t error = item.event == nullptr ? cudaSuccess : cudaEventSynchronize(item.event);
    std::string failure;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // Only what the stream met up to this event: a launch that failed after it was queued is not this one's.
      if (error != cudaSuccess && asyncFailure_.empty())
        asyncFailure_ = "a kernel failed on the device (CUDA reports faults asynchronously, so the op is not known; "
                   "CUDA_LAUNCH_BLOCKING=1 finds it): " + errorText(error);
      if (asyncFailure_.empty()) asyncFailure_ = statusFailure(item.position);
      failure = asyncFailure_;
    }
    item.done(failure);
    std::lock_guard<std::mutex> lock(mutex_);
    if (item.event != nullptr) freeEvents_.push_back(item.event);
    busy_ = false;
  }
}

void* CudaStream::allocate(size_t bytes, size_t* rounded) {
  {
    std::lock_guard<std::mutex> lock(scratchMutex_);
    if (void* ptr = scratch_->allocate(bytes, rounded)) return ptr;
  }
  // The device is full. The tensors' cached blocks released before the running launch was queued have had their
  // last users launched; once the stream has run those, the blocks can go back to the system.
  if (cudaStreamSynchronize(stream_.handle) != cudaSuccess) cudaGetLastError();
  if (memory_->releaseCachedBefore(launcher_.running()) == 0) return nullptr;
  std::lock_guard<std::mutex> lock(scratchMutex_);
  return scratch_->allocate(bytes, rounded);
}

void CudaStream::release(void* ptr, size_t rounded) {
  std::lock_guard<std::mutex> lock(scratchMutex_);
  scratch_->deallocate(ptr, rounded);
}

void CudaStream::stopAtExit() {
  std::lock_guard<std::mutex> lock(openMutex);
  for (CudaStream* stream : openStreams()) {
    // Nobody will see what is still queued.
    stream->launcher_.abandon();
    stream->stopThreads();
  }
}

// Runs what is queued, then stops the launch thread, then the helper once it has completed every read and sync.
// (At exit, the thread that called exit() may be one of them: it is not waited for.)
void CudaStream::stopThreads() {
  launcher_.shutdown();
  if (helper_.joinable() && helper_.get_id() != std::this_thread::get_id()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    helper_.join();
  }
}

void CudaStream::shutdown() {
  if (shutDown_) return;
  shutDown_ = true;
  {
    std::lock_guard<std::mutex> lock(openMutex);
    openStreams().erase(this);
  }
  stopThreads();
  if (stream_.handle != nullptr) synchronize();
  while (!staging_.empty()) {
    pinned_->deallocate(staging_.front().block, staging_.front().rounded);
    if (staging_.front().event != nullptr) recycleEvent(staging_.front().event);
    staging_.pop_front();
  }
  if (memory_) memory_->emptyCache();
  if (scratch_) scratch_->emptyCache();
  if (pinned_) pinned_->emptyCache();
  if (context_.gemm != nullptr) {
    cuda::destroyGemmState(context_.gemm);
    context_.gemm = nullptr;
  }
  for (CUevent_st* event : freeEvents_) cudaEventDestroy(event);
  freeEvents_.clear();
  if (status_ != nullptr) {
    cudaFreeHost(status_);
    status_ = nullptr;
  }
  if (stream_.handle != nullptr) {
    cudaStreamDestroy(stream_.handle);
    stream_.handle = nullptr;
  }
}

}  // namespace selfe::napi
