// The warpgroup tensor-core primitives of native/cuda/wgmma.cuh on the CUDA emulator of selfe_cuda_emu.h, written
// from the PTX ISA's definitions (and CUTLASS's canonical GMMA layouts), independently of how kernels use them:
//   - the shared-memory descriptor: start address >> 4 in bits 0-13, leading byte offset >> 4 in 16-29, stride
//     byte offset >> 4 in 32-45, base offset in 49-51 (must be 0 here), swizzle in 62-63 (only 1, 128-byte, is
//     emulated; anything else fails);
//   - 128-byte swizzle: the byte address's bits 4-6 XORed with its bits 7-9, on the shared-space address, so a
//     tile must sit on 1024 bytes in shared space to read as its writer swizzled it. The emulated shared window
//     starts at kWindowBase (128- but not 1024-aligned, as nothing promises more on a GPU): a kernel that assumes
//     its dynamic shared memory is 1024-aligned reads garbage here;
//   - K-major operand element (row, k), k < 16: start + (row / 8) SBO + (row % 8) 128 + 2k bytes; MN-major
//     operand element (k, n) (n: B's column or A's row): start + (n / 64) LBO + (k / 8) SBO + (k % 8) 128 +
//     2 (n % 64);
//   - D and the A fragment as wgmma.cuh's comment lays them out (warp w of the group: rows 16w..16w+15).
// Asynchrony: an mma reads its A registers when issued, but reads shared memory and reads and writes D only when
// a wait retires its group (in issue order, so mma chained on one accumulator add up as on the GPU). So a kernel
// that reads D before waiting reads the old values, and one that overwrites an operand's shared memory before
// waiting feeds the new bytes: both show up as wrong results.
#include <cuda_bf16.h>  // the emulator's (test/native/cuda_emu/include)

#include <cstring>
#include <string>

#include "async_groups.h"
#include "cuda/wgmma.cuh"
#include "selfe/dtype.h"

