// CUDA Philox streams (see selfe/kernels/random.h and selfe/philox.h): one thread per Philox block (four
// outputs). Element i depends only on (seed, offset, i), so the numbers are the CPU backend's.
#include "check.cuh"
#include "selfe/kernels/random.h"
#include "selfe/philox.h"

namespace selfe::cuda {

namespace {
constexpr int kThreads = 256;

template <bool kNormal>
__global__ void philoxKernel(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  SELFE_GRID_STRIDE(blockIndex, (n + 3) / 4) {
    const philox::U32x4 block = philox::block(seed, offset + static_cast<uint64_t>(blockIndex));
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      const int64_t i = blockIndex * 4 + lane;
      if (i < n) out[i] = kNormal ? philox::normalFromBlock(block, lane) : philox::uniformFromBits(block.v[lane]);
    }
  }
}

template <bool kNormal>
void generate(float* out, int64_t n, uint64_t seed, uint64_t offset, Stream stream, const char* name) {
  if (n == 0) return;
  philoxKernel<kNormal><<<gridFor(stream, (n + 3) / 4, kThreads), kThreads, 0, stream>>>(out, n, seed, offset);
  checkLaunch(name);
}
}  // namespace

void random_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset, Stream stream) {
  generate<false>(out, n, seed, offset, stream, "randomUniform");
}

void random_normal(float* out, int64_t n, uint64_t seed, uint64_t offset, Stream stream) {
  generate<true>(out, n, seed, offset, stream, "randomNormal");
}

}  // namespace selfe::cuda
