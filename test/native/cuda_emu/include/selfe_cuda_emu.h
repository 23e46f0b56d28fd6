// A CPU emulation of the CUDA execution model, enough to run the repository's own kernel files (native/cuda/*.cu,
// with their `kernel<<<grid, block, shared, stream>>>(args)` launches rewritten into ::emu::launch calls by
// test/helpers/cudaLaunchRewrite.ts) on the host. Used by test/kernels/cudaEmulated.test.ts; the only emulator
// of CUDA's execution model in the repository (mma_fragments_emu.cpp adds the tensor-core primitives on it).
//
// A launch runs the grid's blocks one at a time, in a scrambled (deterministic) order; every thread of a block is
// a coroutine on the one host thread. A thread runs until it waits at __syncthreads or a warp
// collective (__shfl*_sync), then the next thread runs; every round resumes the waiting threads in a new
// random order. Warps also drift apart between barriers: at the start of every phase (each time the block's
// barrier opens) a seeded draw picks lockstep (every warp one step a round), a leader (one warp runs alone up to
// its next __syncthreads, or to its end, before the others move), or a laggard (one warp held back until the
// others all wait at the barrier, or for a few rounds only). So where a barrier is missing, one warp overwrites
// or reads shared memory a whole phase ahead of another, not just a few collectives. Everything is drawn from
// one xorshift generator seeded by SELFE_EMU_SEED (default fixed): a run is reproducible for its seed.
// SELFE_EMU_DRIFT=0 turns the drift off (lockstep rounds only). Checks:
//   - `__shared__` variables all live in one linker section, filled with 0xff bytes (NaN as f32 and bf16)
//     before every block: a read of shared memory nobody wrote this block shows as NaN; so does the launch's
//     dynamic shared memory (`extern __shared__` arrays, rewritten into dynamicShared() calls), followed by
//     guard bytes that must stay untouched;
//   - threads waiting at different barriers, or a thread that has returned while others wait for it at a
//     barrier or a warp collective (undefined on a GPU), fail as a deadlock; a warp collective's mask must
//     name every lane of the warp;
//   - launch configurations outside the hardware limits fail as cudaGetLastError() reports them on a GPU;
//   - where a test names the global memory a kernel may read (readableOnly), cp.async reads outside it fail.
// What it cannot see: the memory model (everything is sequentially consistent here), real concurrency between
// blocks or between warps (only interleavings at barrier and collective granularity), intra-warp divergence,
// timing, occupancy, register or shared-memory limits, and races that happen to be benign in the orders it runs.
#pragma once
#include <ucontext.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

struct CUstream_st;
typedef CUstream_st* cudaStream_t;

struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

// The built-in variables, set for the running thread before it is resumed.
inline uint3 threadIdx{0, 0, 0};
inline uint3 blockIdx{0, 0, 0};
inline dim3 blockDim;
inline dim3 gridDim;

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorNotReady = 600,
};

// The shared-memory section (see __shared__ in cuda_runtime.h); weak, so a program without shared variables links.
extern "C" char __start_selfe_emu_shared[] __attribute__((weak));
extern "C" char __stop_selfe_emu_shared[] __attribute__((weak));

