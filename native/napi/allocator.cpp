#include "allocator.h"

#include <cstdlib>
#include <iterator>

namespace selfe::napi {

namespace {
constexpr size_t kAlignment = 64;
}

SystemMemory hostMemory() {
  return SystemMemory{[](size_t bytes) { return std::aligned_alloc(kAlignment, bytes); }, [](void* ptr) { std::free(ptr); }};
}

CachingAllocator::CachingAllocator(int64_t limitBytes, std::function<void()> synchronize, SystemMemory system)
    : synchronize_(std::move(synchronize)), system_(std::move(system)) {
  stats_.limitBytes = limitBytes;
}

CachingAllocator::~CachingAllocator() { releaseCached(); }

// Small blocks round to 512 B, large ones to 1/8 of their power of two, so reuse finds a fit without
// wasting more than 12.5%.
size_t CachingAllocator::roundSize(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes <= (1u << 20)) return (bytes + 511) & ~size_t{511};
  size_t power = 1u << 20;
  while (power < bytes) power <<= 1;
  const size_t step = power / 8;
  return (bytes + step - 1) / step * step;
}

void* CachingAllocator::allocate(size_t bytes, size_t* rounded) {
  const size_t size = roundSize(bytes);
  *rounded = size;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // A size's list stays when its last block is taken, so that a block taken and given back every step costs
    // no map node and no list growth, unless a search meets the empty list meanwhile: empty lists met on the
    // way to a fit (the request's own size too) are dropped, so that sizes seen once (the critique's rows
    // vary) never lengthen the search.
    auto it = free_.lower_bound(size);
    while (it != free_.end() && it->first <= 2 * size && it->second.empty()) it = free_.erase(it);
    if (it != free_.end() && it->first <= 2 * size) {
      // The block keeps its own size: that is what goes back to the cache when the storage dies.
      const size_t block = it->first;
      void* ptr = it->second.back().ptr;
      it->second.pop_back();
      *rounded = block;
      stats_.cachedBytes -= static_cast<int64_t>(block);
      stats_.liveBytes += static_cast<int64_t>(block);
      if (stats_.liveBytes > stats_.peakBytes) stats_.peakBytes = stats_.liveBytes;
      return ptr;
    }
  }
  const auto cached = [this] { return stats().cachedBytes > 0; };
  if (!fits(size) && cached()) emptyCache();
  if (!fits(size)) return nullptr;
  void* ptr = system_.allocate(size);
  // Refused by the system: this cache, and whatever else synchronize_ gives back (CUDA's temporaries), may free it.
  if (ptr == nullptr && (cached() || synchronize_)) {
    emptyCache();
    ptr = system_.allocate(size);
  }
  if (ptr == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.systemAllocs;
  stats_.liveBytes += static_cast<int64_t>(size);
  if (stats_.liveBytes > stats_.peakBytes) stats_.peakBytes = stats_.liveBytes;
  return ptr;
}

bool CachingAllocator::fits(size_t size) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_.limitBytes == 0 || stats_.liveBytes + stats_.cachedBytes + static_cast<int64_t>(size) <= stats_.limitBytes;
}

void CachingAllocator::deallocate(void* ptr, size_t rounded, uint64_t position) {
  std::lock_guard<std::mutex> lock(mutex_);
  free_[rounded].push_back(Cached{ptr, position});
  stats_.liveBytes -= static_cast<int64_t>(rounded);
  stats_.cachedBytes += static_cast<int64_t>(rounded);
}

void CachingAllocator::emptyCache() {
  if (synchronize_) synchronize_();
  std::lock_guard<std::mutex> lock(mutex_);
  releaseCached();
}

int64_t CachingAllocator::releaseCachedBefore(uint64_t position) {
  std::vector<void*> freed;
  int64_t released = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = free_.begin(); it != free_.end();) {
      auto& blocks = it->second;
      for (size_t i = blocks.size(); i-- > 0;) {
        if (blocks[i].position >= position) continue;
        freed.push_back(blocks[i].ptr);
        released += static_cast<int64_t>(it->first);
        blocks.erase(blocks.begin() + static_cast<std::ptrdiff_t>(i));
      }
      it = blocks.empty() ? free_.erase(it) : std::next(it);
    }
    stats_.cachedBytes -= released;
  }
  // Outside the lock: cudaFree waits for the device, and the JS thread allocates meanwhile.
  for (void* ptr : freed) system_.free(ptr);
  return released;
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

// With the mutex held (or from the destructor).
void CachingAllocator::releaseCached() {
  for (auto& [size, blocks] : free_)
    for (const Cached& block : blocks) system_.free(block.ptr);
  free_.clear();
  stats_.cachedBytes = 0;
}

}  // namespace selfe::napi
