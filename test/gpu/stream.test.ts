import { spawnSync } from "node:child_process"
import { Effect, Exit, Layer, type Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Kernels } from "../../src/kernels/Kernels.ts"
import { Cuda } from "../../src/kernels/layers.ts"
import { liftBackend } from "../../src/kernels/lift.ts"
import { loadAddon } from "../../src/kernels/native/binding.ts"
import { NativeBackend } from "../../src/kernels/native/NativeBackend.ts"
import type { StreamTimes } from "../../src/kernels/ops.ts"
import { streamTimesBetween } from "../../src/pipeline/stepProfile.ts"
import { busyAcrossProducts } from "../helpers/streamBusy.ts"
import { cudaAvailability, cudaEmulated, describeCuda, runOn } from "./cuda.ts"

/** The CUDA backend as a stream: in-order work, promise reads off the event loop, typed and sticky errors. */

describe("opening a CUDA device", () => {
  const availability = cudaAvailability()

  it(availability.available ? "opens the GPU" : "fails with SELFE_DEVICE saying why, and so does the Cuda layer", async () => {
    const addon = loadAddon()
    if (availability.available) {
      const device = new addon.Device({ backend: "cuda" })
      expect(addon.ops.stats(device).backend).toBe("cuda")
      addon.ops.dispose(device)
      return
    }
    let error: (Error & { code?: string; reason?: string }) | undefined
    try {
      new addon.Device({ backend: "cuda" })
    } catch (cause) {
      error = cause as Error & { code?: string; reason?: string }
    }
    expect(error?.code).toBe("SELFE_DEVICE")
    expect(error?.reason).toMatch(/CUDA/)
    const exit = await Effect.runPromiseExit(Effect.scoped(Layer.build(Cuda())))
    expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toMatch(/DeviceError/)
  })
})

/** The coded error `make` throws, or undefined where it throws none. */
const refusal = (make: () => unknown) => {
  try {
    make()
  } catch (cause) {
    return cause as Error & { code?: string; reason?: string }
  }
  return undefined
}

// The CUDA device options that choose between kernels: two or three values each, the first the default, by
// default from an environment variable.
const choiceOptions = [
  { option: "attentionKernels", variable: "SELFE_CUDA_ATTENTION", values: ["auto", "mma.sync", "simt"], bad: "wgmma" },
  { option: "gemmAlgorithms", variable: "SELFE_CUDA_GEMM", values: ["heuristic", "timed"], bad: "fastest" },
  { option: "determinism", variable: "SELFE_CUDA_DETERMINISM", values: ["not-guaranteed", "run-to-run"], bad: "exact" }
] as const

describe.each(choiceOptions)("the $option device option", ({ option, variable, values, bad }) => {
  const quoted = values.map((value) => `"${value}"`)
  const choices = `${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}`

  it("is refused on the cpu backend, which has one choice", () => {
    const error = refusal(() => new (loadAddon().Device)({ [option]: values[1] }))
    expect(error?.code).toBe("SELFE_INVALID_ARGUMENT")
    expect(error?.reason).toBe(`option ${option} applies to the cuda backend only`)
  })

  const cuda = cudaAvailability().available
  it.skipIf(!cuda)(`takes ${choices} on CUDA (default: ${variable}, else "${values[0]}"), naming a bad value's source`, () => {
    const addon = loadAddon()
    const saved = process.env[variable]
    try {
      delete process.env[variable]
      const plain = new addon.Device({ backend: "cuda" })
      expect(addon.ops.stats(plain)[option]).toBe(values[0])
      addon.ops.dispose(plain)
      for (const choice of values) {
        const device = new addon.Device({ backend: "cuda", [option]: choice })
        expect(addon.ops.stats(device)[option]).toBe(choice)
        addon.ops.dispose(device)
      }
      expect(refusal(() => new addon.Device({ backend: "cuda", [option]: bad }))?.reason).toBe(`option ${option} must be ${choices}, got "${bad}"`)
      expect(refusal(() => new addon.Device({ backend: "cuda", [option]: 1 as unknown as string }))?.reason).toBe(`option ${option} must be ${choices}`)
      process.env[variable] = values[1]
      const device = new addon.Device({ backend: "cuda" })
      expect(addon.ops.stats(device)[option]).toBe(values[1])
      addon.ops.dispose(device)
      process.env[variable] = bad
      expect(refusal(() => new addon.Device({ backend: "cuda" }))?.reason).toBe(`${variable} must be ${choices}, got "${bad}"`)
    } finally {
      if (saved === undefined) delete process.env[variable]
      else process.env[variable] = saved
    }
  })
})