namespace emu {

// What the emulated device reports; a test may change it between launches.
struct Settings {
  int occupancy = 3;  // cudaOccupancyMaxActiveBlocksPerMultiprocessor's answer
};
inline Settings settings;

// Per host thread, as CUDA's last error is.
inline thread_local cudaError_t lastError = cudaSuccess;
inline long launches = 0;
// SELFE_EMU_SKIP_KERNELS=1 (benchmarks only, never the tests): launches and cuBLASLt products return at once, so that
// `bench:host-profile` times the host path of a CUDA build (N-API layer, allocator, launch thread) without a GPU and
// without the emulator's own cost; what the kernels would have written is whatever the memory held.
inline const bool skipKernels = [] {
  const char* text = std::getenv("SELFE_EMU_SKIP_KERNELS");
  return text != nullptr && std::strcmp(text, "1") == 0;
}();
// The emulated device runs one launch or cuBLASLt call at a time, whichever host thread makes it (each CUDA
// device's launch thread): the emulator's state (thread indices, scheduler, shared memory, clock) is the process's.
inline std::recursive_mutex& deviceMutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

[[noreturn]] inline void fail(const std::string& message) {
  std::fprintf(stderr, "cuda emulator: %s (launch %ld, block (%u, %u, %u), thread (%u, %u, %u))\n", message.c_str(), launches,
               blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z);
  std::fflush(stdout);
  std::fflush(stderr);
  // Not exit(): it runs on a device's launch thread, and the exit handlers would wait for that very thread (and for
  // others waiting on the emulated device it holds).
  std::_Exit(3);
}

namespace detail {

// Switching between the scheduler and the threads. On x86-64, a few instructions that save the callee-saved
// registers and the stack pointer of one side and restore the other's (ucontext's swapcontext also saves and
// restores the signal mask, a system call per switch that took about half the emulator's time); elsewhere
// ucontext.
#if defined(__x86_64__)
extern "C" void selfe_emu_switch(void** save, void* load);
// One copy per program: a weak, hidden symbol in a COMDAT group, whichever translation units include this.
asm(R"(
  .pushsection .text.selfe_emu_switch,"axG",@progbits,selfe_emu_switch,comdat
  .weak selfe_emu_switch
  .hidden selfe_emu_switch
  .type selfe_emu_switch, @function
selfe_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size selfe_emu_switch, .-selfe_emu_switch
  .popsection
)");
struct Context {
  void* stack = nullptr;
};
inline void switchTo(Context& from, const Context& to) { selfe_emu_switch(&from.stack, to.stack); }
// A context whose first switchTo starts entry() on the stack [base, base + bytes): a frame as selfe_emu_switch
// leaves it, six zero registers under entry's address, under a null return address entry never uses.
inline void prepare(Context& context, char* base, size_t bytes, void (*entry)()) {
  void** slot = reinterpret_cast<void**>(reinterpret_cast<uintptr_t>(base + bytes) & ~uintptr_t{15});
  *--slot = nullptr;
  *--slot = reinterpret_cast<void*>(entry);
  for (int saved = 0; saved < 6; ++saved) *--slot = nullptr;
  context.stack = slot;
}
#else
struct Context {
  ucontext_t state;
};
inline void switchTo(Context& from, const Context& to) { swapcontext(&from.state, &to.state); }
inline void prepare(Context& context, char* base, size_t bytes, void (*entry)()) {
  getcontext(&context.state);
  context.state.uc_stack.ss_sp = base;
  context.state.uc_stack.ss_size = bytes;
  context.state.uc_link = nullptr;
  makecontext(&context.state, entry, 0);
}
#endif

inline Context scheduler;
inline std::vector<Context> lanes;
inline std::vector<char> finished;
inline std::vector<std::unique_ptr<char[]>> stacks;
constexpr size_t kStackBytes = 192 << 10;  // room for a 24 KiB kernel parameter and the kernel's frames
inline int current = 0;                    // linear index of the running thread
inline long progress = 0;                  // barrier arrivals and finished threads, for deadlock detection
inline void (*body)(void*) = nullptr;
inline void* bodyArgument = nullptr;

inline void yieldThread() { switchTo(lanes[static_cast<size_t>(current)], scheduler); }

// Threads arrive, then give way until the last one has arrived.
class Barrier {
 public:
  void reset(int count) {
    count_ = count;
    arrived_ = 0;
  }
  long generation() const { return generation_; }
  void wait() {
    const long generation = generation_;
    ++progress;
    if (++arrived_ == count_) {
      arrived_ = 0;
      ++generation_;
    } else {
      while (generation_ == generation) yieldThread();
    }
  }

