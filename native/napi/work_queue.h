// The CPU backend's stream: one worker thread runs enqueued work in order, so the JS thread only validates
// and enqueues. Like a CUDA stream, the first failure is sticky: later work is skipped and every completion
// reports the failure (op name and reason) until the device is disposed.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace selfe::napi {

class WorkQueue {
 public:
  using Work = std::function<void()>;
  // Runs on the worker in stream order even after a failure; gets the sticky failure ("" when none).
  using Completion = std::function<void(const std::string& failure)>;

  WorkQueue();
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // `op` names the item in opTimes and failures; it must outlive the queue (a string literal).
  void push(const char* op, Work work);
  void pushCompletion(const char* op, Completion completion);
  // How many items have been pushed so far (the last one's position; positions count from 1).
  uint64_t pushed() const { return pushed_.load(std::memory_order_acquire); }
  // On the worker: the position of the item it is running. Every item before it has run.
  uint64_t running() const { return running_.load(std::memory_order_acquire); }
  // What the worker has spent on each op's items since the queue was made: an item's time from its start to the
  // next item's (items skipped after a failure are in busyNanoseconds only). An op is keyed by its name's
  // address, so one name may come back more than once (from literals of different files).
  struct OpTime {
    const char* op;
    uint64_t calls;
    int64_t nanoseconds;
  };
  // The worker's time running items (not waiting for them) and its split by op, read together so that the
  // split never exceeds the total, in one reading or between two.
  struct Times {
    int64_t busyNanoseconds;
    std::vector<OpTime> ops;
  };
  Times times() const;
  // On the worker, inside an item: makes `failure` the sticky failure (unless one is already), as a throwing
  // work item does; for completions, which cannot throw.
  void fail(const std::string& failure);
  // Blocks the caller until everything enqueued so far has run.
  void drain();
  // Drains, then stops the worker. Idempotent.
  void shutdown();
  // Stops the worker after the item it is running, dropping the rest (the process is exiting). Idempotent.
  void abandon();
  std::string failure();

 private:
  struct Item {
    const char* op;
    Work work;
    Completion completion;
    uint64_t position = 0;
  };
  void loop();
  void enqueue(Item item);

  std::mutex mutex_;
  std::condition_variable wake_, idle_;
  std::vector<Item> pending_;
  std::atomic<bool> hasPending_{false};
  bool sleeping_ = false;
  bool busy_ = false;
  bool stop_ = false;
  std::string failure_;
  std::atomic<bool> abandoned_{false};
  std::atomic<uint64_t> pushed_{0};
  std::atomic<uint64_t> running_{0};
  mutable std::mutex timesMutex_;  // the worker adds to the two below item by item, stats() reads them on the JS thread
  int64_t busyNanoseconds_ = 0;
  std::unordered_map<const char*, OpTime> opTimes_;
  // The worker's own copy of the sticky failure (what its items see), published to failure_ under the mutex.
  std::string runFailure_;
  std::thread worker_;
};

}  // namespace selfe::napi
