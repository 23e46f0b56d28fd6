// CPU Philox streams (see selfe/kernels/random.h and selfe/philox.h). Element i depends only on (seed,
// offset, i), so any split across threads gives the same numbers.
#include "selfe/kernels/random.h"

#include "pool.h"
#include "selfe/philox.h"

namespace selfe::cpu {

namespace {
constexpr int64_t kGrain = 1 << 14;

// Calls store(i, block, lane) for i in [0, n), generating each Philox block once.
template <class Store>
void forEachLane(int64_t n, uint64_t seed, uint64_t offset, Pool& pool, Store store) {
  pool.parallelFor((n + 3) / 4, kGrain / 4, [&](int64_t begin, int64_t end) {
    for (int64_t blockIndex = begin; blockIndex < end; ++blockIndex) {
      const philox::U32x4 block = philox::block(seed, offset + static_cast<uint64_t>(blockIndex));
      for (int lane = 0; lane < 4 && blockIndex * 4 + lane < n; ++lane) store(blockIndex * 4 + lane, block, lane);
    }
  });
}
}  // namespace

void random_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset, Stream pool) {
  forEachLane(n, seed, offset, pool, [&](int64_t i, const philox::U32x4& block, int lane) {
    out[i] = philox::uniformFromBits(block.v[lane]);
  });
}

void random_normal(float* out, int64_t n, uint64_t seed, uint64_t offset, Stream pool) {
  forEachLane(n, seed, offset, pool, [&](int64_t i, const philox::U32x4& block, int lane) {
    out[i] = philox::normalFromBlock(block, lane);
  });
}

}  // namespace selfe::cpu
