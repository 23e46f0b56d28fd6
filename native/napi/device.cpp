#include "device.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <map>
#include <string_view>
#include <thread>
#include <vector>

#include "call.h"
#include "selfe/kernels/elementwise.h"

namespace selfe::napi {

// A host read or a sync point in flight: resolved on the JS thread once the stream reaches it.
struct ReadRequest {
  Napi::Promise::Deferred deferred;
  Napi::Reference<Napi::ArrayBuffer> buffer;  // empty for a sync point
  DType dtype;
  int64_t numel;
  std::string failure;
  std::shared_ptr<ReadTracker> tracker;
  // Hands the CUDA backend's pinned staging block back (unset on the CPU backend); runs on the JS thread.
  std::function<void()> releaseStaging;
};

void deliverRead(Napi::Env env, Napi::Function, ReadTracker*, ReadRequest* request);

// Owns the thread-safe function that carries completions to the JS thread. It keeps the event loop alive
// only while reads are pending, so a program that forgets to dispose a device still exits.
class ReadTracker {
 public:
  using Tsfn = Napi::TypedThreadSafeFunction<ReadTracker, ReadRequest, deliverRead>;

  explicit ReadTracker(Napi::Env env) : tsfn_(Tsfn::New(env, "selfe-completions", 0, 1, this)) { tsfn_.Unref(env); }

  void started(Napi::Env env) {
    if (pending_++ == 0 && !released_) tsfn_.Ref(env);
  }
  void finished(Napi::Env env) {
    if (--pending_ == 0 && !released_) tsfn_.Unref(env);
  }
  void post(ReadRequest* request) { tsfn_.NonBlockingCall(request); }
  void release() {
    if (released_) return;
    released_ = true;
    tsfn_.Release();
  }
  // At environment teardown Node finalises the function itself; releasing it then would touch freed state.
  void abandon() { released_ = true; }

 private:
  Tsfn tsfn_;
  int64_t pending_ = 0;
  bool released_ = false;
};

void deliverRead(Napi::Env env, Napi::Function, ReadTracker*, ReadRequest* request) {
  std::unique_ptr<ReadRequest> owned(request);
  if (owned->releaseStaging) owned->releaseStaging();
  if (env == nullptr) return;  // the environment is shutting down; nobody awaits the promise any more
  Napi::HandleScope scope(env);
  owned->tracker->finished(env);
  if (!owned->failure.empty()) {
    owned->deferred.Reject(toJsError(env, ErrorCode::Device, "stream", owned->failure).Value());
    return;
  }
  if (owned->buffer.IsEmpty()) {
    owned->deferred.Resolve(env.Undefined());
    return;
  }
  Napi::ArrayBuffer buffer = owned->buffer.Value();
  const size_t length = static_cast<size_t>(owned->numel);
  if (owned->dtype == DType::I32)
    owned->deferred.Resolve(Napi::Int32Array::New(env, length, buffer, 0));
  else
    owned->deferred.Resolve(Napi::Float32Array::New(env, length, buffer, 0));
}

Napi::Function Device::Define(Napi::Env env) { return DefineClass(env, "Device", {}); }

namespace {
int optionInteger(const Napi::Object& options, const char* key, int64_t fallback, int64_t min, int64_t max,
                  int64_t* out) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined()) {
    *out = fallback;
    return 0;
  }
  const double d = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : NAN;
  if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(min) || d > static_cast<double>(max))
    throw OpError(ErrorCode::InvalidArgument, "Device", std::string("option ") + key + " must be an integer in [" +
                                                            std::to_string(min) + ", " + std::to_string(max) + "]");
  *out = static_cast<int64_t>(d);
  return 0;
}

