#include "work_queue.h"

#include <chrono>
#include <exception>

namespace selfe::napi {

namespace {
// How long the worker polls for new work before sleeping: a step enqueues ops microseconds apart, and a
// futex wake per op would cost more than the enqueue itself.
constexpr auto kSpin = std::chrono::microseconds(200);
}  // namespace

WorkQueue::WorkQueue() : worker_([this] { loop(); }) {}

WorkQueue::~WorkQueue() { shutdown(); }

void WorkQueue::push(const char* op, Work work) { enqueue(Item{op, std::move(work), nullptr}); }

void WorkQueue::pushCompletion(const char* op, Completion completion) { enqueue(Item{op, nullptr, std::move(completion)}); }

void WorkQueue::enqueue(Item item) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    item.position = pushed_.load(std::memory_order_relaxed) + 1;
    pushed_.store(item.position, std::memory_order_release);
    pending_.push_back(std::move(item));
    hasPending_.store(true, std::memory_order_release);
    wake = sleeping_;
  }
  if (wake) wake_.notify_one();
}

void WorkQueue::drain() {
  std::unique_lock<std::mutex> lock(mutex_);
  idle_.wait(lock, [this] { return pending_.empty() && !busy_; });
}

void WorkQueue::shutdown() {
  if (!worker_.joinable() || worker_.get_id() == std::this_thread::get_id()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  worker_.join();
}

void WorkQueue::abandon() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.clear();
    abandoned_ = true;
    stop_ = true;
  }
  wake_.notify_one();
  // The worker itself may be exiting the process (exit() inside an item): it is not waited for.
  if (worker_.get_id() != std::this_thread::get_id()) worker_.join();
}

WorkQueue::Times WorkQueue::times() const {
  std::lock_guard<std::mutex> lock(timesMutex_);
  Times times{busyNanoseconds_, {}};
  times.ops.reserve(opTimes_.size());
  for (const auto& entry : opTimes_) times.ops.push_back(entry.second);
  return times;
}

std::string WorkQueue::failure() {
  std::lock_guard<std::mutex> lock(mutex_);
  return failure_;
}

void WorkQueue::fail(const std::string& failure) {
  if (!runFailure_.empty()) return;
  runFailure_ = failure;
  std::lock_guard<std::mutex> lock(mutex_);
  failure_ = failure;
}

void WorkQueue::loop() {
  std::vector<Item> batch;
  for (;;) {
    const auto spinUntil = std::chrono::steady_clock::now() + kSpin;
    while (!hasPending_.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < spinUntil)
      std::this_thread::yield();
    {
      std::unique_lock<std::mutex> lock(mutex_);
      sleeping_ = true;
      wake_.wait(lock, [this] { return stop_ || !pending_.empty(); });
      sleeping_ = false;
      if (pending_.empty()) return;  // stop_ with nothing left to run
      batch.swap(pending_);
      hasPending_.store(false, std::memory_order_relaxed);
      busy_ = true;
    }
    // Counted item by item, so that an item's time is in the busy time and its op's before the next item (a
    // read's completion, say) runs.
    auto last = std::chrono::steady_clock::now();
    const char* timedOp = nullptr;  // the op whose work ran since `last`
    const auto count = [&] {
      const auto now = std::chrono::steady_clock::now();
      const int64_t nanoseconds = std::chrono::duration_cast<std::chrono::nanoseconds>(now - last).count();
      std::lock_guard<std::mutex> lock(timesMutex_);
      busyNanoseconds_ += nanoseconds;
      if (timedOp != nullptr) {
        OpTime& time = opTimes_.try_emplace(timedOp, OpTime{timedOp, 0, 0}).first->second;
        time.calls += 1;
        time.nanoseconds += nanoseconds;
        timedOp = nullptr;
      }
      last = now;
    };
    for (Item& item : batch) {
      count();
      if (abandoned_.load(std::memory_order_relaxed)) break;
      running_.store(item.position, std::memory_order_release);
      if (item.completion) {
        timedOp = item.op;
        // A completion must not throw; one that does fails the queue rather than the process.
        try {
          // A copy: a completion that fails the queue rewrites runFailure_.
          item.completion(std::string(runFailure_));
        } catch (const std::exception& e) {
          fail(std::string("completion: ") + e.what());
        } catch (...) {
          fail("completion: unknown failure");
        }
        continue;
      }
      if (!runFailure_.empty()) continue;
      timedOp = item.op;
      try {
        item.work();
      } catch (const std::exception& e) {
        fail(std::string(item.op) + ": " + e.what());
      } catch (...) {
        fail(std::string(item.op) + ": unknown failure");
      }
    }
    count();
    batch.clear();
    std::lock_guard<std::mutex> lock(mutex_);
    busy_ = false;
    if (pending_.empty()) idle_.notify_all();
  }
}

}  // namespace selfe::napi