// The cuBLASLt workspace: bytes, 32 MiB by default, from SELFE_CUDA_GEMM_WORKSPACE where that is set.
describe("the gemmWorkspaceBytes device option", () => {
  const variable = "SELFE_CUDA_GEMM_WORKSPACE"

  it("is refused on the cpu backend, which has no cuBLASLt", () => {
    const error = refusal(() => new (loadAddon().Device)({ gemmWorkspaceBytes: 1 << 20 }))
    expect(error?.code).toBe("SELFE_INVALID_ARGUMENT")
    expect(error?.reason).toBe("option gemmWorkspaceBytes applies to the cuda backend only")
  })

  it.skipIf(!cudaAvailability().available)(`takes bytes in [0, 2^30] on CUDA (default: ${variable}, else 33554432), naming a bad value's source`, () => {
    const addon = loadAddon()
    const saved = process.env[variable]
    const workspaceOf = (options: { gemmWorkspaceBytes?: number }) => {
      const device = new addon.Device({ backend: "cuda", ...options })
      const bytes = addon.ops.stats(device).gemmWorkspaceBytes
      addon.ops.dispose(device)
      return bytes
    }
    try {
      delete process.env[variable]
      expect(workspaceOf({})).toBe(33554432)
      for (const bytes of [0, 1 << 20, 12345, 2 ** 30]) expect(workspaceOf({ gemmWorkspaceBytes: bytes })).toBe(bytes)
      for (const bad of [-1, 1.5, 2 ** 30 + 1, Number.NaN, "1048576"]) {
        const error = refusal(() => workspaceOf({ gemmWorkspaceBytes: bad as number }))
        expect(error?.code, String(bad)).toBe("SELFE_INVALID_ARGUMENT")
        expect(error?.reason, String(bad)).toBe("option gemmWorkspaceBytes must be an integer in [0, 1073741824]")
      }
      process.env[variable] = "1048576"
      expect(workspaceOf({})).toBe(1048576)
      expect(workspaceOf({ gemmWorkspaceBytes: 0 })).toBe(0)
      process.env[variable] = ""
      expect(workspaceOf({})).toBe(33554432)
      for (const bad of ["1MiB", "-1", "1073741825", " 1024", "1e6", "99999999999999999999"]) {
        process.env[variable] = bad
        const error = refusal(() => workspaceOf({}))
        expect(error?.code, bad).toBe("SELFE_INVALID_ARGUMENT")
        expect(error?.reason, bad).toBe(`${variable} must be an integer in [0, 1073741824], got "${bad}"`)
        // An option given beats the variable, which is then not read.
        expect(workspaceOf({ gemmWorkspaceBytes: 4096 }), bad).toBe(4096)
      }
    } finally {
      if (saved === undefined) delete process.env[variable]
      else process.env[variable] = saved
    }
  })
})

