import { copyFileSync, mkdtempSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Cause, Effect, Exit } from "effect"
import { afterAll, beforeAll, expect, it } from "vitest"
import { isKernelError } from "../../src/kernels/errors.ts"
import { Kernels } from "../../src/kernels/Kernels.ts"
import { liftBackend } from "../../src/kernels/lift.ts"
import { defaultAddonPath, loadAddon, type NativeAddon, type NativeDevice } from "../../src/kernels/native/binding.ts"
import { NativeBackend } from "../../src/kernels/native/NativeBackend.ts"
import { tensorOpNames } from "../../src/kernels/ops.ts"
import { cudaAvailability, describeWhen } from "../gpu/cuda.ts"
import { Gen } from "../helpers/gen.ts"

/**
 * Bad input at the N-API boundary: thousands of calls with arguments of the wrong type, NaN and negative
 * sizes, released or foreign handles, wrong dtypes and shapes. Every call must either work or throw an
 * Error carrying one of the addon's codes; the process (this test's fork) must survive all of them. On a CPU
 * device, and on a CUDA one where the addon has CUDA and a GPU (`npm run test:gpu` runs this file too; the
 * vitest project "gpu-emulated" runs it on the CUDA emulator's addon).
 */
const CALLS = 3000
const codes = new Set(["SELFE_INVALID_ARGUMENT", "SELFE_SHAPE", "SELFE_DTYPE", "SELFE_DISPOSED", "SELFE_OUT_OF_MEMORY", "SELFE_DEVICE"])

const devices = [
  { kind: "cpu", options: {}, availability: { available: true } },
  { kind: "cuda", options: { backend: "cuda" }, availability: cudaAvailability() }
] as const

