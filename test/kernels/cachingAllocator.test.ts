import { afterAll, describe, expect, it } from "vitest"
import { loadAddon } from "../../src/kernels/native/binding.ts"

/**
 * The native caching allocator (native/napi/allocator.cpp) as a CPU device's stats show it: a request takes
 * the smallest cached block that fits without wasting more than half of it (sizes round up to 512 bytes below
 * 1 MiB), keeps that block's size, and asks the system only when no cached block fits. The CUDA device's
 * tensors use the same class.
 */
describe("the native caching allocator", () => {
  const addon = loadAddon()
  const o = addon.ops
  const dev = new addon.Device({})
  afterAll(() => o.dispose(dev))
  /** An f32 tensor of n elements: 4n bytes. */
  const tensor = (n: number) => o.full(dev, 0, [n], 0)
  const stats = () => o.stats(dev)

  it("reuses a size's block, a block up to twice the size, and a larger block while its own size's blocks are all in use", () => {
    o.emptyCache(dev)
    const start = stats()
    const a = tensor(1024)
    o.release(dev, a)
    const b = tensor(1024)
    expect(stats().systemAllocs - start.systemAllocs, "the same size again: the cached block").toBe(1)

    // 1024 floats in use twice, and one block of 1536 floats (6144 bytes) cached.
    const c = tensor(1024)
    const big = tensor(1536)
    o.release(dev, big)
    expect(stats().systemAllocs - start.systemAllocs).toBe(3)
    expect(stats().cachedBytes).toBe(6144)

    // Every 4096-byte block is in use (none is cached): the 6144-byte block serves, kept whole.
    const d = tensor(1024)
    expect(stats().systemAllocs - start.systemAllocs, "a cached block up to twice the size").toBe(3)
    expect(stats().cachedBytes).toBe(0)
    expect(stats().liveBytes - start.liveBytes).toBe(4096 + 4096 + 6144)

    // Back in the cache, the 4096-byte blocks serve their size before the larger one.
    o.releaseAll(dev, [b, c, d])
    const e = tensor(1024)
    expect(stats().cachedBytes).toBe(4096 + 6144)

    // More than twice the request: not reused, the system is asked.
    const small = tensor(256)
    expect(stats().systemAllocs - start.systemAllocs, "a block over twice the size is not taken").toBe(4)
    o.releaseAll(dev, [e, small])
    expect(stats().liveBytes).toBe(start.liveBytes)
    expect(stats().cachedBytes).toBe(4096 + 4096 + 6144 + 1024)
  })
})