 private:
  int count_ = 0;
  int arrived_ = 0;
  long generation_ = 0;
};

struct Warp {
  Barrier sync;
  unsigned int mask = 0;  // the lanes that exist
  // Two sets of slots, used by alternate collectives: a lane that has passed a collective's barrier may write
  // the next one's while slower lanes still read this one's (it cannot get two ahead: the next barrier waits).
  unsigned char slots[2][32][8];
  unsigned char wide[2][32][64];  // gather()'s
  unsigned char turn[32];         // per lane: which set its next collective uses
};

// The launch's dynamic shared memory: kSharedGuard bytes after it must stay as they were filled.
constexpr size_t kSharedGuard = 256;
inline unsigned char* dynamicMemory = nullptr;
inline size_t dynamicBytes = 0;

inline Barrier blockBarrier;
inline std::vector<Warp> warps;

inline std::vector<int> order;  // the threads in the order of the current round
inline std::vector<char> held;  // threads the drift keeps from running this round

// The xorshift64 state: SELFE_EMU_SEED (any integer) or a fixed default; never 0.
inline uint64_t seeded() {
  const char* text = std::getenv("SELFE_EMU_SEED");
  const uint64_t seed = text == nullptr ? 0 : std::strtoull(text, nullptr, 0);
  return seed == 0 ? 0x9e3779b97f4a7c15u : seed * 0x9e3779b97f4a7c15u + 1;
}
inline uint64_t random = seeded();
inline uint64_t nextRandom() {
  random ^= random << 13;
  random ^= random >> 7;
  random ^= random << 17;
  return random;
}
inline const bool drift = [] {
  const char* text = std::getenv("SELFE_EMU_DRIFT");
  return text == nullptr || std::strcmp(text, "0") != 0;
}();

// How the warps of a block move during one phase (from one opening of the block barrier to the next); returns
// the number of rounds the holds last (0: until the threads left free cannot move on).
inline int drawPhase(int threads) {
  const int warpCount = (threads + 31) / 32;
  std::fill(held.begin(), held.end(), 0);
  if (!drift || warpCount < 2) return 0;
  const uint64_t draw = nextRandom();
  const int mode = static_cast<int>(draw % 8), chosen = static_cast<int>((draw >> 8) % static_cast<uint64_t>(warpCount));
  if (mode < 3) return 0;  // lockstep
  for (int i = 0; i < threads; ++i) {
    const bool inChosen = i / 32 == chosen;
    held[static_cast<size_t>(i)] = mode < 5 ? !inChosen : inChosen;  // a leader, else a laggard
  }
  return mode == 7 ? 1 + static_cast<int>((draw >> 16) % 8) : 0;
}

inline void runThread() {
  body(bodyArgument);
  finished[static_cast<size_t>(current)] = 1;
  ++progress;
  switchTo(lanes[static_cast<size_t>(current)], scheduler);
}

inline void setThreadIndex(int linear) {
  threadIdx.x = static_cast<unsigned int>(linear) % blockDim.x;
  threadIdx.y = static_cast<unsigned int>(linear) / blockDim.x % blockDim.y;
  threadIdx.z = static_cast<unsigned int>(linear) / (blockDim.x * blockDim.y);
}

inline void runBlock(int threads) {
  if (__start_selfe_emu_shared != nullptr)
    std::memset(__start_selfe_emu_shared, 0xff, static_cast<size_t>(__stop_selfe_emu_shared - __start_selfe_emu_shared));
  std::memset(dynamicMemory, 0xff, dynamicBytes + kSharedGuard);
  blockBarrier.reset(threads);
  warps.resize(static_cast<size_t>((threads + 31) / 32));
  for (size_t w = 0; w < warps.size(); ++w) {
    const int count = std::min(32, threads - static_cast<int>(w) * 32);
    warps[w].sync.reset(count);
    warps[w].mask = count == 32 ? 0xffffffffu : (1u << count) - 1;
    std::memset(warps[w].turn, 0, sizeof warps[w].turn);
  }
  lanes.resize(static_cast<size_t>(threads));
  finished.assign(static_cast<size_t>(threads), 0);
  while (stacks.size() < static_cast<size_t>(threads)) stacks.emplace_back(new char[kStackBytes]);
  for (int i = 0; i < threads; ++i) prepare(lanes[static_cast<size_t>(i)], stacks[static_cast<size_t>(i)].get(), kStackBytes, runThread);
  order.resize(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) order[static_cast<size_t>(i)] = i;
  held.assign(static_cast<size_t>(threads), 0);
  long phase = -1;     // the block barrier's generation the holds were drawn for
  int holdRounds = 0;  // rounds left before the holds lapse (0: they last until nothing free can move)
  bool holding = false;
  for (int remaining = threads; remaining > 0;) {
    if (blockBarrier.generation() != phase) {
      phase = blockBarrier.generation();
      holdRounds = drawPhase(threads);
      holding = std::find(held.begin(), held.end(), 1) != held.end();
    }
    const long before = progress;
    // A fresh random order every round (Fisher-Yates on the seeded xorshift: runs are reproducible).
    for (int k = threads - 1; k > 0; --k) std::swap(order[static_cast<size_t>(k)], order[nextRandom() % static_cast<uint64_t>(k + 1)]);
    for (int k = 0; k < threads; ++k) {
      const int i = order[static_cast<size_t>(k)];
      if (finished[static_cast<size_t>(i)] || held[static_cast<size_t>(i)]) continue;
      current = i;
      setThreadIndex(i);
      switchTo(scheduler, lanes[static_cast<size_t>(i)]);
    }
    remaining = static_cast<int>(std::count(finished.begin(), finished.end(), 0));
    const bool stuck = remaining > 0 && progress == before;
    if (holding && (stuck || (holdRounds > 0 && --holdRounds == 0))) {
      std::fill(held.begin(), held.end(), 0);  // the held warps go on; no new holds before the barrier opens again
      holding = false;
      continue;
    }
    if (stuck) {
      for (int i = 0; i < threads; ++i)
        if (!finished[static_cast<size_t>(i)]) {
          setThreadIndex(i);
          break;
        }
      fail("deadlock: threads wait at different barriers or warp collectives, or for threads that have returned");
    }
  }
  for (size_t i = 0; i < kSharedGuard; ++i)
    if (dynamicMemory[dynamicBytes + i] != 0xff) fail("a block wrote past the end of its dynamic shared memory");
}

template <class Body>
void invoke(void* argument) {
  (*static_cast<Body*>(argument))();
}

inline bool validConfiguration(dim3 grid, dim3 block, size_t shared) {
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64) return false;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) return false;
  return shared <= (227u << 10);
}

}  // namespace detail

