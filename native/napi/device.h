// A compute device as JS sees it: tensor handles (numbers), a caching allocator and an in-order stream.
// Handles are generation-tagged slot indices, so a released or foreign handle is reported, never followed.
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../cpu/pool.h"
#include "allocator.h"
#include "errors.h"
#include "selfe/dtype.h"
#include "shape.h"
#include "work_queue.h"

namespace selfe::napi {

// A live tensor as an op binding sees it after validation: enough to launch work, nothing to dangle.
struct TensorRef {
  void* data;
  Shape shape;
  DType dtype;
  int64_t numel() const { return shape.numel(); }
  float* f32() const { return static_cast<float*>(data); }
  int32_t* i32() const { return static_cast<int32_t*>(data); }
};

class ReadTracker;

class Device : public Napi::ObjectWrap<Device> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Device(const Napi::CallbackInfo& info);
  ~Device() override;

  // Resolves a JS handle; throws OpError naming `op` and `arg` when it is malformed, stale or released.
  TensorRef lookup(const Napi::Value& handle, const std::string& op, const char* arg);
  // Allocates a tensor; the returned handle is what JS receives.
  double create(const Shape& shape, DType dtype, const std::string& op, TensorRef* out);
  // A second handle on the same storage with another shape of the same size.
  double view(const Napi::Value& handle, const Shape& shape, const std::string& op);
  void release(const Napi::Value& handle, const std::string& op);

  // Enqueues work on the stream; it receives the thread pool its loops may split across.
  template <class Work>
  void launch(const char* op, Work&& work) {
    cpu::Pool* pool = pool_.get();
    queue_->push(op, [pool, work = std::forward<Work>(work)]() mutable { work(*pool); });
  }
  // Copies host bytes into a tensor in stream order (the bytes were already staged by the caller).
  void write(const TensorRef& target, std::shared_ptr<std::vector<uint8_t>> bytes);
  // Promise of the tensor's contents, resolved once the stream reaches the read.
  Napi::Promise read(Napi::Env env, const TensorRef& source);
  // Promise resolved once the stream has run everything enqueued before it.
  Napi::Promise sync(Napi::Env env);
  Napi::Object stats(Napi::Env env);
  void emptyCache() { allocator_->emptyCache(); }
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

  double newHandle(Storage* storage, const Shape& shape, DType dtype);
  Slot& slotFor(const Napi::Value& handle, const std::string& op, const char* arg, uint32_t* index);
  void releaseStorage(Storage* storage);
  Napi::Promise completion(Napi::Env env, const TensorRef* source);
  void requireOpen(const std::string& op) const;
  static void onEnvironmentCleanup(void* device);

  std::unique_ptr<CachingAllocator> allocator_;
  std::unique_ptr<cpu::Pool> pool_;
  std::unique_ptr<WorkQueue> queue_;
  std::shared_ptr<ReadTracker> reads_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> freeSlots_;
  int64_t liveTensors_ = 0;
  bool disposed_ = false;
  napi_env env_ = nullptr;
  bool cleanupHookRegistered_ = false;
};

}  // namespace selfe::napi