for (const { kind, options, availability } of devices)
  describeWhen(availability, `fuzzing the native boundary of a ${kind} device`, () => {
    const addon = loadAddon()
    // Devices are opened in beforeAll, which a skipped block (no GPU) never runs.
    let device: NativeDevice
    let disposed: NativeDevice
    beforeAll(() => {
      device = new addon.Device({ ...options, memoryLimitBytes: 64 << 20 })
      disposed = new addon.Device(options)
      addon.ops.dispose(disposed)
    })
    afterAll(() => addon.ops.dispose(device))

    it(`survives ${CALLS} malformed calls, each refused with a coded error or served`, async () => {
      const g = new Gen(2024)
      const ops = addon.ops as unknown as Record<string, (...args: Array<unknown>) => unknown>
      const names = Object.keys(ops).filter((name) => name !== "dispose")
      const live: Array<number> = []
      const released: Array<number> = []
      const fresh = () => {
        const shape = g.shape(g.int(0, 4), 1, 5)
        const dtype = g.int(0, 4) === 0 ? 1 : 0
        const n = shape.reduce((a, b) => a * b, 1)
        const id = ops["upload"]!(device, dtype, shape, dtype === 1 ? Int32Array.from({ length: n }, () => g.int(-3, 12)) : Float32Array.from(g.normals(n)))
        live.push(id as number)
        return id as number
      }
      for (let i = 0; i < 16; i++) fresh()
      const garbage = (): unknown =>
        g.pick<() => unknown>([
          () => g.pick(live),
          () => g.pick(live),
          () => g.pick(released.length > 0 ? released : live),
          () => g.pick([NaN, Infinity, -Infinity, -1, -0.5, 0.5, 2 ** 53, 2 ** 32, 1e300, 0, 1, 3, 7])
          ,
          () => g.pick([undefined, null, true, false, "x", "", {}, [], Symbol("s"), () => 1, 10n]),
          () => Array.from({ length: g.int(0, 10) }, () => g.pick([1, 2, 3, -1, NaN, 0.5, 1e12, "2", live[0]])),
          () => [g.pick(live), g.pick(live)],
          () => g.pick([new Float32Array(g.int(0, 8)), new Int32Array(g.int(0, 8)), new Float64Array(3), new Uint8Array(4)]),
          () => g.pick([device, disposed, {}, null]),
          () => ({ threads: -1 })
        ])()
      let refused = 0
      let served = 0
      const pending: Array<Promise<unknown>> = []
      for (let call = 0; call < CALLS; call++) {
        const name = g.pick(names)
        const args = [g.int(0, 9) === 0 ? garbage() : device, ...Array.from({ length: g.int(0, 11) }, garbage)]
        try {
          const result = ops[name]!(...args)
          served++
          if (result instanceof Promise) pending.push(result.catch((e: Error & { code?: string }) => expect(codes).toContain(e.code)))
          if (name === "release") {
            const id = args[1] as number
            const index = live.indexOf(id)
            if (index >= 0) live.splice(index, 1)
            released.push(id)
            if (live.length < 8) fresh()
          }
        } catch (error) {
          refused++
          expect(error).toBeInstanceOf(Error)
          expect(codes, `${name}: ${(error as Error).message}`).toContain((error as { code?: string }).code)
        }
      }
      await Promise.all(pending)
      expect(refused + served).toBe(CALLS)
      expect(refused).toBeGreaterThan(CALLS / 2)
      // The device still answers after all of it.
      const stats = ops["stats"]!(device) as { liveTensors: number }
      expect(stats.liveTensors).toBeGreaterThan(0)
    })

    it("refuses a device argument that only looks like a Device, by its type tag", () => {
      const ops = addon.ops as unknown as Record<string, (...args: Array<unknown>) => unknown>
      const x = ops["full"]!(device, 0, [4], 1) as number
      // Each passes `instanceof Device` or holds a Device's fields, but wraps no native device of this addon. A
      // Device of another copy of the addon (another build or version in the process) has another layout.
      const copyFolder = mkdtempSync(join(tmpdir(), "selfe-addon-"))
      const copyPath = join(copyFolder, "selfe_native.node")
      copyFileSync(process.env["SELFE_NATIVE_ADDON"] ?? defaultAddonPath, copyPath)
      const copy = createRequire(import.meta.url)(copyPath) as NativeAddon
      // Loaded, the file can go (Linux keeps the mapping).
      rmSync(copyFolder, { recursive: true, force: true })
      const foreign = new copy.Device({})
      const lookalikes: Array<[string, unknown]> = [
        ["an object made from Device.prototype", Object.create(addon.Device.prototype as object)],
        ["a Proxy of a device", new Proxy(device, {})],
        ["a plain object", {}],
        ["a Device of another copy of the addon", foreign]
      ]
      for (const [label, fake] of lookalikes) {
        let error: (Error & { code?: string }) | undefined
        try {
          ops["gelu"]!(fake, x)
        } catch (e) {
          error = e as Error & { code?: string }
        }
        expect(error?.code, label).toBe("SELFE_INVALID_ARGUMENT")
        expect(error?.message, label).toBe("gelu: device must be a Device")
      }
      copy.ops.dispose(foreign)
      expect(() => ops["gelu"]!(disposed, x)).toThrow("gelu: the device was disposed")
      // A list's elements are looked up on the device; an empty list meets the op's own check first, as ever.
      expect(() => ops["concat"]!(disposed, [], 0)).toThrow("concat: tensors must hold at least one tensor")
      ops["release"]!(device, ops["gelu"]!(device, x))
      ops["release"]!(device, x)
    })

    it("refuses each malformed adamwEma argument with a coded error naming it, and leaves the tensors alone", async () => {
      const ops = addon.ops
      const up = (values: Array<number>, shape: Array<number> = [values.length]) => ops.upload(device, 0, shape, Float32Array.from(values))
      const list = (n: number) => Array.from({ length: 2 }, (_, i) => up(Array.from({ length: n }, (_, j) => i + j / 8)))
      const [params, grads, m, v, ema] = [list(3), list(3), list(3), list(3), list(3)] as const
      const good = [params, grads, m, v, ema, 1e-3, 0.9, 0.95, 1e-8, 0.01, 1, 0.99] as Array<unknown>
      const intI32 = ops.upload(device, 1, [3], Int32Array.from([1, 2, 3]))
      const short = up([1, 2])
      const released = up([1, 2, 3])
      ops.release(device, released)
      const before = await Promise.all([...params, ...m, ...v, ...ema].map((h) => ops.read(device, h)))
      const cases: Array<[index: number, value: unknown, code: string, names: string]> = [
        [0, [params[0]], "SELFE_INVALID_ARGUMENT", "grads has 2 tensors, expected 1"],
        [1, [grads[0]], "SELFE_INVALID_ARGUMENT", "grads has 1 tensors, expected 2"],
        [4, [ema[0]], "SELFE_INVALID_ARGUMENT", "ema has 1 tensors, expected 2"],
        [4, "x", "SELFE_INVALID_ARGUMENT", "ema"],
        [4, [ema[0], short], "SELFE_SHAPE", "ema[1]"],
        [4, [ema[0], intI32], "SELFE_DTYPE", "ema[1]"],
        [4, [ema[0], released], "SELFE_DISPOSED", "ema[1]"],
        [2, [m[0], v[1]], "SELFE_INVALID_ARGUMENT", "v[1] shares storage with m[1]"],
        [4, [ema[0], params[1]], "SELFE_INVALID_ARGUMENT", "ema[1] shares storage with params[1]"],
        [4, [ema[0], m[1]], "SELFE_INVALID_ARGUMENT", "ema[1] shares storage with m[1]"],
        [4, [grads[0], ema[1]], "SELFE_INVALID_ARGUMENT", "grads[0] shares storage with ema[0]"],
        [0, [ema[0], params[1]], "SELFE_INVALID_ARGUMENT", "ema[0] shares storage with params[0]"],
        [5, NaN, "SELFE_INVALID_ARGUMENT", "lr"],
        [5, -1, "SELFE_INVALID_ARGUMENT", "lr"],
        [6, 1, "SELFE_INVALID_ARGUMENT", "beta1"],
        [7, -0.5, "SELFE_INVALID_ARGUMENT", "beta2"],
        [8, 0, "SELFE_INVALID_ARGUMENT", "eps"],
        [9, Infinity, "SELFE_INVALID_ARGUMENT", "weightDecay"],
        [10, 0, "SELFE_INVALID_ARGUMENT", "step"],
        [10, 1.5, "SELFE_INVALID_ARGUMENT", "step"],
        [11, 1.5, "SELFE_INVALID_ARGUMENT", "emaDecay"],
        [11, -0.1, "SELFE_INVALID_ARGUMENT", "emaDecay"],
        [11, NaN, "SELFE_INVALID_ARGUMENT", "emaDecay"],
        [11, undefined, "SELFE_INVALID_ARGUMENT", "emaDecay"]
      ]
      for (const [index, value, code, names] of cases) {
        const args = [...good]
        args[index] = value
        const label = `argument ${index} = ${JSON.stringify(value)}`
        let error: (Error & { code?: string; op?: string }) | undefined
        try {
          ;(ops.adamwEma as (...a: Array<unknown>) => void)(device, ...args)
        } catch (e) {
          error = e as Error & { code?: string; op?: string }
        }
        expect(error, label).toBeInstanceOf(Error)
        expect(error?.code, `${label}: ${error?.message}`).toBe(code)
        expect(error?.op, label).toBe("adamwEma")
        expect(error?.message, label).toContain(names)
      }
      // Nothing was enqueued by the refused calls; a good call still runs.
      const after = await Promise.all([...params, ...m, ...v, ...ema].map((h) => ops.read(device, h)))
      expect(after).toEqual(before)
      ;(ops.adamwEma as (...a: Array<unknown>) => void)(device, ...good)
      const updated = await ops.read(device, params[0]!)
      expect(Array.from(updated)).not.toEqual(Array.from(before[0]!))
      for (const h of [...params, ...grads, ...m, ...v, ...ema, intI32, short]) ops.release(device, h)
    })

    it("maps 1000 bad calls through the Kernels service to typed errors, never defects", async () => {
      const backend = new NativeBackend(addon, { ...options, memoryLimitBytes: 64 << 20 })
      const kernels = liftBackend(backend)
      const g = new Gen(7)
      const program = Effect.gen(function* () {
        const k = yield* Kernels
        const good = yield* k.fromArray([1, 2, 3, 4, 5, 6], [2, 3])
        const ids = yield* k.fromArray([0, 1], [2], "i32")
        const gone = yield* k.zeros([2, 3])
        gone.release()
        const badValues: Array<unknown> = [gone, ids, undefined, null, NaN, -3, "x", [2, -1], [NaN], {}, good]
        let typed = 0
        for (let call = 0; call < 1000; call++) {
          const name = g.pick(tensorOpNames)
          const args = Array.from({ length: g.int(1, 5) }, () => g.pick(badValues))
          const op = k[name] as (...a: Array<unknown>) => Effect.Effect<unknown, unknown, never>
          const exit = yield* Effect.exit(op(...args))
          if (Exit.isFailure(exit)) {
            expect(Cause.isDieType(exit.cause), `${name} died: ${Cause.pretty(exit.cause)}`).toBe(false)
            const failure = Cause.failureOption(exit.cause)
            expect(failure._tag).toBe("Some")
            expect(isKernelError(failure._tag === "Some" ? failure.value : undefined)).toBe(true)
            typed++
          }
        }
        return typed
      })
      const typed = await Effect.runPromise(Effect.scoped(Effect.provideService(program, Kernels, kernels)))
      backend.dispose()
      expect(typed).toBeGreaterThan(900)
    })
  })
