// The CPU backend's "stream" handle: a fixed set of threads that split elementwise and row-wise loops.
// Only the device's worker thread calls parallelFor, one loop at a time, so no loop ever nests or races.
#pragma once
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "selfe/stream.h"

namespace selfe::cpu {

class Pool {
 public:
  explicit Pool(int threads);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  int threads() const { return static_cast<int>(helpers_.size()) + 1; }

  // Calls body(begin, end) over [0, n) in chunks of at least `grain` items, on up to threads() threads.
  template <class Body>
  void parallelFor(int64_t n, int64_t grain, Body&& body) {
    if (n <= 0) return;
    const int64_t maxChunks = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
    const int chunks = static_cast<int>(std::min<int64_t>(threads(), maxChunks));
    if (chunks <= 1) {
      body(int64_t{0}, n);
      return;
    }
    std::function<void(int)> task = [&](int chunk) {
      const int64_t begin = n * chunk / chunks, end = n * (chunk + 1) / chunks;
      body(begin, end);
    };
    run(chunks, task);
  }

 private:
  void run(int chunks, const std::function<void(int)>& task);
  void helperLoop(int index);

  std::vector<std::thread> helpers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* task_ = nullptr;
  int chunks_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
};

}  // namespace selfe::cpu
