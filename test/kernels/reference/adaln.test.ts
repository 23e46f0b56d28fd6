import { describe, expect, it } from "vitest"
import { DTypeError, ShapeError } from "../../../src/kernels/errors.ts"
import { expectClose, f32, f64, numericGradient, pseudoRandom, values, weightedSum } from "./helpers.ts"

describe("modulate", () => {
  it("computes x (1 + scale) + shift per sample", async () => {
    const b = f64()
    const x = b.fromArray([1, 2, 3, 4], [1, 2, 2])
    const y = b.modulate(x, b.fromArray([10, 20], [1, 2]), b.fromArray([1, -1], [1, 2]))
    expect(await values(b, y)).toEqual([12, 20, 16, 20])
  })

  it("has hand-derived gradients", async () => {
    const b = f64()
    const x = b.fromArray([1, 2, 3, 4], [1, 2, 2])
    const g = b.modulateBackward(b.fromArray([1, 1, 1, 1], [1, 2, 2]), x, b.fromArray([1, -1], [1, 2]))
    expect(await values(b, g.dx)).toEqual([2, 0, 2, 0])
    expect(await values(b, g.dshift)).toEqual([2, 2])
    expect(await values(b, g.dscale)).toEqual([4, 6])
  })

  it("has the gradients of its forward over several samples (gradcheck in f64)", async () => {
    const b = f64()
    const shape = [2, 3, 4]
    const xs = pseudoRandom(24, 1)
    const shifts = pseudoRandom(8, 2)
    const scales = pseudoRandom(8, 3)
    const dyv = pseudoRandom(24, 4)
    const forward = async (x: ReadonlyArray<number>, sh: ReadonlyArray<number>, sc: ReadonlyArray<number>) =>
      weightedSum(await values(b, b.modulate(b.fromArray(x, shape), b.fromArray(sh, [2, 4]), b.fromArray(sc, [2, 4]))), dyv)
    const g = b.modulateBackward(b.fromArray(dyv, shape), b.fromArray(xs, shape), b.fromArray(scales, [2, 4]))
    expectClose(await values(b, g.dx), await numericGradient(xs, (v) => forward(v, shifts, scales)), 1e-8)
    expectClose(await values(b, g.dshift), await numericGradient(shifts, (v) => forward(xs, v, scales)), 1e-8)
    expectClose(await values(b, g.dscale), await numericGradient(scales, (v) => forward(xs, shifts, v)), 1e-8)
  })
})

describe("gatedResidual", () => {
  it("computes x + gate branch per sample", async () => {
    const b = f64()
    const out = b.gatedResidual(b.fromArray([1, 2, 3, 4], [1, 2, 2]), b.fromArray([0.5, 2], [1, 2]), b.fromArray([1, 1, 1, 1], [1, 2, 2]))
    expect(await values(b, out)).toEqual([1.5, 4, 3.5, 6])
  })

  it("has hand-derived gradients", async () => {
    const b = f64()
    const g = b.gatedResidualBackward(b.fromArray([1, 2, 3, 4], [1, 2, 2]), b.fromArray([0.5, 2], [1, 2]), b.fromArray([1, 1, 2, 2], [1, 2, 2]))
    expect(await values(b, g.dgate)).toEqual([7, 10])
    expect(await values(b, g.dbranch)).toEqual([0.5, 4, 1.5, 8])
  })

  it("sums the gate gradient per sample over several samples", async () => {
    const b = f64()
    const dout = b.fromArray([1, 1, 1, 1, 2, 2, 2, 2], [2, 2, 2])
    const branch = b.fromArray([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2])
    const g = b.gatedResidualBackward(dout, b.fromArray([1, 1, 3, 3], [2, 2]), branch)
    expect(await values(b, g.dgate)).toEqual([4, 6, 24, 28])
    expect(await values(b, g.dbranch)).toEqual([1, 1, 1, 1, 6, 6, 6, 6])
  })
})