// Timing GEMM candidates picks whichever ran quickest this time: not run-to-run.
it.skipIf(!cudaAvailability().available)('refuses determinism "run-to-run" with gemmAlgorithms "timed", however each was given', () => {
  const addon = loadAddon()
  const reason = 'determinism "run-to-run" and gemmAlgorithms "timed" exclude each other: a timed GEMM plan may pick another cuBLASLt algorithm on another run'
  const saved = { gemm: process.env["SELFE_CUDA_GEMM"], determinism: process.env["SELFE_CUDA_DETERMINISM"] }
  const refusalOf = (options: Record<string, string>) => refusal(() => addon.ops.dispose(new addon.Device({ backend: "cuda", ...options })))
  try {
    delete process.env["SELFE_CUDA_GEMM"]
    delete process.env["SELFE_CUDA_DETERMINISM"]
    const both = refusalOf({ determinism: "run-to-run", gemmAlgorithms: "timed" })
    expect(both?.code).toBe("SELFE_INVALID_ARGUMENT")
    expect(both?.reason).toBe(reason)
    process.env["SELFE_CUDA_GEMM"] = "timed"
    expect(refusalOf({ determinism: "run-to-run" })?.reason).toBe(reason)
    // An explicit heuristic beats the variable, so the pair is fine.
    expect(refusalOf({ determinism: "run-to-run", gemmAlgorithms: "heuristic" })).toBeUndefined()
    delete process.env["SELFE_CUDA_GEMM"]
    process.env["SELFE_CUDA_DETERMINISM"] = "run-to-run"
    expect(refusalOf({ gemmAlgorithms: "timed" })?.reason).toBe(reason)
  } finally {
    for (const [variable, value] of [["SELFE_CUDA_GEMM", saved.gemm], ["SELFE_CUDA_DETERMINISM", saved.determinism]] as const)
      if (value === undefined) delete process.env[variable]
      else process.env[variable] = value
  }
})