// A CUDA device option naming one of two choices, by default the environment variable `variable` (unset or
// empty: the first choice). A bad value is refused naming the option or the variable it came from.
[[maybe_unused]] std::string choiceOption(const Napi::Object& options, const char* key, const char* variable,
                                          std::initializer_list<const char*> allowed) {
  const std::vector<std::string> names(allowed.begin(), allowed.end());
  std::string choices;  // "a" or "b"; "a", "b" or "c"
  for (size_t i = 0; i < names.size(); ++i) choices += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + ("\"" + names[i] + "\"");
  const Napi::Value value = options.Get(key);
  const bool fromEnv = value.IsUndefined();
  if (!fromEnv && !value.IsString())
    throw OpError(ErrorCode::InvalidArgument, "Device", std::string("option ") + key + " must be " + choices);
  const char* env = std::getenv(variable);
  const std::string choice =
      !fromEnv ? value.As<Napi::String>().Utf8Value() : env != nullptr && *env != '\0' ? env : *allowed.begin();
  for (const std::string& name : names)
    if (choice == name) return choice;
  throw OpError(ErrorCode::InvalidArgument, "Device",
                (fromEnv ? std::string(variable) : std::string("option ") + key) + " must be " + choices + ", got \"" +
                    choice + "\"");
}

// A CUDA device option counting bytes in [0, max], by default the environment variable `variable` (a decimal
// integer; unset or empty: `fallback`). A bad value is refused naming the option or the variable it came from.
[[maybe_unused]] int64_t bytesOption(const Napi::Object& options, const char* key, const char* variable, int64_t fallback,
                                     int64_t max) {
  const char* env = std::getenv(variable);
  int64_t bytes = 0;
  if (!options.Get(key).IsUndefined() || env == nullptr || *env == '\0') {
    optionInteger(options, key, fallback, 0, max, &bytes);
    return bytes;
  }
  const std::string text = env;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), bytes);
  if (error != std::errc() || end != text.data() + text.size() || bytes < 0 || bytes > max)
    throw OpError(ErrorCode::InvalidArgument, "Device",
                  std::string(variable) + " must be an integer in [0, " + std::to_string(max) + "], got \"" + text + "\"");
  return bytes;
}
}  // namespace

const napi_type_tag& deviceTypeTag() {
  // This function's address: distinct for every copy of the addon loaded in the process (none is ever unloaded).
  static const napi_type_tag tag{static_cast<uint64_t>(reinterpret_cast<uintptr_t>(&deviceTypeTag)), 0x5e1fe0de71ce7a95ull};
  return tag;
}

