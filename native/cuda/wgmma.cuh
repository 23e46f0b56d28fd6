// Warpgroup-level tensor-core primitives of sm_90a (wgmma.mma_async, bf16 in, f32 accumulators) and the
// shared-memory operand layout they read, written like mma_fragments.cuh: inline PTX under nvcc for sm_90a, only
// declared for the CPU emulator (test/native/cuda_emu/wgmma_emu.cpp defines them from the PTX ISA's layouts).
//
// A warpgroup is 4 consecutive warps (128 threads, the first warp a multiple of 4). One m64nNk16 product:
// D[64][N] (+)= A[64][16] B[16][N].
//   D, f32, N/2 registers a thread: warp w of the group holds rows 16w..16w+15; register 4j + e of lane l is
//     row 16w + l/4 + 8 (e / 2), column 8j + 2 (l % 4) + e % 2 (mma.sync's C layout, repeated along N).
//   A from registers: warp w's rows 16w..16w+15 as mma.sync m16n8k16's A fragment (mma_fragments.cuh).
//   A or B from shared memory, by a 64-bit descriptor (PTX ISA, "Matrix Descriptor Format"): bits 0-13 the
//     start address >> 4, 16-29 the leading byte offset >> 4, 32-45 the stride byte offset >> 4, 62-63 the
//     swizzle. Only the 128-byte swizzle is used here: rows of 64 bf16 (128 bytes), 8 rows an atom of 1024
//     bytes aligned to 1024, and 16-byte chunk c of row r stored at chunk c ^ (r % 8) of that row.
//       K-major ("no transpose": A stored [m][k], B stored [n][k]): element (row, k) of the operand at row
//         128 bytes apart within an atom, the next 8 rows a stride byte offset further; the start address
//         moves 32 bytes a k-step of 16.
//       MN-major ("transpose": B stored [k][n], n contiguous): element (k, n) at row k, column n of the atom;
//         the next 8 k a stride byte offset further, the next 64 n a leading byte offset further.
#pragma once
#include <cstdint>

#include "mma_fragments.cuh"

namespace selfe::cuda::wgmma {

constexpr int kWarpgroupThreads = 128;
constexpr uint64_t kSwizzle128 = 1;  // the descriptor's swizzle field: 128-byte swizzle

#ifndef __CUDACC__
namespace emulated {
uint32_t sharedAddress(const void* p);
void fence();
void commit();
void wait(int pending);
void fenceProxyAsync();
void mmaShared(float* d, int n, uint64_t a, uint64_t b, bool accumulate, bool transposeA, bool transposeB);
void mmaRegisters(float* d, int n, const uint32_t (&a)[4], uint64_t b, bool accumulate, bool transposeB);
}  // namespace emulated
#endif

// The shared-space address of a pointer into shared memory.
SELFE_DEVICE uint32_t sharedAddress(const void* p) {
#ifdef __CUDACC__
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
#else
  return emulated::sharedAddress(p);
#endif
}

// A 128-byte-swizzled operand starting at `start` (16-byte aligned; its atom 1024-byte aligned).
SELFE_DEVICE uint64_t descriptor(const void* start, uint32_t leadingBytes, uint32_t strideBytes) {
  return (static_cast<uint64_t>(sharedAddress(start) >> 4) & 0x3fff) |
         (static_cast<uint64_t>((leadingBytes >> 4) & 0x3fff) << 16) |
         (static_cast<uint64_t>((strideBytes >> 4) & 0x3fff) << 32) | (kSwizzle128 << 62);
}

// Where 16-byte chunk `chunk` of row `row` of a 128-byte-swizzled tile goes, in bytes from the tile's start.
SELFE_DEVICE constexpr int swizzled128(int row, int chunk) { return row * 128 + ((chunk ^ (row & 7)) << 4); }

#if defined(__CUDACC__) && defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Compiled for an architecture without wgmma (the generic PTX target): the launcher never runs these kernels there.
#define SELFE_WGMMA_UNAVAILABLE 1
#endif

// Orders this thread's earlier register writes (accumulators, A fragments) before the wgmma that follow.
SELFE_DEVICE void fence() {
#if defined(__CUDACC__) && !defined(SELFE_WGMMA_UNAVAILABLE)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#elif !defined(__CUDACC__)
  emulated::fence();
#endif
}

// Closes the group of wgmma issued since the last commit.
SELFE_DEVICE void commit() {
#if defined(__CUDACC__) && !defined(SELFE_WGMMA_UNAVAILABLE)
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#elif !defined(__CUDACC__)
  emulated::commit();
#endif
}

// Waits until at most kPending committed groups are in flight; their accumulators are then readable.
template <int kPending>
SELFE_DEVICE void wait() {
#if defined(__CUDACC__) && !defined(SELFE_WGMMA_UNAVAILABLE)
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
#elif !defined(__CUDACC__)
  emulated::wait(kPending);
#endif
}

// Makes this thread's shared-memory writes (stores, cp.async) visible to the async proxy wgmma reads through.
SELFE_DEVICE void fenceProxyAsync() {
#if defined(__CUDACC__) && !defined(SELFE_WGMMA_UNAVAILABLE)
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#elif !defined(__CUDACC__)
  emulated::fenceProxyAsync();
#endif
}

// Keeps the compiler from moving accesses of these registers across the asynchronous wgmma around them.
template <int kN>
SELFE_DEVICE void fenceRegisters(float (&d)[kN]) {
#ifdef __CUDACC__
#pragma unroll
  for (int i = 0; i < kN; ++i) asm volatile("" : "+f"(d[i])::"memory");
#else
  (void)d;
#endif
}

// The same for A fragments in registers: placed after the wait that retires their last wgmma, it keeps them alive
// (and so unshared with any value computed meanwhile) until then.
template <int kSteps>
SELFE_DEVICE void fenceRegisters(uint32_t (&a)[kSteps][4]) {
#ifdef __CUDACC__
#pragma unroll
  for (int kk = 0; kk < kSteps; ++kk)
#pragma unroll
    for (int i = 0; i < 4; ++i) asm volatile("" : "+r"(a[kk][i])::"memory");
#else
  (void)a;
#endif
}

// One m64nNk16 product (N = 32, 64 or 128): D (+)= A B, A and B from shared memory (descriptors; kTransposeA, B:
// MN-major) or A from registers, `accumulate` 0 to overwrite D.
template <int kN>
struct Mma;

#if defined(__CUDACC__) && !defined(SELFE_WGMMA_UNAVAILABLE)
template <>
struct Mma<32> {
  template <bool kTransposeA, bool kTransposeB>
  static SELFE_DEVICE void shared(float (&d)[16], uint64_t a, uint64_t b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, p, 1, 1, %19, %20;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "l"(a), "l"(b), "r"(accumulate), "n"(kTransposeA ? 1 : 0), "n"(kTransposeB ? 1 : 0));
  }
  template <bool kTransposeB>
  static SELFE_DEVICE void registers(float (&d)[16], const uint32_t (&a)[4], uint64_t b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %21, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, {%16, %17, %18, %19}, %20, p, 1, 1, %22;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate), "n"(kTransposeB ? 1 : 0));
  }
};

