import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { DisposedTensorError, DTypeError, InvalidArgumentError, OutOfMemoryError, ShapeError } from "../../../src/kernels/errors.ts"
import { liftBackend } from "../../../src/kernels/lift.ts"
import { tensorOpNames } from "../../../src/kernels/ops.ts"
import { ReferenceBackend } from "../../../src/kernels/reference/ReferenceBackend.ts"
import { Tensor } from "../../../src/tensor/Tensor.ts"
import { f32, f64, values } from "./helpers.ts"

describe("ReferenceBackend storage", () => {
  it("implements every op of the contract", () => {
    const b = f32()
    for (const name of tensorOpNames) expect(typeof b[name], name).toBe("function")
    expect(b.name).toBe("reference")
  })

  it("stores f32 in Float32Array (rounded) or Float64Array, and i32 in Int32Array", async () => {
    const [a, b] = [f32(), f64()]
    const single = await a.read(a.fromArray([0.1], [1]))
    const double = await b.read(b.fromArray([0.1], [1]))
    expect(single).toBeInstanceOf(Float32Array)
    expect(double).toBeInstanceOf(Float64Array)
    expect(single[0]).toBe(Math.fround(0.1))
    expect(double[0]).toBe(0.1)
    expect(await b.read(b.fromArray([-3, 7], [2], "i32"))).toEqual(Int32Array.from([-3, 7]))
  })

  it("reads a copy", async () => {
    const b = f32()
    const x = b.fromArray([1, 2], [2])
    const host = await b.read(x)
    host[0] = 99
    expect(await values(b, x)).toEqual([1, 2])
  })

  it("creates filled tensors; empty floats read as NaN until written", async () => {
    const b = f32()
    expect(await values(b, b.full([2, 2], 1.5))).toEqual([1.5, 1.5, 1.5, 1.5])
    expect(await values(b, b.zeros([3], "i32"))).toEqual([0, 0, 0])
    const e = b.empty([2])
    expect((await values(b, e)).every(Number.isNaN)).toBe(true)
    b.write(e, [4, 5])
    expect(await values(b, e)).toEqual([4, 5])
    await expect(b.sync()).resolves.toBeUndefined()
  })

  it("shares storage between a tensor and its views, and copies on copy", async () => {
    const b = f32()
    const x = b.fromArray([1, 2, 3, 4], [2, 2])
    const v = b.view(x, [4])
    const c = b.copy(x)
    b.write(v, [5, 6, 7, 8])
    expect(await values(b, x)).toEqual([5, 6, 7, 8])
    expect(await values(b, c)).toEqual([1, 2, 3, 4])
    b.assign(c, x)
    expect(await values(b, c)).toEqual([5, 6, 7, 8])
  })

  it("counts live tensors, live and peak bytes, and storages created", () => {
    const b = f64()
    const x = b.zeros([4])
    const v = b.view(x, [2, 2])
    expect(b.stats()).toEqual({ liveTensors: 2, liveBytes: 16, cachedBytes: 0, peakBytes: 16, systemAllocs: 1 })
    x.release()
    expect(b.stats().liveBytes).toBe(16)
    v.release()
    const y = b.zeros([2], "i32")
    expect(b.stats()).toEqual({ liveTensors: 1, liveBytes: 8, cachedBytes: 0, peakBytes: 16, systemAllocs: 2 })
    y.release()
    y.release()
    expect(b.stats().liveTensors).toBe(0)
    expect(b.stats().liveBytes).toBe(0)
  })

  it("releases everything on dispose and refuses further use", () => {
    const b = f32()
    const x = b.zeros([3])
    b.dispose()
    expect(b.stats()).toEqual({ liveTensors: 0, liveBytes: 0, cachedBytes: 0, peakBytes: 0, systemAllocs: 0 })
    expect(() => b.gelu(x)).toThrow(DisposedTensorError)
    expect(() => b.zeros([1])).toThrow(DisposedTensorError)
    expect(() => x.release()).not.toThrow()
    b.dispose()
  })

  it("runs as the Kernels service: outputs owned by the scope, errors typed", async () => {
    const b = f32()
    const kernels = liftBackend(b)
    const total = await Effect.runPromise(
      Effect.scoped(Effect.flatMap(kernels.add(b.fromArray([1, 2], [2]), b.fromArray([3, 4], [2])), (s) => Effect.flatMap(kernels.sum(s), kernels.readNumber)))
    )
    expect(total).toBe(10)
    // The two inputs remain; the sum and its total went with the scope.
    expect(b.stats().liveTensors).toBe(2)
    const error = await Effect.runPromise(Effect.flip(Effect.scoped(kernels.add(b.zeros([2]), b.zeros([3])))))
    expect(error).toBeInstanceOf(ShapeError)
  })
})