Device::Device(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Device>(info) {
  Napi::Env env = info.Env();
  info.This().As<Napi::Object>().TypeTag(&deviceTypeTag());
  try {
    Napi::Object options = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
    if (info.Length() > 0 && !info[0].IsObject() && !info[0].IsUndefined())
      throw OpError(ErrorCode::InvalidArgument, "Device", "options must be an object");
    const Napi::Value backend = options.Get("backend");
    const std::string backendName = backend.IsString() ? backend.As<Napi::String>().Utf8Value() : "";
    if (!backend.IsUndefined() && backendName != "cpu" && backendName != "cuda")
      throw OpError(ErrorCode::InvalidArgument, "Device", "option backend must be \"cpu\" or \"cuda\"");
    backend_ = backendName == "cuda" ? Backend::Cuda : Backend::Cpu;
    int64_t threads = 0, limit = 0, ordinal = 0;
    const int64_t hardware = std::max<int64_t>(1, std::thread::hardware_concurrency());
    optionInteger(options, "threads", hardware, 1, 1024, &threads);
    optionInteger(options, "memoryLimitBytes", 0, 0, int64_t{1} << 52, &limit);
    optionInteger(options, "deviceIndex", 0, 0, 1023, &ordinal);
    if (backend_ == Backend::Cuda) {
      if (!options.Get("threads").IsUndefined())
        throw OpError(ErrorCode::InvalidArgument, "Device", "option threads applies to the cpu backend only");
#ifdef SELFE_WITH_CUDA
      // Which kernels bf16 attention may use ("auto": warpgroup tensor cores where the GPU runs sm_90a, else mma.sync;
      // "mma.sync": those alone; "simt": CUDA-core kernels only), whether GEMM plans time cuBLASLt's candidates,
      // whether results must repeat from run to run, and how much workspace cuBLASLt gets (native/cuda/context.h).
      const std::string attention = choiceOption(options, "attentionKernels", "SELFE_CUDA_ATTENTION", {"auto", "mma.sync", "simt"});
      const CudaChoices choices{attention != "simt", attention == "auto",
                                choiceOption(options, "gemmAlgorithms", "SELFE_CUDA_GEMM", {"heuristic", "timed"}) == "timed",
                                choiceOption(options, "determinism", "SELFE_CUDA_DETERMINISM", {"not-guaranteed", "run-to-run"}) == "run-to-run",
                                static_cast<size_t>(bytesOption(options, "gemmWorkspaceBytes", "SELFE_CUDA_GEMM_WORKSPACE",
                                                                static_cast<int64_t>(cuda::kDefaultGemmWorkspaceBytes), int64_t{1} << 30))};
      // Timing picks whichever candidate ran quickest this time, which another run may not.
      if (choices.timedGemmAlgorithms && choices.runToRun)
        throw OpError(ErrorCode::InvalidArgument, "Device",
                      "determinism \"run-to-run\" and gemmAlgorithms \"timed\" exclude each other: a timed GEMM plan may "
                      "pick another cuBLASLt algorithm on another run");
      cuda_ = std::make_unique<CudaStream>(static_cast<int>(ordinal), limit, choices);
      memory_ = &cuda_->memory();
#else
      throw OpError(ErrorCode::Device, "Device",
                    "the CUDA backend is not built into this addon (build.backends is \"" SELFE_BUILT_BACKENDS
                    "\"); `npm run build` builds it on a machine with CUDA 13 (nvcc) and cuBLAS(Lt)");
#endif
    } else {
      for (const char* cudaOnly : {"deviceIndex", "attentionKernels", "gemmAlgorithms", "determinism", "gemmWorkspaceBytes"})
        if (!options.Get(cudaOnly).IsUndefined())
          throw OpError(ErrorCode::InvalidArgument, "Device", std::string("option ") + cudaOnly + " applies to the cuda backend only");
      queue_ = std::make_unique<WorkQueue>();
      pool_ = std::make_unique<cpu::Pool>(static_cast<int>(threads));
      WorkQueue* queue = queue_.get();
      allocator_ = std::make_unique<CachingAllocator>(limit, [queue] { queue->drain(); });
      memory_ = allocator_.get();
    }
    reads_ = std::make_shared<ReadTracker>(env);
    // Registered after the tracker's function, so it runs before Node tears that function down (LIFO).
    env_ = env;
    napi_add_env_cleanup_hook(env_, onEnvironmentCleanup, this);
    cleanupHookRegistered_ = true;
  } catch (const OpError& e) {
    throw toJsError(env, e.code(), e.op(), e.reason());
  }
}

Device::~Device() { dispose(); }

void Device::onEnvironmentCleanup(void* device) {
  auto* self = static_cast<Device*>(device);
  // A program that exits without disposing its devices: stop the worker and free memory, but leave the
  // completion function to Node, which is finalising it.
  self->cleanupHookRegistered_ = false;
  self->reads_->abandon();
  self->dispose();
}

void Device::dispose() {
  if (disposed_) return;
  disposed_ = true;
  if (cleanupHookRegistered_) {
    napi_remove_env_cleanup_hook(env_, onEnvironmentCleanup, this);
    cleanupHookRegistered_ = false;
  }
  if (queue_) queue_->shutdown();
#ifdef SELFE_WITH_CUDA
  if (cuda_) cuda_->synchronize();
#endif
  for (Slot& slot : slots_)
    if (slot.live) releaseStorage(slot.storage);
  slots_.clear();
  freeSlots_.clear();
  liveTensors_ = 0;
  memory_->emptyCache();
#ifdef SELFE_WITH_CUDA
  // Completes (and posts) every read still in flight before the completion function is released.
  if (cuda_) cuda_->shutdown();
#endif
  reads_->release();
}

// On CUDA the tensors' allocator empties the kernel temporaries' cache too (CudaStream's constructor).
void Device::emptyCache() { memory_->emptyCache(); }

void Device::requireOpen(const char* op) const {
  if (disposed_) throw OpError(ErrorCode::Disposed, op, "the device was disposed");
}

double Device::newHandle(Storage* storage, const Shape& shape, DType dtype) {
  uint32_t index;
  if (!freeSlots_.empty()) {
    index = freeSlots_.back();
    freeSlots_.pop_back();
  } else {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& slot = slots_[index];
  slot.storage = storage;
  slot.shape = shape;
  slot.dtype = dtype;
  slot.live = true;
  ++liveTensors_;
  return static_cast<double>(slot.generation) * 4294967296.0 + static_cast<double>(index);
}

Device::Slot& Device::slotFor(const Napi::Value& handle, const char* op, const char* arg, uint32_t* index) {
  requireOpen(op);
  if (!handle.IsNumber()) throw OpError(ErrorCode::InvalidArgument, op, std::string(arg) + " must be a tensor handle");
  const double id = handle.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(id) || id < 0 || id != std::floor(id) || id >= 9007199254740992.0)
    throw OpError(ErrorCode::InvalidArgument, op, std::string(arg) + " is not a tensor handle");
  const double generation = std::floor(id / 4294967296.0);
  const double slotIndex = id - generation * 4294967296.0;
  if (slotIndex >= static_cast<double>(slots_.size()))
    throw OpError(ErrorCode::Disposed, op, std::string(arg) + " is not a live tensor of this device");
  Slot& slot = slots_[static_cast<size_t>(slotIndex)];
  if (!slot.live || static_cast<double>(slot.generation) != generation)
    throw OpError(ErrorCode::Disposed, op, std::string(arg) + " was released");
  *index = static_cast<uint32_t>(slotIndex);
  return slot;
}

TensorRef Device::lookup(const Napi::Value& handle, const char* op, const char* arg) {
  uint32_t index;
  Slot& slot = slotFor(handle, op, arg, &index);
  return TensorRef{slot.storage->ptr, slot.shape, slot.dtype};
}

double Device::create(const Shape& shape, DType dtype, const char* op, TensorRef* out) {
  requireOpen(op);
  if (dtype == DType::BF16 && !isCuda()) throw OpError(ErrorCode::DType, op, "bf16 storage needs the CUDA backend");
  const size_t bytes = static_cast<size_t>(shape.numel()) * dtypeSize(dtype);
  size_t rounded = 0;
  void* ptr = memory_->allocate(bytes, &rounded);
  if (ptr == nullptr) {
    const AllocatorStats& s = memory_->stats();
    throw OpError(ErrorCode::OutOfMemory, op,
                  "cannot allocate " + std::to_string(bytes) + " bytes for " + shape.str() + " (" +
                      std::to_string(s.liveBytes) + " bytes live, limit " + std::to_string(s.limitBytes) + ")");
  }
  auto* storage = new Storage{ptr, rounded, 1};
  if (out != nullptr) *out = TensorRef{ptr, shape, dtype};
  return newHandle(storage, shape, dtype);
}

void Device::releaseStorage(Storage* storage) {
  if (--storage->refs > 0) return;
#ifdef SELFE_WITH_CUDA
  // The block's last user is queued at or before the launch queue's current end.
  memory_->deallocate(storage->ptr, storage->bytes, cuda_ ? cuda_->queued() : 0);
#else
  memory_->deallocate(storage->ptr, storage->bytes);
#endif
  delete storage;
}

double Device::view(const Napi::Value& handle, const Shape& shape, const char* op) {
  uint32_t index;
  Slot& slot = slotFor(handle, op, "x", &index);
  if (slot.shape.numel() != shape.numel())
    throw OpError(ErrorCode::Shape, op, "cannot view " + slot.shape.str() + " as " + shape.str() + " (sizes differ)");
  Storage* storage = slot.storage;
  const DType dtype = slot.dtype;
  ++storage->refs;
  return newHandle(storage, shape, dtype);
}

void Device::release(const Napi::Value& handle, const char* op) {
  uint32_t index;
  slotFor(handle, op, "x", &index);
  releaseSlot(index);
}

void Device::releaseAll(const Napi::Array& handles, const char* op) {
  const uint32_t count = handles.Length();
  std::vector<uint32_t> indices(count);
  for (uint32_t i = 0; i < count; ++i) {
    try {
      slotFor(handles.Get(i), op, "it", &indices[i]);
    } catch (const OpError& error) {
      // The position is named only on failure: building it for every handle would cost the whole call.
      throw OpError(error.code(), op, "handles[" + std::to_string(i) + "]: " + error.reason());
    }
  }
  // A handle listed twice would be released, then found stale, halfway through: refused before any release.
  std::vector<uint32_t> sorted = indices;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
    throw OpError(ErrorCode::InvalidArgument, op, "handles lists a tensor twice");
  for (const uint32_t index : indices) releaseSlot(index);
}

void Device::releaseSlot(uint32_t index) {
  Slot& slot = slots_[index];
  Storage* storage = slot.storage;
  slot.live = false;
  slot.storage = nullptr;
  // A new generation makes every copy of the old handle stale.
  slot.generation = slot.generation >= (1u << 20) ? 1 : slot.generation + 1;
  freeSlots_.push_back(index);
  --liveTensors_;
  releaseStorage(storage);
}

void Device::write(const TensorRef& target, const void* data, size_t bytes, const char* op) {
#ifdef SELFE_WITH_CUDA
  if (cuda_) {
    cuda_->upload(target.data, data, bytes, target.dtype == DType::BF16, op);
    return;
  }
#endif
  const auto* begin = static_cast<const uint8_t*>(data);
  auto staged = std::make_shared<std::vector<uint8_t>>(begin, begin + bytes);
  void* dst = target.data;
  enqueueCpu(op, [dst, staged](cpu::Pool& pool) {
    cpu::copy_bytes(dst, staged->data(), static_cast<int64_t>(staged->size()), pool);
  });
}

Napi::Promise Device::completion(Napi::Env env, const TensorRef* source) {
  auto deferred = Napi::Promise::Deferred::New(env);
  auto request = std::make_unique<ReadRequest>(ReadRequest{deferred, {}, DType::F32, 0, {}, reads_, {}});
  void* dst = nullptr;
  const void* src = nullptr;
  size_t bytes = 0;
  if (source != nullptr) {
    bytes = static_cast<size_t>(source->numel()) * dtypeSize(source->dtype);
    // bf16 is read as f32: JS has no bf16 array.
    const size_t hostBytes = source->dtype == DType::BF16 ? bytes * 2 : bytes;
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, hostBytes);
    request->buffer = Napi::Persistent(buffer);
    request->dtype = source->dtype;
    request->numel = source->numel();
    dst = buffer.Data();
    src = source->data;
  }
  std::shared_ptr<ReadTracker> tracker = reads_;
  ReadRequest* pending = request.get();
#ifdef SELFE_WITH_CUDA
  if (cuda_) {
    if (source != nullptr) {
      const DType dtype = source->dtype;
      const int64_t numel = source->numel();
      // The helper thread copies (or widens) the staged bytes into the ArrayBuffer's store.
      pending->releaseStaging = cuda_->download(
          src, bytes,
          [pending, tracker, dst, bytes, dtype, numel](const std::string& failure, const void* staged) {
            pending->failure = failure;
            if (failure.empty() && dtype == DType::BF16) {
              const auto* in = static_cast<const bf16*>(staged);
              auto* out = static_cast<float*>(dst);
              for (int64_t i = 0; i < numel; ++i) out[i] = floatFromBf16(in[i]);
            } else if (failure.empty() && bytes > 0) {
              std::memcpy(dst, staged, bytes);
            }
            tracker->post(pending);
          },
          "read");
    } else {
      cuda_->whenReached(
          [pending, tracker](const std::string& failure) {
            pending->failure = failure;
            tracker->post(pending);
          },
          "sync");
    }
    reads_->started(env);
    request.release();
    return deferred.Promise();
  }
#endif
  reads_->started(env);
  request.release();
  // The worker copies straight into the ArrayBuffer's store, which the Reference above keeps alive.
  queue_->pushCompletion(source != nullptr ? "read" : "sync", [pending, tracker, dst, src, bytes](const std::string& failure) {
    pending->failure = failure;
    if (failure.empty() && bytes > 0) std::memcpy(dst, src, bytes);
    tracker->post(pending);
  });
  return deferred.Promise();
}

