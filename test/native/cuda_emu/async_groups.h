// The CUDA emulator's asynchronous operations (cp.async in mma_fragments_emu.cpp, wgmma in wgmma_emu.cpp): each
// thread of the running block queues what it issues, closes a group at each commit, and a wait_group N retires,
// in issue order, every committed operation but those of the newest N groups (uncommitted ones are never waited
// for), as the PTX ISA defines cp.async.wait_group and wgmma.wait_group.
#pragma once
#include <cuda_runtime.h>  // the emulator's (test/native/cuda_emu/include)

#include <utility>
#include <vector>

namespace emu {

template <class Operation>
class AsyncGroups {
 public:
  void issue(Operation operation) { pending_.push_back(Entry{std::move(operation), -1}); }

  void commit() {
    for (auto& entry : pending_)
      if (entry.group < 0) entry.group = committed_;
    ++committed_;
  }

  // Calls retire(operation) for each operation the wait retires, oldest first.
  template <class Retire>
  void wait(int pendingGroups, Retire&& retire) {
    const long oldestKept = committed_ - pendingGroups;
    std::vector<Entry> kept;
    for (auto& entry : pending_) {
      if (entry.group >= 0 && entry.group < oldestKept)
        retire(entry.operation);
      else
        kept.push_back(std::move(entry));
    }
    pending_ = std::move(kept);
  }

  bool empty() const { return pending_.empty(); }

 private:
  struct Entry {
    Operation operation;
    long group;  // -1 until committed
  };
  std::vector<Entry> pending_;
  long committed_ = 0;
};

// One T per thread of the running block, made afresh when a new block (or launch) starts; `finished` sees the
// values of the block that ended first.
template <class T>
class PerThreadOfBlock {
 public:
  template <class Finished>
  T& mine(Finished&& finished) {
    if (launch_ != launches || block_.x != blockIdx.x || block_.y != blockIdx.y || block_.z != blockIdx.z) {
      for (const auto& value : values_) finished(value);
      values_.assign(static_cast<size_t>(blockDim.x) * blockDim.y * blockDim.z, T{});
      launch_ = launches;
      block_ = blockIdx;
    }
    return values_[threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)];
  }

 private:
  std::vector<T> values_;
  long launch_ = -1;
  uint3 block_{0, 0, 0};
};

}  // namespace emu
