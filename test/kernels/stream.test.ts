import { Effect, Exit, type Scope } from "effect"
import { describe, expect, it } from "vitest"
import { Kernels } from "../../src/kernels/Kernels.ts"
import { liftBackend } from "../../src/kernels/lift.ts"
import { loadAddon } from "../../src/kernels/native/binding.ts"
import { NativeBackend } from "../../src/kernels/native/NativeBackend.ts"
import { ReferenceBackend } from "../../src/kernels/reference/ReferenceBackend.ts"
import { streamTimesBetween } from "../../src/pipeline/stepProfile.ts"
import { busyAcrossProducts } from "../helpers/streamBusy.ts"

/** Stream semantics of the native backend: in-order work, promise reads, sticky device errors. */
describe("the native stream", () => {
  const addon = loadAddon()

  const run = <A, E>(backend: NativeBackend, effect: Effect.Effect<A, E, Kernels | Scope.Scope>) =>
    Effect.runPromiseExit(Effect.scoped(Effect.provideService(effect, Kernels, liftBackend(backend))))

  it("says how long its worker was busy: more than nothing, no longer than the work took", async () => {
    const backend = new NativeBackend(addon)
    const { busy, wall } = await busyAcrossProducts(backend)
    backend.dispose()
    expect(busy).toBeGreaterThan(0)
    expect(busy).toBeLessThanOrEqual(wall)
  })

  it("splits its worker's time by op: each op's calls, and seconds within the busy time", async () => {
    const backend = new NativeBackend(addon)
    const { busy, ops } = await busyAcrossProducts(backend)
    backend.dispose()
    expect(ops.get("matmul")?.calls).toBe(20)
    expect(ops.get("full")?.calls).toBe(1)
    expect(ops.get("matmul")?.seconds).toBeGreaterThan(0)
    const opSeconds = [...ops.values()].reduce((sum, time) => sum + time.seconds, 0)
    expect(opSeconds).toBeLessThanOrEqual(busy)
    expect(ops.get("matmul")?.seconds, "the products are most of the work").toBeGreaterThan(busy / 2)
  })

  it("gives each item's time to its own op: slow products between quick ones", async () => {
    const backend = new NativeBackend(addon, { threads: 1 })
    const before = backend.streamTimes()
    const big = backend.full([768, 768], 1)
    const small = backend.full([4], 1)
    // A 768³ product takes milliseconds, a 4-element affine well under one: a time given to the item before or
    // after its own would swap them.
    for (let i = 0; i < 5; i++) {
      backend.matmul(big, big).release()
      backend.affine(small, 2, 1).release()
    }
    await backend.sync()
    const after = backend.streamTimes()
    big.release()
    small.release()
    backend.dispose()
    if (before === undefined || after === undefined) throw new Error("a native backend keeps stream times")
    const ops = new Map(streamTimesBetween(before, after).ops.map((time) => [time.op, time]))
    expect(ops.get("matmul")?.calls).toBe(5)
    expect(ops.get("affine")?.calls).toBe(5)
    expect(ops.get("matmul")?.seconds).toBeGreaterThan(3 * (ops.get("affine")?.seconds ?? Infinity))
  })

  it("counts reads in its time by op, and not the work it skips after a failure", async () => {
    const backend = new NativeBackend(addon)
    const before = backend.streamTimes()
    const table = backend.fromArray([1, 2, 3, 4], [2, 2])
    const ids = backend.fromArray([0, 7], [2], "i32")
    const rows = backend.embedding(table, ids)
    const skipped = [backend.affine(table, 2, 1), backend.affine(table, 3, 1)]
    const read = await backend.read(table).then(() => "resolved", () => "rejected")
    await backend.sync().catch(() => undefined)
    const after = backend.streamTimes()
    for (const t of [table, ids, rows, ...skipped]) t.release()
    backend.dispose()
    expect(read).toBe("rejected")
    expect(before).toEqual({ busySeconds: 0, ops: [] })
    const ops = new Map(after?.ops.map((time) => [time.op, time.calls]))
    expect(ops.get("upload")).toBe(2)
    expect(ops.get("embedding"), "the failing op").toBe(1)
    expect(ops.has("affine"), "launches skipped after the failure").toBe(false)
    expect(ops.get("read")).toBe(1)
  })

  it("reads see every write enqueued before them, even when the tensor is released right after", async () => {
    const backend = new NativeBackend(addon)
    const exit = await run(
      backend,
      Effect.gen(function* () {
        const k = yield* Kernels
        const x = yield* k.zeros([1 << 16])
        const reads: Array<Promise<Float32Array | Float64Array | Int32Array>> = []
        for (let i = 1; i <= 20; i++) {
          const next = yield* k.affine(x, 1, 1)
          yield* k.assign(x, next)
          reads.push(backend.read(x))
          next.release()
        }
        const results = yield* Effect.promise(() => Promise.all(reads))
        return results.map((r) => [r[0], r[r.length - 1]])
      })
    )
    backend.dispose()
    expect(Exit.isSuccess(exit) && exit.value).toEqual(Array.from({ length: 20 }, (_, i) => [i + 1, i + 1]))
  })

  it("an out-of-range id fails the stream with a DeviceError naming the op, and the failure sticks", async () => {
    const backend = new NativeBackend(addon)
    const exit = await run(
      backend,
      Effect.gen(function* () {
        const k = yield* Kernels
        const table = yield* k.fromArray([1, 2, 3, 4], [2, 2])
        const ids = yield* k.fromArray([0, 7], [2], "i32")
        const rows = yield* k.embedding(table, ids)
        const first = yield* Effect.flip(k.read(rows))
        const second = yield* Effect.flip(k.sync())
        return [first, second]
      })
    )
    backend.dispose()
    expect(Exit.isSuccess(exit)).toBe(true)
    if (Exit.isSuccess(exit))
      for (const error of exit.value) {
        expect(error._tag).toBe("DeviceError")
        expect(error.message).toMatch(/embedding/)
        expect(error.message).toMatch(/7/)
      }
  })

  it("refuses an allocation over the memory limit with OutOfMemoryError and keeps working", async () => {
    const backend = new NativeBackend(addon, { memoryLimitBytes: 1 << 20 })
    const exit = await run(
      backend,
      Effect.gen(function* () {
        const k = yield* Kernels
        const oom = yield* Effect.flip(k.zeros([1 << 20]))
        const small = yield* k.full([3], 5)
        return { tag: oom._tag, message: oom.message, small: Array.from(yield* k.read(small)) }
      })
    )
    backend.dispose()
    expect(Exit.isSuccess(exit) && exit.value).toEqual({ tag: "OutOfMemoryError", message: expect.stringMatching(/full/), small: [5, 5, 5] })
  })

  it("rejects a tensor from another backend and a released tensor by name", async () => {
    const backend = new NativeBackend(addon)
    const other = new ReferenceBackend({ precision: "f32" })
    const foreign = other.fromArray([1], [1])
    const exit = await run(
      backend,
      Effect.gen(function* () {
        const k = yield* Kernels
        const a = yield* k.fromArray([1], [1])
        const fromElsewhere = yield* Effect.flip(k.add(a, foreign))
        a.release()
        const released = yield* Effect.flip(k.gelu(a))
        return [fromElsewhere, released].map((e) => [e._tag, e.message])
      })
    )
    backend.dispose()
    other.dispose()
    expect(Exit.isSuccess(exit) && exit.value).toEqual([
      ["InvalidArgumentError", expect.stringMatching(/add: b .* lives on reference/)],
      ["DisposedTensorError", expect.stringMatching(/gelu: x .* was released/)]
    ])
  })

  it.each([
    ["native", () => new NativeBackend(addon)],
    ["reference", () => new ReferenceBackend({ precision: "f32" })]
  ] as const)("startRead (%s) copies at the call: later writes and the release do not reach the wait; a released tensor is refused by name", async (_, make) => {
    const backend = make()
    const k = liftBackend(backend)
    const exit = await Effect.runPromiseExit(
      Effect.scoped(
        Effect.gen(function* () {
          const x = yield* k.fromArray([1, 2, 3], [3])
          const wait = yield* k.startRead(x)
          yield* k.assign(x, yield* k.full([3], 9))
          const later = yield* k.startRead(x)
          x.release()
          const refused = yield* Effect.flip(k.startRead(x))
          return { first: Array.from(yield* wait), second: Array.from(yield* later), refused: [refused._tag, refused.message] }
        })
      )
    )
    backend.dispose()
    expect(Exit.isSuccess(exit) && exit.value).toEqual({
      first: [1, 2, 3],
      second: [9, 9, 9],
      refused: ["DisposedTensorError", expect.stringMatching(/read: x .* was released/)]
    })
  })
})
