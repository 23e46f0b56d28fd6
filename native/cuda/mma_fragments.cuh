// Warp-level tensor-core primitives for bf16 (mma.sync m16n8k16, ldmatrix, cp.async, shuffles, atomics) and
// the lane mappings of their fragments, written so that kernel code using them compiles twice: by nvcc for the GPU (the
// primitives are inline PTX) and by a plain C++ compiler for the CPU emulator in test/native/cuda_emu (the
// primitives are only declared here; mma_fragments_emu.cpp defines them, every CUDA thread of a block a
// coroutine and each collective as the PTX ISA specifies it).
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"), with
// g = lane / 4 and t = lane % 4; a 32-bit register holds two bf16, the lower index in the low half:
//   A (16x16, row-major), registers a[0..3]: a[0] = (row g,     cols 2t, 2t+1), a[1] = (row g + 8, cols 2t, 2t+1),
//                                           a[2] = (row g, cols 2t+8, 2t+9),  a[3] = (row g + 8, cols 2t+8, 2t+9)
//   B (16x8, "col": element (k, n)), registers b[0..1]: b[0] = (k 2t, 2t+1; n g), b[1] = (k 2t+8, 2t+9; n g)
//   C/D (16x8 f32), c[0..3]: c[0], c[1] = (row g, cols 2t, 2t+1), c[2], c[3] = (row g + 8, cols 2t, 2t+1)
// ldmatrix .x4 (PTX ISA, "ldmatrix"): lanes 8q..8q+7 give the row addresses of 8x8 matrix q (16-byte rows),
// and register q of lane l receives row l/4, columns 2(l%4), 2(l%4)+1 of matrix q; with .trans it receives
// column l/4, rows 2(l%4), 2(l%4)+1 instead.
#pragma once
#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#include <cuda_bf16.h>
#define SELFE_DEVICE __device__ __forceinline__
#define SELFE_KERNEL(...) __global__ void __launch_bounds__(__VA_ARGS__)
#define SELFE_SHARED_MEMORY(name) extern __shared__ __align__(16) unsigned char name[]
#else
#define SELFE_DEVICE inline
#define SELFE_KERNEL(...) void
#define SELFE_SHARED_MEMORY(name) unsigned char* name = ::selfe::cuda::emulated::sharedMemory()
#endif

namespace selfe::cuda {

// Where a lane points for an x4 ldmatrix of the 16x16 block whose top-left element is (0, 0): (row, col) of
// the first element of the 8-element row it supplies.
struct LaneOffset {
  int row, col;
};

// Matrices taken rows first: (rows 0-7, cols 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15). An A operand
// stored row-major ([m][k]) loads as a[0..3]; a B operand stored [k][n] loads with .trans as b[0..1] of the
// n-tile at cols 0-7, then b[0..1] of the n-tile at cols 8-15.
SELFE_DEVICE constexpr LaneOffset rowsFirst(int lane) { return {(lane & 7) + ((lane >> 3) & 1) * 8, (lane >> 4) * 8}; }

// Matrices taken columns first: (rows 0-7, cols 0-7), (0-7, 8-15), (8-15, 0-7), (8-15, 8-15). A B operand
// stored [n][k] loads as b[0..1] of the n-tile at rows 0-7, then of the n-tile at rows 8-15; an A operand
// stored [k][m] loads with .trans as a[0..3].
SELFE_DEVICE constexpr LaneOffset colsFirst(int lane) { return {(lane & 7) + (lane >> 4) * 8, ((lane >> 3) & 1) * 8}; }

#ifndef __CUDACC__
// Host build: defined by the CPU emulator (test/native/cuda_emu/mma_fragments_emu.cpp).
namespace emulated {
unsigned char* sharedMemory();
int threadIndex();
unsigned blockIndexX();
unsigned blockIndexY();
void syncThreads();
void ldmatrixX4(uint32_t (&r)[4], const uint16_t* row, bool transposed);
void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
float shuffleXor(float value, int laneMask);
void copyAsync16(void* shared, const void* global, bool inside);
void commitAsync();
void waitAsync(int pending);
void atomicAddF32x2(float* address, float lo, float hi);
uint32_t packBf16x2(float lo, float hi);
}  // namespace emulated
#endif

SELFE_DEVICE int threadIndex() {
#ifdef __CUDACC__
  return static_cast<int>(threadIdx.x);
#else
  return emulated::threadIndex();
#endif
}

SELFE_DEVICE unsigned blockIndexX() {
#ifdef __CUDACC__
  return blockIdx.x;
#else
  return emulated::blockIndexX();
#endif
}

SELFE_DEVICE unsigned blockIndexY() {
#ifdef __CUDACC__
  return blockIdx.y;
#else
  return emulated::blockIndexY();
#endif
}

SELFE_DEVICE void blockSync() {
#ifdef __CUDACC__
  __syncthreads();
#else
  emulated::syncThreads();
#endif
}

// Four 8x8 bf16 matrices from shared memory; `row` is this lane's row address (16-byte aligned).
SELFE_DEVICE void ldmatrixX4(uint32_t (&r)[4], const uint16_t* row) {
#ifdef __CUDACC__
  const auto address = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
#else
  emulated::ldmatrixX4(r, row, false);
#endif
}

SELFE_DEVICE void ldmatrixX4Trans(uint32_t (&r)[4], const uint16_t* row) {
#ifdef __CUDACC__
  const auto address = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
#else
  emulated::ldmatrixX4(r, row, true);
#endif
}

// d += A B for one 16x8x16 tile: bf16 operands, f32 accumulators.
SELFE_DEVICE void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#ifdef __CUDACC__
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  emulated::mma(d, a, b0, b1);
#endif
}