describe("adaLN validation", () => {
  it("refuses per-sample vectors of the wrong shape, rank-2 activations and non-f32 gradients", () => {
    const b = f32()
    const x = b.zeros([1, 2, 2])
    expect(() => b.modulate(x, b.zeros([2, 2]), b.zeros([1, 2]))).toThrow(ShapeError)
    expect(() => b.modulate(b.zeros([2, 2]), b.zeros([2, 2]), b.zeros([2, 2]))).toThrow(ShapeError)
    expect(() => b.gatedResidual(x, b.zeros([1, 2]), b.zeros([1, 2, 3]))).toThrow(ShapeError)
    expect(() => b.modulateBackward(b.zeros([1, 2, 2], "i32"), x, b.zeros([1, 2]))).toThrow(DTypeError)
    expect(() => b.gatedResidualBackward(b.zeros([1, 2, 2], "i32"), b.zeros([1, 2]), x)).toThrow(DTypeError)
  })
})

describe("layerNormModulate", () => {
  it("equals LayerNorm then modulate, with LayerNorm's saved statistics", async () => {
    const b = f64()
    const x = b.fromArray(pseudoRandom(2 * 3 * 5, 7).map((v) => 4 * v), [2, 3, 5])
    const shift = b.fromArray(pseudoRandom(10, 8), [2, 5])
    const scale = b.fromArray(pseudoRandom(10, 9), [2, 5])
    const fused = b.layerNormModulate(x, shift, scale, 1e-5)
    const plain = b.layerNorm(x, { eps: 1e-5 })
    expectClose(await values(b, fused.y), await values(b, b.modulate(plain.y, shift, scale)))
    expect(await values(b, fused.mean)).toEqual(await values(b, plain.mean))
    expect(await values(b, fused.rstd)).toEqual(await values(b, plain.rstd))
    expect(fused.mean.shape).toEqual([2, 3])
  })

  it("has the gradients of LayerNorm and modulate chained", async () => {
    const b = f64()
    const x = b.fromArray(pseudoRandom(2 * 3 * 5, 10).map((v) => 4 * v), [2, 3, 5])
    const shift = b.fromArray(pseudoRandom(10, 11), [2, 5])
    const scale = b.fromArray(pseudoRandom(10, 12), [2, 5])
    const dy = b.fromArray(pseudoRandom(30, 13), [2, 3, 5])
    const fused = b.layerNormModulateBackward(dy, x, b.layerNormModulate(x, shift, scale, 1e-5), scale)
    const plain = b.layerNorm(x, { eps: 1e-5 })
    const outer = b.modulateBackward(dy, plain.y, scale)
    const inner = b.layerNormBackward(outer.dx, x, plain, { withBias: false })
    expectClose(await values(b, fused.dx), await values(b, inner.dx))
    expectClose(await values(b, fused.dshift), await values(b, outer.dshift))
    expectClose(await values(b, fused.dscale), await values(b, outer.dscale))
  })

  it("refuses a bad shape or eps, naming it", () => {
    const b = f32()
    const x = b.zeros([2, 3, 4])
    expect(() => b.layerNormModulate(x, b.zeros([2, 4]), b.zeros([3, 4]), 1e-5)).toThrow(/scale must have shape \[2, 4\]/)
    expect(() => b.layerNormModulate(x, b.zeros([2, 4]), b.zeros([2, 4]), 0)).toThrow(/eps must be > 0/)
    expect(() => b.layerNormModulate(b.zeros([2, 3, 0]), b.zeros([2, 0]), b.zeros([2, 0]), 1e-5)).toThrow(ShapeError)
    expect(() => b.layerNormModulateBackward(x, x, { mean: b.zeros([2, 4]), rstd: b.zeros([2, 3]) }, b.zeros([2, 4]))).toThrow(/mean must have shape \[2, 3\]/)
  })
})
