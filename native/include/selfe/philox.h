// Philox4x32-10 (Salmon et al., SC'11), the counter-based generator every backend shares. Header-only and
// host/device so the CPU, the CUDA kernels and the TypeScript reference (src/kernels/reference/philox.ts)
// produce the same bits for the same (seed, counter).
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define SELFE_HD __host__ __device__ __forceinline__
#else
#define SELFE_HD inline
#endif

namespace selfe::philox {

struct U32x4 {
  uint32_t v[4];
};

SELFE_HD uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// The Philox4x32-10 bijection on a full 128-bit counter (checked against Random123's known answers).
SELFE_HD U32x4 philox4x32(U32x4 counter, uint32_t k0, uint32_t k1) {
  uint32_t c0 = counter.v[0], c1 = counter.v[1], c2 = counter.v[2], c3 = counter.v[3];
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    const uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
    const uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return U32x4{{c0, c1, c2, c3}};
}

// One block: key = seed (lo, hi), counter = (block lo, block hi, 0, 0).
SELFE_HD U32x4 block(uint64_t seed, uint64_t counter) {
  const U32x4 c{{static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0u, 0u}};
  return philox4x32(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// 23 random bits mapped to the centre of one of 2^23 equal cells of (0, 1). Every step is exact in float
// (k + 0.5 < 2^23 needs 24 significant bits), so the result is never 0, never 1, and the same everywhere.
SELFE_HD float uniformFromBits(uint32_t bits) {
  return (static_cast<float>(bits >> 9) + 0.5f) * (1.0f / 8388608.0f);
}

// Element i of a stream uses block (offset + i / 4), lane i % 4. Normals come from Box-Muller on lane
// pairs (0,1) and (2,3), computed in double and rounded once, so backends agree to the last bit or one ulp.
SELFE_HD float normalFromBlock(const U32x4& b, int lane) {
  const int pair = lane >> 1;
  const double u1 = static_cast<double>(uniformFromBits(b.v[pair * 2]));
  const double u2 = static_cast<double>(uniformFromBits(b.v[pair * 2 + 1]));
  const double radius = sqrt(-2.0 * log(u1));
  const double angle = 6.283185307179586 * u2;
  return static_cast<float>((lane & 1) ? radius * sin(angle) : radius * cos(angle));
}

}  // namespace selfe::philox