namespace selfe::cuda::wgmma::emulated {

namespace {
constexpr uint32_t kWindowBase = 0x480;

struct Pending {
  float* d;
  int n;
  bool accumulate;            // D + A B, else A B
  bool fromRegisters;
  float a[16][16];            // the warp's A rows, when from registers
  uint64_t aDescriptor, bDescriptor;
  bool transposeA, transposeB;
};

// Per thread of the running block, checked for mma never retired when the block ends.
::emu::PerThreadOfBlock<::emu::AsyncGroups<Pending>> threads;

::emu::AsyncGroups<Pending>& mine() {
  auto& groups = threads.mine([](const ::emu::AsyncGroups<Pending>& ended) {
    if (!ended.empty()) ::emu::fail("wgmma: a block ended with an mma never retired by wgmma.wait_group");
  });
  if (blockDim.x % 128 != 0 || blockDim.y != 1 || blockDim.z != 1) ::emu::fail("wgmma: the block is not whole warpgroups along x");
  return groups;
}

float bf16At(uint32_t address) {
  if (address % 2 != 0) ::emu::fail("wgmma: odd element address");
  if (address < kWindowBase || address - kWindowBase + 2 > ::emu::dynamicSharedBytes())
    ::emu::fail("wgmma: operand outside the block's dynamic shared memory");
  uint16_t bits;
  std::memcpy(&bits, static_cast<unsigned char*>(::emu::dynamicShared()) + (address - kWindowBase), 2);
  return floatFromBf16(bf16{bits});
}

struct Descriptor {
  uint32_t start, leading, stride;
};

Descriptor decode(uint64_t desc) {
  if (((desc >> 62) & 3) != 1) ::emu::fail("wgmma: only the 128-byte swizzle is emulated");
  if (((desc >> 49) & 7) != 0) ::emu::fail("wgmma: a nonzero matrix base offset is not emulated");
  return {static_cast<uint32_t>(desc & 0x3fff) << 4, static_cast<uint32_t>((desc >> 16) & 0x3fff) << 4,
          static_cast<uint32_t>((desc >> 32) & 0x3fff) << 4};
}

uint32_t swizzle128(uint32_t address) { return address ^ (((address >> 7) & 7) << 4); }

float kMajor(const Descriptor& d, int row, int k) {
  return bf16At(swizzle128(d.start + static_cast<uint32_t>(row / 8) * d.stride + static_cast<uint32_t>(row % 8) * 128 + 2 * k));
}

float mnMajor(const Descriptor& d, int k, int n) {
  return bf16At(swizzle128(d.start + static_cast<uint32_t>(n / 64) * d.leading + static_cast<uint32_t>(k / 8) * d.stride +
                           static_cast<uint32_t>(k % 8) * 128 + 2 * static_cast<uint32_t>(n % 64)));
}

float widen(uint32_t reg, int which) { return floatFromBf16(bf16{static_cast<uint16_t>(which == 0 ? reg & 0xffffu : reg >> 16)}); }

// This thread's D elements of one retired mma: the products read from shared memory now.
void retire(const Pending& p) {
  const int warpInGroup = static_cast<int>(threadIdx.x / 32) % 4, lane = static_cast<int>(threadIdx.x % 32);
  const int g = lane / 4, t = lane % 4;
  const Descriptor b = decode(p.bDescriptor);
  const Descriptor a = p.fromRegisters ? Descriptor{} : decode(p.aDescriptor);
  for (int i = 0; i < p.n / 2; ++i) {
    const int j = i / 4, e = i % 4;
    const int localRow = g + 8 * (e / 2), row = 16 * warpInGroup + localRow, col = 8 * j + 2 * t + (e % 2);
    float sum = p.accumulate ? p.d[i] : 0.0f;
    for (int k = 0; k < 16; ++k) {
      const float av = p.fromRegisters ? p.a[localRow][k] : p.transposeA ? mnMajor(a, k, row) : kMajor(a, row, k);
      const float bv = p.transposeB ? mnMajor(b, k, col) : kMajor(b, col, k);
      sum += av * bv;  // bf16 products are exact in f32
    }
    p.d[i] = sum;
  }
}

void issue(Pending p, bool accumulate) {
  p.accumulate = accumulate;
  mine().issue(std::move(p));
}
}  // namespace

uint32_t sharedAddress(const void* p) {
  const auto* at = static_cast<const unsigned char*>(p);
  const auto* begin = static_cast<const unsigned char*>(::emu::dynamicShared());
  if (begin == nullptr || at < begin || at > begin + ::emu::dynamicSharedBytes())
    ::emu::fail("wgmma: a shared address outside the block's dynamic shared memory");
  return kWindowBase + static_cast<uint32_t>(at - begin);
}

void fence() { mine(); }

void fenceProxyAsync() {}

void commit() { mine().commit(); }

// Groups committed - pending and later may stay in flight; uncommitted mma are not waited for.
void wait(int pending) { mine().wait(pending, [](const Pending& p) { retire(p); }); }

void mmaShared(float* d, int n, uint64_t a, uint64_t b, bool accumulate, bool transposeA, bool transposeB) {
  Pending p{};
  p.d = d;
  p.n = n;
  p.fromRegisters = false;
  p.aDescriptor = a;
  p.bDescriptor = b;
  p.transposeA = transposeA;
  p.transposeB = transposeB;
  issue(std::move(p), accumulate);
}

void mmaRegisters(float* d, int n, const uint32_t (&a)[4], uint64_t b, bool accumulate, bool transposeB) {
  struct Fragment {
    uint32_t a[4];
  };
  const Fragment own{{a[0], a[1], a[2], a[3]}};
  Fragment all[32];
  ::emu::gather(&own, sizeof own, all);
  Pending p{};
  p.d = d;
  p.n = n;
  p.fromRegisters = true;
  for (int src = 0; src < 32; ++src) {
    const int g = src / 4, t = src % 4;
    for (int i = 0; i < 8; ++i)
      p.a[g + ((i & 2) ? 8 : 0)][2 * t + (i & 1) + (i >= 4 ? 8 : 0)] = widen(all[src].a[i / 2], i % 2);
  }
  p.bDescriptor = b;
  p.transposeB = transposeB;
  issue(std::move(p), accumulate);
}

}  // namespace selfe::cuda::wgmma::emulated