// kernel<<<grid, block, shared, stream>>>(args) becomes launch([&]() { kernel(args); }, grid, block, shared, stream):
// the call runs once per thread, so template arguments are deduced as nvcc deduces them and every thread gets its
// own copies of the by-value parameters.
template <class Body>
void launch(Body body, dim3 grid, dim3 block, size_t shared = 0, cudaStream_t stream = nullptr) {
  (void)stream;
  const std::lock_guard<std::recursive_mutex> serial(deviceMutex());
  ++launches;
  if (!detail::validConfiguration(grid, block, shared)) {
    lastError = cudaErrorInvalidConfiguration;
    return;
  }
  if (skipKernels) return;
  const int threads = static_cast<int>(block.x * block.y * block.z);
  detail::body = &detail::invoke<Body>;
  detail::bodyArgument = &body;
  // 128-byte aligned (a GPU's is at least 16), fresh for every launch.
  std::unique_ptr<unsigned char, decltype(&std::free)> dynamic(
      static_cast<unsigned char*>(std::aligned_alloc(128, (shared + detail::kSharedGuard + 127) / 128 * 128)), &std::free);
  detail::dynamicMemory = dynamic.get();
  detail::dynamicBytes = shared;
  gridDim = grid;
  blockDim = block;
  const uint64_t blocks = uint64_t{grid.x} * grid.y * grid.z;
  // Blocks in a scrambled order (a stride coprime to the count), so no block can rely on another having run.
  uint64_t stride = blocks / 2 + 1;
  while (std::gcd(stride, blocks) != 1) ++stride;
  for (uint64_t k = 0; k < blocks; ++k) {
    const uint64_t b = (k * stride + blocks / 3) % blocks;
    blockIdx.x = static_cast<unsigned int>(b % grid.x);
    blockIdx.y = static_cast<unsigned int>(b / grid.x % grid.y);
    blockIdx.z = static_cast<unsigned int>(b / (uint64_t{grid.x} * grid.y));
    detail::runBlock(threads);
  }
  blockIdx = uint3{0, 0, 0};
  threadIdx = uint3{0, 0, 0};
  detail::dynamicMemory = nullptr;
  detail::dynamicBytes = 0;
}

