// The CPU backend's stream: one worker thread runs enqueued work in order, so the JS thread only validates
// and enqueues. Like a CUDA stream, the first failure is sticky: later work is skipped and every completion
// reports the failure (op name and reason) until the device is disposed.
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
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

  void push(const char* op, Work work);
  void pushCompletion(Completion completion);
  // Blocks the caller until everything enqueued so far has run.
  void drain();
  // Drains, then stops the worker. Idempotent.
  void shutdown();
  std::string failure();

 private:
  struct Item {
    const char* op;
    Work work;
    Completion completion;
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
  std::thread worker_;
};

}  // namespace selfe::napi