Napi::Promise Device::read(Napi::Env env, const TensorRef& source) { return completion(env, &source); }

Napi::Promise Device::sync(Napi::Env env) { return completion(env, nullptr); }

namespace {
// The stream's time by op as [{ op, calls, seconds }], one entry per name (the queue keys literals by address).
Napi::Array streamOps(Napi::Env env, const std::vector<WorkQueue::OpTime>& times) {
  std::map<std::string_view, std::pair<uint64_t, int64_t>> byName;
  for (const WorkQueue::OpTime& time : times) {
    auto& entry = byName[time.op];
    entry.first += time.calls;
    entry.second += time.nanoseconds;
  }
  Napi::Array out = Napi::Array::New(env, byName.size());
  uint32_t i = 0;
  for (const auto& [op, entry] : byName) {
    Napi::Object row = Napi::Object::New(env);
    row.Set("op", Napi::String::New(env, op.data(), op.size()));
    row.Set("calls", Napi::Number::New(env, static_cast<double>(entry.first)));
    row.Set("seconds", Napi::Number::New(env, static_cast<double>(entry.second) * 1e-9));
    out.Set(i++, row);
  }
  return out;
}
}  // namespace

Napi::Object Device::stats(Napi::Env env) {
#ifdef SELFE_WITH_CUDA
  const AllocatorStats s = cuda_ ? cuda_->stats() : memory_->stats();
#else
  const AllocatorStats s = memory_->stats();
#endif
  Napi::Object out = Napi::Object::New(env);
  out.Set("liveTensors", Napi::Number::New(env, static_cast<double>(liveTensors_)));
  out.Set("liveBytes", Napi::Number::New(env, static_cast<double>(s.liveBytes)));
  out.Set("cachedBytes", Napi::Number::New(env, static_cast<double>(s.cachedBytes)));
  out.Set("peakBytes", Napi::Number::New(env, static_cast<double>(s.peakBytes)));
  out.Set("systemAllocs", Napi::Number::New(env, static_cast<double>(s.systemAllocs)));
  out.Set("limitBytes", Napi::Number::New(env, static_cast<double>(s.limitBytes)));
  out.Set("threads", Napi::Number::New(env, pool_ ? pool_->threads() : 0));
#ifdef SELFE_WITH_CUDA
  const WorkQueue::Times times = cuda_ ? cuda_->launchTimes() : queue_->times();
#else
  const WorkQueue::Times times = queue_->times();
#endif
  out.Set("streamBusySeconds", Napi::Number::New(env, static_cast<double>(times.busyNanoseconds) * 1e-9));
  out.Set("streamOps", streamOps(env, times.ops));
  out.Set("backend", Napi::String::New(env, isCuda() ? "cuda" : "cpu"));
#ifdef SELFE_WITH_CUDA
  if (cuda_) {
    out.Set("deviceIndex", Napi::Number::New(env, cuda_->ordinal()));
    out.Set("pinnedBytes", Napi::Number::New(env, static_cast<double>(cuda_->pinnedBytes())));
    const CudaChoices choices = cuda_->choices();
    out.Set("attentionKernels", Napi::String::New(env, !choices.tensorCoreAttention ? "simt" : choices.wgmmaAttention ? "auto" : "mma.sync"));
    out.Set("gemmAlgorithms", Napi::String::New(env, choices.timedGemmAlgorithms ? "timed" : "heuristic"));
    out.Set("determinism", Napi::String::New(env, choices.runToRun ? "run-to-run" : "not-guaranteed"));
    out.Set("gemmWorkspaceBytes", Napi::Number::New(env, static_cast<double>(choices.gemmWorkspaceBytes)));
    out.Set("failure", Napi::String::New(env, cuda_->failure()));
    return out;
  }
#endif
  out.Set("failure", Napi::String::New(env, queue_->failure()));
  return out;
}

}  // namespace selfe::napi
