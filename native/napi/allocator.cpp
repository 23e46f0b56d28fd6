#include "allocator.h"

#include <cstdlib>

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
  auto it = free_.lower_bound(size);
  if (it != free_.end() && it->first <= 2 * size) {
    // The block keeps its own size: that is what goes back to the cache when the storage dies.
    const size_t block = it->first;
    void* ptr = it->second.back();
    it->second.pop_back();
    if (it->second.empty()) free_.erase(it);
    *rounded = block;
    stats_.cachedBytes -= static_cast<int64_t>(block);
    stats_.liveBytes += static_cast<int64_t>(block);
    if (stats_.liveBytes > stats_.peakBytes) stats_.peakBytes = stats_.liveBytes;
    return ptr;
  }
  const auto fits = [&] {
    return stats_.limitBytes == 0 ||
           stats_.liveBytes + stats_.cachedBytes + static_cast<int64_t>(size) <= stats_.limitBytes;
  };
  if (!fits() && stats_.cachedBytes > 0) emptyCache();
  if (!fits()) return nullptr;
  void* ptr = system_.allocate(size);
  if (ptr == nullptr && stats_.cachedBytes > 0) {
    emptyCache();
    ptr = system_.allocate(size);
  }
  if (ptr == nullptr) return nullptr;
  ++stats_.systemAllocs;
  stats_.liveBytes += static_cast<int64_t>(size);
  if (stats_.liveBytes > stats_.peakBytes) stats_.peakBytes = stats_.liveBytes;
  return ptr;
}

void CachingAllocator::deallocate(void* ptr, size_t rounded) {
  free_[rounded].push_back(ptr);
  stats_.liveBytes -= static_cast<int64_t>(rounded);
  stats_.cachedBytes += static_cast<int64_t>(rounded);
}

void CachingAllocator::emptyCache() {
  if (synchronize_) synchronize_();
  releaseCached();
}

void CachingAllocator::releaseCached() {
  for (auto& [size, blocks] : free_)
    for (void* ptr : blocks) system_.free(ptr);
  free_.clear();
  stats_.cachedBytes = 0;
}

}  // namespace selfe::napi