describeCuda("the CUDA stream", () => {
  let backend: NativeBackend
  beforeAll(() => {
    backend = new NativeBackend(loadAddon(), { backend: "cuda" })
  })
  afterAll(() => backend?.dispose())

  it("reads see every write enqueued before them, even when the tensor is released right after", async () => {
    const results = await runOn(
      liftBackend(backend),
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
        return (yield* Effect.promise(() => Promise.all(reads))).map((r) => [r[0], r[r.length - 1]])
      })
    )
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => [i + 1, i + 1]))
  })

  // The emulator runs kernels as they are launched: there is no device to wait for.
  it.skipIf(cudaEmulated)("keeps the event loop free while the GPU works: a timer fires before a read of long work resolves", async () => {
    const order: Array<string> = []
    await runOn(
      liftBackend(backend),
      Effect.gen(function* () {
        const k = yield* Kernels
        const a = yield* k.randomNormal([2048, 2048], { seed: 1, offset: 0 })
        let product = a
        for (let i = 0; i < 50; i++) product = yield* k.matmul(product, a, { alpha: 1 / 64 })
        const read = backend.read(product).then(() => order.push("read"))
        setTimeout(() => order.push("timer"), 0)
        yield* Effect.promise(() => read)
      })
    )
    expect(order).toEqual(["timer", "read"])
  })

  it("an out-of-range id fails the stream with a DeviceError naming the op, and the failure sticks", async () => {
    const faulty = new NativeBackend(loadAddon(), { backend: "cuda" })
    const exit = await Effect.runPromiseExit(
      Effect.scoped(
        Effect.provideService(
          Effect.gen(function* () {
            const k = yield* Kernels
            const table = yield* k.fromArray([1, 2, 3, 4], [2, 2])
            const ids = yield* k.fromArray([0, 7], [2], "i32")
            const rows = yield* k.embedding(table, ids)
            return [yield* Effect.flip(k.read(rows)), yield* Effect.flip(k.sync())]
          }),
          Kernels,
          liftBackend(faulty)
        )
      )
    )
    faulty.dispose()
    expect(Exit.isSuccess(exit)).toBe(true)
    if (Exit.isSuccess(exit))
      for (const error of exit.value) {
        expect(error._tag).toBe("DeviceError")
        expect(error.message).toMatch(/embedding: id 7 at position 1/)
      }
  })

  it("rejects only the reads and syncs queued after an out-of-range id, whenever the kernel runs", async () => {
    // On the emulator each wait for a read takes 5 ms, so the failing kernel has run before the reads queued
    // ahead of it complete (on a GPU it may: the kernel takes microseconds).
    if (cudaEmulated) process.env["SELFE_EMU_EVENT_WAIT_MS"] = "5"
    const faulty = new NativeBackend(loadAddon(), { backend: "cuda" })
    try {
      const { before, after } = await runOn(
        liftBackend(faulty),
        Effect.gen(function* () {
          const k = yield* Kernels
          const table = yield* k.fromArray([1, 2, 3, 4], [2, 2])
          const ids = yield* k.fromArray([0, 7], [2], "i32")
          const x = yield* k.fromArray([5, 6], [2])
          const reads = Array.from({ length: 32 }, () => faulty.read(x))
          const rows = yield* k.embedding(table, ids)
          const after = [yield* Effect.flip(k.read(rows)), yield* Effect.flip(k.sync())]
          const before = yield* Effect.promise(() => Promise.all(reads.map((read) => read.then((data) => Array.from(data)))))
          return { before, after }
        })
      )
      expect(before).toEqual(Array.from({ length: 32 }, () => [5, 6]))
      for (const error of after) {
        expect(error._tag).toBe("DeviceError")
        expect(error.message).toMatch(/embedding: id 7 at position 1/)
      }
    } finally {
      faulty.dispose()
      delete process.env["SELFE_EMU_EVENT_WAIT_MS"]
    }
  })

  it("refuses an allocation over the memory limit with OutOfMemoryError and keeps working", async () => {
    const small = new NativeBackend(loadAddon(), { backend: "cuda", memoryLimitBytes: 1 << 20 })
    const result = await runOn(
      liftBackend(small),
      Effect.gen(function* () {
        const k = yield* Kernels
        const oom = yield* Effect.flip(k.zeros([1 << 20]))
        const few = yield* k.full([3], 5)
        return { tag: oom._tag, message: oom.message, few: Array.from(yield* k.read(few)) }
      })
    )
    small.dispose()
    expect(result).toEqual({ tag: "OutOfMemoryError", message: expect.stringMatching(/zeros|full/), few: [5, 5, 5] })
  })

  it("says how long its launch thread was busy: more than nothing, no longer than the work took", async () => {
    const { busy, wall } = await busyAcrossProducts(backend)
    expect(busy).toBeGreaterThan(0)
    expect(busy).toBeLessThanOrEqual(wall)
  })

  it("splits its launch thread's time by op: each op's calls, and seconds within the busy time", async () => {
    const { busy, ops } = await busyAcrossProducts(backend)
    expect(ops.get("matmul")?.calls).toBe(20)
    expect(ops.get("full")?.calls).toBe(1)
    expect(ops.get("matmul")?.seconds).toBeGreaterThan(0)
    expect([...ops.values()].reduce((sum, time) => sum + time.seconds, 0)).toBeLessThanOrEqual(busy)
  })

  it("names uploads and reads in its launch thread's time by op", async () => {
    await backend.sync()
    const before = backend.streamTimes() as StreamTimes
    const a = backend.fromArray([1, 2, 3, 4], [4])
    const b = backend.fromArray([5, 6, 7, 8], [4])
    const sum = backend.add(a, b)
    await backend.read(sum)
    await backend.sync()
    const ops = new Map(streamTimesBetween(before, backend.streamTimes() as StreamTimes).ops.map((time) => [time.op, time.calls]))
    for (const t of [a, b, sum]) t.release()
    expect(ops.get("upload")).toBe(2)
    expect(ops.get("add")).toBe(1)
    expect(ops.get("read")).toBe(1)
  })

  it("caches released blocks: allocating the same size again takes nothing from the system", async () => {
    const allocateAndRelease = () => runOn(liftBackend(backend), Effect.flatMap(Kernels, (k) => k.zeros([1 << 20])))
    await allocateAndRelease()
    const first = backend.stats()
    await allocateAndRelease()
    const second = backend.stats()
    expect(first.cachedBytes).toBeGreaterThanOrEqual(4 << 20)
    expect(second.systemAllocs).toBe(first.systemAllocs)
  })
})