// Global memory cp.async may read (the kernels' inputs), as [begin, end) byte ranges; empty: not checked.
inline std::vector<std::pair<const unsigned char*, const unsigned char*>> readable;
inline void readableOnly(std::vector<std::pair<const void*, size_t>> ranges) {
  readable.clear();
  for (const auto& [begin, bytes] : ranges)
    readable.emplace_back(static_cast<const unsigned char*>(begin), static_cast<const unsigned char*>(begin) + bytes);
}
inline bool mayRead(const void* p, size_t bytes) {
  if (readable.empty()) return true;
  const auto* at = static_cast<const unsigned char*>(p);
  for (const auto& [begin, end] : readable)
    if (at >= begin && at + bytes <= end) return true;
  return false;
}

// The running block's dynamic shared memory (what `extern __shared__ T name[];` names on a GPU).
inline void* dynamicShared() { return detail::dynamicMemory; }
inline size_t dynamicSharedBytes() { return detail::dynamicBytes; }

inline void syncThreads() { detail::blockBarrier.wait(); }

// One warp collective: every lane of the warp publishes `value`, then reads lane source(lane)'s.
template <class T, class Source>
T exchange(unsigned int mask, T value, Source source) {
  static_assert(sizeof(T) <= 8, "warp exchange of a value wider than 8 bytes");
  detail::Warp& warp = detail::warps[static_cast<size_t>(detail::current / 32)];
  if (mask != warp.mask) fail("warp collective with a mask that is not the warp's lanes");
  const int lane = detail::current % 32;
  const int set = warp.turn[lane];
  warp.turn[lane] ^= 1;
  std::memcpy(warp.slots[set][lane], &value, sizeof(T));
  warp.sync.wait();
  T out;
  std::memcpy(&out, warp.slots[set][source(lane)], sizeof(T));
  return out;
}

// A warp-wide all-gather: every lane of the (full) warp publishes `bytes` bytes of `mine`; `all` receives lane
// l's at all + l * bytes. Calls must be matched by every lane, like any warp collective.
inline void gather(const void* mine, size_t bytes, void* all) {
  if (bytes > 64) fail("warp gather of more than 64 bytes per lane");
  detail::Warp& warp = detail::warps[static_cast<size_t>(detail::current / 32)];
  if (warp.mask != 0xffffffffu) fail("warp gather in a partial warp");
  const int set = warp.turn[detail::current % 32];
  warp.turn[detail::current % 32] ^= 1;
  std::memcpy(warp.wide[set][detail::current % 32], mine, bytes);
  warp.sync.wait();
  for (int lane = 0; lane < 32; ++lane) std::memcpy(static_cast<unsigned char*>(all) + lane * bytes, warp.wide[set][lane], bytes);
}

}  // namespace emu