template <>
struct Mma<64> {
  template <bool kTransposeA, bool kTransposeB>
  static SELFE_DEVICE void shared(float (&d)[32], uint64_t a, uint64_t b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, %35, %36;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(a), "l"(b), "r"(accumulate), "n"(kTransposeA ? 1 : 0), "n"(kTransposeB ? 1 : 0));
  }
  template <bool kTransposeB>
  static SELFE_DEVICE void registers(float (&d)[32], const uint32_t (&a)[4], uint64_t b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate), "n"(kTransposeB ? 1 : 0));
  }
};
template <>
struct Mma<128> {
  template <bool kTransposeA, bool kTransposeB>
  static SELFE_DEVICE void shared(float (&d)[64], uint64_t a, uint64_t b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, %67, %68;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(a), "l"(b), "r"(accumulate), "n"(kTransposeA ? 1 : 0), "n"(kTransposeB ? 1 : 0));
  }
  template <bool kTransposeB>
  static SELFE_DEVICE void registers(float (&d)[64], const uint32_t (&a)[4], uint64_t b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate), "n"(kTransposeB ? 1 : 0));
  }
};
#else
// The compute_90 PTX has no wgmma (the launcher never runs these kernels there); the emulator's, on the CPU.
template <int kN>
struct Mma {
  template <bool kTransposeA, bool kTransposeB>
  static SELFE_DEVICE void shared(float (&d)[kN / 2], uint64_t a, uint64_t b, int accumulate) {
#ifdef __CUDACC__
    (void)d, (void)a, (void)b, (void)accumulate;
    __trap();
#else
    emulated::mmaShared(d, kN, a, b, accumulate != 0, kTransposeA, kTransposeB);
#endif
  }
  template <bool kTransposeB>
  static SELFE_DEVICE void registers(float (&d)[kN / 2], const uint32_t (&a)[4], uint64_t b, int accumulate) {
#ifdef __CUDACC__
    (void)d, (void)a, (void)b, (void)accumulate;
    __trap();
#else
    emulated::mmaRegisters(d, kN, a, b, accumulate != 0, kTransposeB);
#endif
  }
};
#endif

}  // namespace selfe::cuda::wgmma
