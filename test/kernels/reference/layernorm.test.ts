import { describe, expect, it } from "vitest"
import { DTypeError, InvalidArgumentError, ShapeError } from "../../../src/kernels/errors.ts"
import { expectClose, f32, f64, numericGradient, pseudoRandom, values, weightedSum } from "./helpers.ts"

describe("layerNorm", () => {
  it("normalises with the biased variance, then applies weight and bias", async () => {
    const b = f64()
    const eps = 1e-5
    const { y, mean, rstd } = b.layerNorm(b.fromArray([1, 2, 3, 4], [1, 4]), {
      weight: b.fromArray([1, 2, 3, 4], [4]),
      bias: b.fromArray([0, 0, 0, 1], [4]),
      eps
    })
    const s = 1 / Math.sqrt(1.25 + eps)
    expect(mean.shape).toEqual([1])
    expect(await values(b, mean)).toEqual([2.5])
    expectClose(await values(b, rstd), [s], 1e-15)
    expectClose(await values(b, y), [-1.5 * s, -0.5 * 2 * s, 0.5 * 3 * s, 1.5 * 4 * s + 1], 1e-15)
  })

  it("gives every row zero mean and unit variance", async () => {
    const b = f64()
    const x = b.fromArray(pseudoRandom(5 * 3 * 16, 2).map((u, i) => 3 * u + (i % 7)), [5, 3, 16])
    const { y, mean } = b.layerNorm(x, { eps: 1e-12 })
    expect(mean.shape).toEqual([5, 3])
    const ys = await values(b, y)
    for (let r = 0; r < 15; r++) {
      const row = ys.slice(r * 16, (r + 1) * 16)
      const m = row.reduce((s, v) => s + v, 0) / 16
      const variance = row.reduce((s, v) => s + (v - m) ** 2, 0) / 16
      expect(Math.abs(m)).toBeLessThan(1e-14)
      expect(Math.abs(variance - 1)).toBeLessThan(1e-10)
    }
  })

  it("has the gradients of its forward (gradcheck in f64)", async () => {
    const b = f64()
    const shape = [3, 5]
    const xs = pseudoRandom(15, 4).map((u) => 2 * u)
    const ws = pseudoRandom(5, 5).map((u) => 1 + u)
    const bs = pseudoRandom(5, 6)
    const dyv = pseudoRandom(15, 7)
    const eps = 1e-3
    const forward = async (x: ReadonlyArray<number>, w: ReadonlyArray<number>, bias: ReadonlyArray<number>) =>
      weightedSum(await values(b, b.layerNorm(b.fromArray(x, shape), { weight: b.fromArray(w, [5]), bias: b.fromArray(bias, [5]), eps }).y), dyv)
    const x = b.fromArray(xs, shape)
    const weight = b.fromArray(ws, [5])
    const saved = b.layerNorm(x, { weight, bias: b.fromArray(bs, [5]), eps })
    const grads = b.layerNormBackward(b.fromArray(dyv, shape), x, saved, { weight, withBias: true })
    expectClose(await values(b, grads.dx), await numericGradient(xs, (v) => forward(v, ws, bs)), 1e-7)
    expectClose(await values(b, grads.dweight!), await numericGradient(ws, (v) => forward(xs, v, bs)), 1e-7)
    expectClose(await values(b, grads.dbias!), await numericGradient(bs, (v) => forward(xs, ws, v)), 1e-7)
  })

  it("computes only the gradients the forward had parameters for", async () => {
    const b = f64()
    const x = b.fromArray([1, 2, 4, 8], [1, 4])
    const saved = b.layerNorm(x, { eps: 1e-5 })
    const grads = b.layerNormBackward(b.fromArray([1, 1, 1, 1], [1, 4]), x, saved, { withBias: false })
    expect(grads.dweight).toBeUndefined()
    expect(grads.dbias).toBeUndefined()
    // A constant upstream gradient moves nothing: normalisation removes any shift.
    expectClose(await values(b, grads.dx), [0, 0, 0, 0], 1e-15)
  })

  it("refuses bad eps, parameters, dtypes and empty rows", () => {
    const b = f32()
    const x = b.zeros([2, 4])
    expect(() => b.layerNorm(x, { eps: 0 })).toThrow(InvalidArgumentError)
    expect(() => b.layerNorm(x, { eps: Number.NaN })).toThrow(InvalidArgumentError)
    expect(() => b.layerNorm(x, { weight: b.zeros([3]), eps: 1e-5 })).toThrow(ShapeError)
    expect(() => b.layerNorm(b.zeros([2, 4], "i32"), { eps: 1e-5 })).toThrow(DTypeError)
    expect(() => b.layerNorm(b.zeros([2, 0]), { eps: 1e-5 })).toThrow(ShapeError)
    const saved = b.layerNorm(x, { eps: 1e-5 })
    expect(() => b.layerNormBackward(b.zeros([2, 4], "i32"), x, saved, { withBias: false })).toThrow(DTypeError)
    expect(() => b.layerNormBackward(b.zeros([2, 3]), x, saved, { withBias: false })).toThrow(ShapeError)
    expect(() => b.layerNormBackward(x, x, saved, { withBias: 1 as unknown as boolean })).toThrow(InvalidArgumentError)
  })
})