describe("ReferenceBackend argument checks", () => {
  it("refuses released tensors, naming the argument", () => {
    const b = f32()
    const x = b.zeros([2])
    const y = b.zeros([2])
    y.release()
    expect(() => b.add(x, y)).toThrow(DisposedTensorError)
    expect(() => b.add(x, y)).toThrow(/b \(.*\) was released/)
    expect(() => b.read(y)).toThrow(DisposedTensorError)
    expect(() => b.globalNorm([x, y])).toThrow(/xs\[1\]/)
  })

  it("refuses tensors of another backend and things that are not tensors", () => {
    const [a, b] = [f32(), f32()]
    const foreign = b.zeros([2])
    expect(() => a.add(a.zeros([2]), foreign)).toThrow(InvalidArgumentError)
    expect(() => a.read(foreign)).toThrow(InvalidArgumentError)
    expect(() => a.gelu({ shape: [2], dtype: "f32" } as unknown as Tensor)).toThrow(InvalidArgumentError)
  })

  it("reports an allocation the engine cannot make as out of memory", () => {
    expect(() => f32().zeros([2 ** 23, 2 ** 22])).toThrow(OutOfMemoryError)
  })

  it("refuses bad shapes: negative, fractional or too many dimensions", () => {
    const b = f32()
    expect(() => b.zeros([2, -1])).toThrow(ShapeError)
    expect(() => b.empty([1.5])).toThrow(ShapeError)
    expect(() => b.zeros([1, 1, 1, 1, 1, 1, 1, 1, 1])).toThrow(ShapeError)
    expect(() => b.randomNormal([-3], { seed: 0, offset: 0 })).toThrow(ShapeError)
    expect(() => b.view(b.zeros([4]), [3])).toThrow(ShapeError)
  })

  it("refuses host data of the wrong size or type", () => {
    const b = f32()
    expect(() => b.fromArray([1, 2, 3], [2])).toThrow(ShapeError)
    expect(() => b.fromArray([1.5], [1], "i32")).toThrow(InvalidArgumentError)
    expect(() => b.fromArray([2 ** 31], [1], "i32")).toThrow(InvalidArgumentError)
    expect(() => b.write(b.zeros([2]), [1])).toThrow(ShapeError)
    expect(() => b.write(b.zeros([1], "i32"), [Number.NaN])).toThrow(InvalidArgumentError)
  })

  it("refuses bf16 like the CPU backend, and mismatched assigns", () => {
    const b = f32()
    expect(() => b.zeros([2], "bf16")).toThrow(DTypeError)
    expect(() => b.empty([2], "bf16")).toThrow(DTypeError)
    expect(() => b.fromArray([1], [1], "bf16")).toThrow(DTypeError)
    expect(() => b.assign(b.zeros([2]), b.zeros([2], "i32"))).toThrow(DTypeError)
    expect(() => b.assign(b.zeros([2]), b.zeros([3]))).toThrow(ShapeError)
  })

  it("refuses non-finite fill values and non-integer i32 fills", () => {
    const b = f32()
    expect(() => b.full([2], Number.NaN)).toThrow(InvalidArgumentError)
    expect(() => b.full([2], 0.5, "i32")).toThrow(InvalidArgumentError)
  })

  it("refuses random streams outside [0, 2^53) or not integers", () => {
    const b = f32()
    expect(() => b.randomUniform([2], { seed: -1, offset: 0 })).toThrow(InvalidArgumentError)
    expect(() => b.randomUniform([2], { seed: 0, offset: 0.5 })).toThrow(InvalidArgumentError)
    expect(() => b.randomNormal([2], { seed: 2 ** 53, offset: 0 })).toThrow(InvalidArgumentError)
  })

  it("refuses an unknown precision", () => {
    expect(() => new ReferenceBackend({ precision: "f16" as "f32" })).toThrow(InvalidArgumentError)
  })
})