SELFE_DEVICE float shuffleXor(float value, int laneMask) {
#ifdef __CUDACC__
  return __shfl_xor_sync(0xffffffffu, value, laneMask);
#else
  return emulated::shuffleXor(value, laneMask);
#endif
}

// Whether `value` holds on any lane of the warp; all 32 lanes call it.
SELFE_DEVICE bool anyInWarp(bool value) {
#ifdef __CUDACC__
  return __any_sync(0xffffffffu, value);
#else
  float any = value ? 1.0f : 0.0f;
  for (int laneMask = 1; laneMask < 32; laneMask <<= 1) any = fmaxf(any, emulated::shuffleXor(any, laneMask));
  return any > 0.0f;
#endif
}

// 16 bytes global -> shared without passing through registers; zeros where `inside` is false (global is then
// not read).
SELFE_DEVICE void copyAsync16(void* shared, const void* global, bool inside) {
#ifdef __CUDACC__
  const auto address = static_cast<uint32_t>(__cvta_generic_to_shared(shared));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(address), "l"(global), "r"(inside ? 16 : 0));
#else
  emulated::copyAsync16(shared, global, inside);
#endif
}

SELFE_DEVICE void commitAsync() {
#ifdef __CUDACC__
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#else
  emulated::commitAsync();
#endif
}

// Waits until at most `kPending` of this thread's committed copy groups are still in flight.
template <int kPending>
SELFE_DEVICE void waitAsync() {
#ifdef __CUDACC__
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
#else
  emulated::waitAsync(kPending);
#endif
}

// address[0] += lo, address[1] += hi as one 8-byte atomic (sm_90's vector atomicAdd, half the atomic
// instructions of two float ones); address 8-byte aligned.
SELFE_DEVICE void atomicAddF32x2(float* address, float lo, float hi) {
#ifdef __CUDACC__
  atomicAdd(reinterpret_cast<float2*>(address), make_float2(lo, hi));
#else
  emulated::atomicAddF32x2(address, lo, hi);
#endif
}

// 2^x from the SFU alone (ex2.approx.ftz: a result below 2^-126 is 0), as FlashAttention's fast-math builds
// compute the softmax; exp2f compiles to the non-ftz ex2.approx, which keeps subnormal results the softmax has no
// use for. On the H200 the d = 64 forward at L = 1024 took 0.629 ms after the switch, 0.666 before (two runs;
// BENCHMARKS.md).
SELFE_DEVICE float exp2Approx(float x) {
#ifdef __CUDACC__
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#else
  const float y = exp2f(x);
  return y < 1.17549435e-38f ? 0.0f : y;  // flushed as ftz flushes
#endif
}

// Two floats as bf16 (round to nearest even), `lo` in the low half: an mma operand register.
SELFE_DEVICE uint32_t packBf16x2(float lo, float hi) {
#ifdef __CUDACC__
  const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&pair);
#else
  return emulated::packBf16x2(lo, hi);
#endif
}

}  // namespace selfe::cuda
