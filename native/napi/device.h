// A compute device as JS sees it: tensor handles (numbers), a caching allocator and an in-order stream, on
// the CPU backend (a worker thread drains a queue) or, where built, the CUDA backend (a launch thread drains
// a queue into a CUDA stream).
// Handles are generation-tagged slot indices, so a released or foreign handle is reported, never followed.
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../cpu/pool.h"
#include "allocator.h"
#include "errors.h"
#include "selfe/dtype.h"
#include "shape.h"
#include "work_queue.h"
#ifdef SELFE_WITH_CUDA
#include "cuda_stream.h"
#endif

namespace selfe::napi {

// A live tensor as an op binding sees it after validation: enough to launch work, nothing to dangle.
struct TensorRef {
  void* data;
  Shape shape;
  DType dtype;
  int64_t numel() const { return shape.numel(); }
  float* f32() const { return static_cast<float*>(data); }
  int32_t* i32() const { return static_cast<int32_t*>(data); }
  // The storage as elements of T (float or bf16), for ops written once for both storage types.
  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }
};

// The storage type an op body is instantiated for: work(stream, Element<T>{}) with T = float or bf16.
template <class T>
struct Element {
  using type = T;
};

// Whether an op body runs for bf16 storage (for the few steps whose launchers differ by name).
template <class T>
constexpr bool isBf16 = std::is_same_v<T, bf16>;

enum class Backend { Cpu, Cuda };

// Marks the JS objects that wrap a Device of this loaded copy of the addon, so that an op can tell its device
// argument is one (Call::anyDevice). Each copy has its own: type tags are the isolate's, and a Device made by
// another copy (another build or version of selfe in the process) has another layout.
const napi_type_tag& deviceTypeTag();

class ReadTracker;

class Device : public Napi::ObjectWrap<Device> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Device(const Napi::CallbackInfo& info);
  ~Device() override;

  bool isCuda() const { return backend_ == Backend::Cuda; }

  // Resolves a JS handle; throws OpError naming `op` and `arg` when it is malformed, stale or released.
  TensorRef lookup(const Napi::Value& handle, const char* op, const char* arg);
  // Allocates a tensor; the returned handle is what JS receives.
  double create(const Shape& shape, DType dtype, const char* op, TensorRef* out);
  // A second handle on the same storage with another shape of the same size.
  double view(const Napi::Value& handle, const Shape& shape, const char* op);
  void release(const Napi::Value& handle, const char* op);
  // Releases every handle of a JS array; all are checked (live, listed once) before any is released.
  void releaseAll(const Napi::Array& handles, const char* op);

  // Enqueues work(stream) on the device's stream: stream is cpu::Pool& (the CPU worker runs it later) or
  // cuda::Stream (the launch thread runs it later, enqueuing kernels). Either way `work` runs after the call
  // returns, so it captures by value. Kernel calls inside `work` are written unqualified and resolve to the
  // backend's launcher by argument-dependent lookup on the stream's type.
  template <class Work>
  void launch(const char* op, Work&& work) {
#ifdef SELFE_WITH_CUDA
    if (cuda_ != nullptr) {
      cuda_->launch(op, [work = std::forward<Work>(work)](cuda::Stream stream) mutable { work(stream); });
      return;
    }
#endif
    enqueueCpu(op, std::forward<Work>(work));
  }
  // As launch, for ops over f32 or bf16 storage: work(stream, Element<T>{}). bf16 exists only on CUDA
  // devices (the CPU backend refuses to allocate it), so the CPU path is always float.
  template <class Work>
  void launchFloating(const char* op, DType dtype, Work&& work) {
#ifdef SELFE_WITH_CUDA
    if (cuda_ != nullptr) {
      cuda_->launch(op, [dtype, work = std::forward<Work>(work)](cuda::Stream stream) mutable {
        if (dtype == DType::BF16)
          work(stream, Element<bf16>{});
        else
          work(stream, Element<float>{});
      });
      return;
    }
#endif
    (void)dtype;
    enqueueCpu(op, [work = std::forward<Work>(work)](cpu::Pool& pool) mutable { work(pool, Element<float>{}); });
  }
  // As launchFloating, for ops over two storage types: work(stream, Element<T>{}, Element<U>{}) for (f32, f32),
  // (bf16, bf16) or (f32, bf16), the last a bf16 tensor beside f32 ones in mixed precision; the binding has
  // refused (bf16, f32) before. The CPU path is (float, float).
  template <class Work>
  void launchFloatingPair(const char* op, DType dtype, DType second, Work&& work) {
#ifdef SELFE_WITH_CUDA
    if (cuda_ != nullptr) {
      cuda_->launch(op, [dtype, second, work = std::forward<Work>(work)](cuda::Stream stream) mutable {
        if (dtype == DType::BF16)
          work(stream, Element<bf16>{}, Element<bf16>{});
        else if (second == DType::BF16)
          work(stream, Element<float>{}, Element<bf16>{});
        else
          work(stream, Element<float>{}, Element<float>{});
      });
      return;
    }
#endif
    (void)dtype;
    (void)second;
    enqueueCpu(op, [work = std::forward<Work>(work)](cpu::Pool& pool) mutable {
      work(pool, Element<float>{}, Element<float>{});
    });
  }
  // Copies host bytes (a JS typed array's, valid during the call) into a tensor in stream order; a bf16
  // tensor receives f32 values, rounded.
  void write(const TensorRef& target, const void* data, size_t bytes, const char* op);
  // Promise of the tensor's contents (bf16 read as f32), resolved once the stream reaches the read.
  Napi::Promise read(Napi::Env env, const TensorRef& source);
  // Promise resolved once the stream has run everything enqueued before it.
  Napi::Promise sync(Napi::Env env);
  Napi::Object stats(Napi::Env env);
  void emptyCache();
  // Drains the stream and frees every tensor; later calls fail with a Disposed error. Idempotent.
  void dispose();
  bool disposed() const { return disposed_; }

 private:
  struct Storage {
    void* ptr;
    size_t bytes;
    int64_t refs;
  };
  struct Slot {
    Storage* storage = nullptr;
    Shape shape;
    DType dtype = DType::F32;
    uint32_t generation = 1;
    bool live = false;
  };

  template <class Work>
  void enqueueCpu(const char* op, Work&& work) {
    cpu::Pool* pool = pool_.get();
    queue_->push(op, [pool, work = std::forward<Work>(work)]() mutable { work(*pool); });
  }
  double newHandle(Storage* storage, const Shape& shape, DType dtype);
  Slot& slotFor(const Napi::Value& handle, const char* op, const char* arg, uint32_t* index);
  void releaseStorage(Storage* storage);
  void releaseSlot(uint32_t index);
  Napi::Promise completion(Napi::Env env, const TensorRef* source);
  void requireOpen(const char* op) const;
  static void onEnvironmentCleanup(void* device);

  Backend backend_ = Backend::Cpu;
  // The allocator tensors come from: allocator_ (CPU) or the CUDA stream's device memory.
  CachingAllocator* memory_ = nullptr;
  std::unique_ptr<CachingAllocator> allocator_;
  std::unique_ptr<cpu::Pool> pool_;
  std::unique_ptr<WorkQueue> queue_;
#ifdef SELFE_WITH_CUDA
  std::unique_ptr<CudaStream> cuda_;
#endif
  std::shared_ptr<ReadTracker> reads_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> freeSlots_;
  int64_t liveTensors_ = 0;
  bool disposed_ = false;
  napi_env env_ = nullptr;
  bool cleanupHookRegistered_ = false;
};

}  // namespace selfe::napi
