// Caching allocator for a device's memory (host memory for the CPU backend, device memory for CUDA, pinned
// host memory for CUDA's staging buffers). Freed blocks go back to per-size free lists at once: with a single
// in-order stream, work that used a block is queued before any work that reuses it, so reuse is safe without
// waiting. Only returning memory to the system needs the stream idle (`synchronize`).
// A request takes the smallest cached block that fits it without wasting more than half of the block, so
// tensors whose sizes vary from step to step (the critique's row count) reuse blocks instead of growing
// the cache with every new size. Thread-safe: on CUDA the JS thread allocates and releases tensors while the
// launch thread, short of memory, may give back cached blocks (releaseCachedBefore).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
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
  // `position`: where the stream's queue stood when the block was released (its last user is queued at or
  // before it); 0 where that does not matter.
  void deallocate(void* ptr, size_t rounded, uint64_t position = 0);
  // Waits for the stream, then gives every cached block back to the system.
  void emptyCache();
  // Gives back the cached blocks released before `position` (the caller has made sure everything queued before
  // it has run); returns their bytes.
  int64_t releaseCachedBefore(uint64_t position);
  AllocatorStats stats() const;

 private:
  struct Cached {
    void* ptr;
    uint64_t position;
  };
  static size_t roundSize(size_t bytes);
  void releaseCached();
  bool fits(size_t size) const;

  std::function<void()> synchronize_;
  SystemMemory system_;
  mutable std::mutex mutex_;  // free_ and stats_; never held while synchronize_ runs
  std::map<size_t, std::vector<Cached>> free_;
  AllocatorStats stats_;
};

}  // namespace selfe::napi
