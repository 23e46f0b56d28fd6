// Caching allocator for a device's memory (host memory for the CPU backend, device memory for CUDA, pinned
// host memory for CUDA's staging buffers). Freed blocks go back to per-size free lists at once: with a single
// in-order stream, work that used a block is queued before any work that reuses it, so reuse is safe without
// waiting. Only returning memory to the system needs the stream idle (`synchronize`).
// A request takes the smallest cached block that fits it without wasting more than half of the block, so
// tensors whose sizes vary from step to step (the critique's row count) reuse blocks instead of growing
// the cache with every new size.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

namespace selfe::napi {

struct AllocatorStats {
  int64_t liveBytes = 0;     // held by storages in use
  int64_t cachedBytes = 0;   // free blocks kept for reuse
  int64_t peakBytes = 0;     // high-water mark of liveBytes
  int64_t systemAllocs = 0;  // blocks obtained from the system (steady-state training should add none)
  int64_t limitBytes = 0;    // 0 = no limit
};

// Where blocks come from when the cache has none: allocate returns nullptr when the system refuses.
struct SystemMemory {
  std::function<void*(size_t bytes)> allocate;
  std::function<void(void* ptr)> free;
};

// 64-byte aligned host memory (the CPU backend's).
SystemMemory hostMemory();

class CachingAllocator {
 public:
  CachingAllocator(int64_t limitBytes, std::function<void()> synchronize, SystemMemory system = hostMemory());
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Returns nullptr when the limit (or the system) refuses even after the cache was emptied.
  void* allocate(size_t bytes, size_t* rounded);
  void deallocate(void* ptr, size_t rounded);
  // Waits for the stream, then gives every cached block back to the system.
  void emptyCache();
  const AllocatorStats& stats() const { return stats_; }

 private:
  static size_t roundSize(size_t bytes);
  void releaseCached();

  std::function<void()> synchronize_;
  SystemMemory system_;
  std::map<size_t, std::vector<void*>> free_;
  AllocatorStats stats_;
};

}  // namespace selfe::napi
