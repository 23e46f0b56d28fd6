// The warp-level tensor-core primitives of native/cuda/mma_fragments.cuh (declared there for host builds) on the
// CUDA emulator of selfe_cuda_emu.h, so that attention.cu, tensor-core kernels included, runs on the CPU in
// test/kernels/cudaEmulated.test.ts (through the dispatcher, and attention_mma.cuh's kernels launched directly
// against float64 attention: driver.cpp's "attention-float64"). ldmatrix and mma.sync are written from the PTX
// ISA's definitions, independently of the lane mappings the kernels use:
//   ldmatrix .x4 ("ldmatrix"): lanes 8q..8q+7 give the row addresses of matrix q; lane l receives in register q
//     row l/4, columns 2(l%4) and 2(l%4)+1 of matrix q, or with .trans column l/4, rows 2(l%4) and 2(l%4)+1;
//   mma.sync m16n8k16 bf16 ("Matrix Fragments for mma.m16n8k16 with floating point type"), g = l/4, t = l%4:
//     A element a_i at row g + 8 [i in {2,3,6,7}], col 2t + (i & 1) + 8 [i >= 4]; B element b_i at row
//     2t + (i & 1) + 8 [i >= 2], col g; C element c_i at row g + 8 [i >= 2], col 2t + (i & 1).
// Shared-memory addresses are checked against the launch's dynamic shared memory and for alignment; cp.async's
// global reads for alignment and, where the test named the kernels' inputs (emu::readableOnly), for bounds.
// cp.async is asynchronous as on the GPU: a copy lands in shared memory only when cp.async.wait_group retires its
// committed group (uncommitted copies are never waited for), so a kernel that reads a tile before waiting for it
// reads the NaN fill, or the tile before's bytes.
#include <cuda_bf16.h>  // the emulator's (test/native/cuda_emu/include)

#include <cstring>
#include <string>

#include "async_groups.h"
#include "cuda/mma_fragments.cuh"
#include "selfe/dtype.h"

namespace selfe::cuda::emulated {

namespace {
void checkShared(const void* p, size_t alignment, const char* what) {
  const auto* at = static_cast<const unsigned char*>(p);
  const auto* begin = static_cast<const unsigned char*>(::emu::dynamicShared());
  if (begin == nullptr || at < begin || at + 16 > begin + ::emu::dynamicSharedBytes())
    ::emu::fail(std::string(what) + ": address outside the block's dynamic shared memory");
  if (reinterpret_cast<uintptr_t>(at) % alignment != 0) ::emu::fail(std::string(what) + ": misaligned shared address");
}

float widen(uint32_t reg, int which) { return floatFromBf16(bf16{static_cast<uint16_t>(which == 0 ? reg & 0xffffu : reg >> 16)}); }

struct Copy {
  void* shared;
  const void* global;  // nullptr: zero fill
};

// Copies nobody waited for when the block ends were never read: they are dropped with it.
::emu::PerThreadOfBlock<::emu::AsyncGroups<Copy>> copies;
::emu::AsyncGroups<Copy>& copiesOfThisThread() {
  return copies.mine([](const ::emu::AsyncGroups<Copy>&) {});
}
}  // namespace

unsigned char* sharedMemory() { return static_cast<unsigned char*>(::emu::dynamicShared()); }
int threadIndex() { return static_cast<int>(threadIdx.x); }
unsigned blockIndexX() { return blockIdx.x; }
unsigned blockIndexY() { return blockIdx.y; }
void syncThreads() { ::emu::syncThreads(); }

void ldmatrixX4(uint32_t (&r)[4], const uint16_t* row, bool transposed) {
  checkShared(row, 16, "ldmatrix");
  const uint16_t* rows[32];
  ::emu::gather(&row, sizeof row, rows);
  const int l = static_cast<int>(threadIdx.x % 32);
  for (int q = 0; q < 4; ++q) {
    uint16_t lo, hi;
    if (!transposed) {
      lo = rows[8 * q + l / 4][2 * (l % 4)];
      hi = rows[8 * q + l / 4][2 * (l % 4) + 1];
    } else {
      lo = rows[8 * q + 2 * (l % 4)][l / 4];
      hi = rows[8 * q + 2 * (l % 4) + 1][l / 4];
    }
    r[q] = static_cast<uint32_t>(lo) | static_cast<uint32_t>(hi) << 16;
  }
}

void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  struct Fragments {
    uint32_t a[4], b[2];
    float c[4];
  };
  const Fragments mine{{a[0], a[1], a[2], a[3]}, {b0, b1}, {d[0], d[1], d[2], d[3]}};
  Fragments all[32];
  ::emu::gather(&mine, sizeof mine, all);
  float A[16][16], B[16][8], C[16][8];
  for (int src = 0; src < 32; ++src) {
    const int g = src / 4, t = src % 4;
    for (int i = 0; i < 8; ++i)
      A[g + ((i & 2) ? 8 : 0)][2 * t + (i & 1) + (i >= 4 ? 8 : 0)] = widen(all[src].a[i / 2], i % 2);
    for (int i = 0; i < 4; ++i) B[2 * t + (i & 1) + (i >= 2 ? 8 : 0)][g] = widen(all[src].b[i / 2], i % 2);
    for (int i = 0; i < 4; ++i) C[g + (i >= 2 ? 8 : 0)][2 * t + (i & 1)] = all[src].c[i];
  }
  const int l = static_cast<int>(threadIdx.x % 32), g = l / 4, t = l % 4;
  for (int i = 0; i < 4; ++i) {
    const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
    float sum = C[row][col];
    for (int kk = 0; kk < 16; ++kk) sum += A[row][kk] * B[kk][col];  // bf16 products are exact in f32
    d[i] = sum;
  }
}

float shuffleXor(float value, int laneMask) { return __shfl_xor_sync(0xffffffffu, value, laneMask); }

void copyAsync16(void* shared, const void* global, bool inside) {
  checkShared(shared, 16, "cp.async");
  if (inside) {
    if (reinterpret_cast<uintptr_t>(global) % 16 != 0) ::emu::fail("cp.async: misaligned global address");
    if (!::emu::mayRead(global, 16)) ::emu::fail("cp.async: global read outside every input");
  }
  copiesOfThisThread().issue(Copy{shared, inside ? global : nullptr});
}

void commitAsync() { copiesOfThisThread().commit(); }

void waitAsync(int pending) {
  copiesOfThisThread().wait(pending, [](const Copy& copy) {
    if (copy.global == nullptr)
      std::memset(copy.shared, 0, 16);
    else
      std::memcpy(copy.shared, copy.global, 16);
  });
}

void atomicAddF32x2(float* address, float lo, float hi) {
  if (reinterpret_cast<uintptr_t>(address) % 8 != 0) ::emu::fail("atomicAdd(float2*): misaligned address");
  atomicAdd(address, lo);
  atomicAdd(address + 1, hi);
}

uint32_t packBf16x2(float lo, float hi) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  uint32_t bits;
  std::memcpy(&bits, &pair, 4);
  return bits;
}

}  // namespace selfe::cuda::emulated