// Each case opens the one device of the emulated process, so that SELFE_EMU_DEVICE_BYTES measures its memory alone.
describeCuda("the launch thread's failures and memory", () => {
  /**
   * Runs `body` on a fresh device without a GEMM workspace. Inside it `fill()` sizes the emulated device at what
   * the device holds now (in use or cached), `fill(0)` at nothing; afterwards the size goes and the device closes.
   */
  const onFreshDevice = async <A, E>(
    body: (device: NativeBackend, fill: (bytes?: number) => void) => Effect.Effect<A, E, Kernels | Scope.Scope>
  ): Promise<A> => {
    const device = new NativeBackend(loadAddon(), { backend: "cuda", gemmWorkspaceBytes: 0 })
    const fill = (bytes?: number) => {
      const held = device.stats()
      process.env["SELFE_EMU_DEVICE_BYTES"] = String(bytes ?? held.liveBytes + held.cachedBytes)
    }
    try {
      return await runOn(liftBackend(device), body(device, fill))
    } finally {
      delete process.env["SELFE_EMU_DEVICE_BYTES"]
      device.dispose()
    }
  }

  // Launches are made on the device's launch thread after the op returned, so a failure there (here: no device
  // memory for a reduction's temporaries, which only the emulator can arrange: SELFE_EMU_DEVICE_BYTES) reaches JS
  // at the next op, read or sync, naming the op that failed; and it sticks, as nothing queued after it can be
  // trusted. What was queued before it completes as ever.
  it.runIf(cudaEmulated)("a launch that fails on the launch thread fails every later op, read and sync, naming it", async () => {
    const result = await onFreshDevice((device, fill) =>
      Effect.gen(function* () {
        const k = yield* Kernels
        const small = yield* k.full([16], 1)
        const big = yield* k.full([1 << 20], 1)
        // Small blocks for the outputs of the sum and the two affines below, and temporaries too small for the sum.
        const spares = [yield* k.full([16], 0), yield* k.full([16], 0), yield* k.full([16], 0)]
        const warm = yield* k.sum(small)
        warm.release()
        yield* k.sync()
        fill(0)
        const before = [device.read(small).then((values) => Array.from(values)), device.sync().then(() => "synced")]
        spares[0]!.release()
        const total = yield* k.sum(big)
        // Released after the sum was queued: blocks the launch thread may not take back for it.
        for (const spare of spares.slice(1)) spare.release()
        // Queued at once after the sum: refused at the call if the launch thread has failed by then, else queued
        // and skipped, its read rejecting.
        const next = yield* Effect.either(k.affine(small, 2, 0))
        const nextRead = next._tag === "Right" ? (yield* Effect.flip(k.read(next.right))).message : undefined
        const read = yield* Effect.flip(k.read(total))
        const later = yield* Effect.flip(k.affine(small, 2, 0))
        const sync = yield* Effect.flip(k.sync())
        return {
          before: yield* Effect.promise(() => Promise.all(before)),
          read: [read._tag, read.message],
          next: next._tag === "Left" ? next.left.message : nextRead,
          later: [later._tag, later.message],
          sync: sync.message
        }
      })
    )
    expect(result.before).toEqual([Array(16).fill(1), "synced"])
    expect(result.read[0]).toBe("DeviceError")
    expect(result.read[1]).toMatch(/sum: cannot allocate 4096 bytes of scratch memory$/)
    expect(result.next).toMatch(/sum: cannot allocate 4096 bytes of scratch memory$/)
    expect(result.later[0]).toBe("OutOfMemoryError")
    expect(result.later[1]).toMatch(/^affine: an earlier launch on this device failed, so nothing more runs on it: sum: /)
    expect(result.sync).toBe(result.read[1])
  })

  // A launch short of device memory for its temporaries takes back the tensors' cached blocks whose last users have
  // run, as an allocation on the JS thread empties the cache, instead of failing the device.
  it.runIf(cudaEmulated)("a launch short of memory for its temporaries takes back the tensors' cached blocks", async () => {
    const result = await onFreshDevice((device, fill) =>
      Effect.gen(function* () {
        const k = yield* Kernels
        const small = yield* k.full([16], 1)
        const big = yield* k.full([1 << 20], 1)
        const cached = [yield* k.sum(small), yield* k.full([1 << 20], 0)]
        for (const tensor of cached) tensor.release()
        yield* k.sync()
        const held = device.stats()
        // Full: every byte the emulated device holds is in use or cached (this is the one device open).
        fill()
        const total = yield* k.sum(big)
        const values = Array.from(yield* k.read(total))
        // The device goes on working.
        const twice = yield* k.affine(total, 2, 0)
        return { total: values, twice: Array.from(yield* k.read(twice)), held, after: device.stats() }
      })
    )
    expect(result.total).toEqual([1 << 20])
    expect(result.held.cachedBytes).toBeGreaterThanOrEqual(4 << 20)
    expect(result.after.cachedBytes).toBeLessThan(result.held.cachedBytes - (4 << 20) + 4096)
    expect(result.twice).toEqual([2 << 20])
  })

  // The reverse: a tensor the device cannot hold frees the temporaries' cache too, even with nothing in its own.
  it.runIf(cudaEmulated)("a tensor short of memory takes back the cached temporaries", async () => {
    const result = await onFreshDevice((device, fill) =>
      Effect.gen(function* () {
        const k = yield* Kernels
        const big = yield* k.full([1 << 20], 1)
        // Leaves its temporaries (4096 bytes) cached; the scalar stays live, so the tensors' cache is empty.
        const total = yield* k.sum(big)
        yield* k.sync()
        const held = device.stats()
        fill()
        const more = yield* k.full([1024], 2)
        return { held, more: Array.from(yield* k.read(more)).slice(0, 2), total: Array.from(yield* k.read(total)), after: device.stats() }
      })
    )
    expect(result.held.cachedBytes).toBe(4096)
    expect(result.more).toEqual([2, 2])
    expect(result.total).toEqual([1 << 20])
    expect(result.after.cachedBytes).toBe(0)
  })

  // process.exit() runs no cleanup hooks: the device's launch thread would go on launching while the process tears
  // down what its launches use (a crash in 2 of 5 such exits before the addon stopped it at exit).
  it.runIf(cudaEmulated)("process.exit() with launches still queued exits cleanly", () => {
    const script = [
      `const addon = require(${JSON.stringify(process.env["SELFE_NATIVE_ADDON"])})`,
      `const device = new addon.Device({ backend: "cuda", gemmWorkspaceBytes: 0 })`,
      `const x = addon.ops.full(device, 0, [1 << 16], 1)`,
      `for (let i = 0; i < 200; i++) addon.ops.sum(device, x)`,
      `process.exit(7)`
    ].join("\n")
    for (let run = 0; run < 3; run++) {
      // glibc fills freed memory with a pattern, so that a use after free at exit crashes rather than reads old bytes.
      const env = { ...process.env, GLIBC_TUNABLES: "glibc.malloc.perturb=165" }
      const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 60_000, env })
      expect({ status: child.status, signal: child.signal, stderr: child.stderr }).toEqual({ status: 7, signal: null, stderr: "" })
    }
  })
})
