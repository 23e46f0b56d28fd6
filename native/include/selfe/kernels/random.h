// Philox4x32-10 streams (selfe/philox.h): element i uses block (offset + i / 4), lane i % 4.
// Uniform in (0, 1); normal by Box-Muller. The same (seed, offset) gives the same numbers on every backend.
#pragma once
#include <cstdint>

#include "selfe/stream.h"

#define SELFE_RANDOM_KERNELS                                                                         \
  void random_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset, Stream stream);        \
  void random_normal(float* out, int64_t n, uint64_t seed, uint64_t offset, Stream stream);

SELFE_DECLARE_FOR_BACKENDS(SELFE_RANDOM_KERNELS)
