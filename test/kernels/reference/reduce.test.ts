import { describe, expect, it } from "vitest"
import { DTypeError, InvalidArgumentError, ShapeError } from "../../../src/kernels/errors.ts"
import { expectClose, f32, f64, values } from "./helpers.ts"

describe("reductions", () => {
  it("sums and averages every element into a scalar", async () => {
    const b = f64()
    const x = b.fromArray([1, 2, 3, 4, 5, 6], [2, 3])
    const total = b.sum(x)
    expect(total.shape).toEqual([])
    expect(await values(b, total)).toEqual([21])
    expect(await values(b, b.mean(x))).toEqual([3.5])
    expect(await values(b, b.sum(b.zeros([0])))).toEqual([0])
  })

  it("accumulates f32 sums in double", async () => {
    const b = f32()
    // In f32 arithmetic each +1 on 2^24 is lost; in double the exact 2^24 + 4 is representable in f32.
    expect(await values(b, b.sum(b.fromArray([2 ** 24, 1, 1, 1, 1], [5])))).toEqual([2 ** 24 + 4])
  })

  it("sums over one axis, removing it", async () => {
    const b = f64()
    const x = b.fromArray([1, 2, 3, 4, 5, 6], [2, 3])
    expect(await values(b, b.sumAxis(x, 0))).toEqual([5, 7, 9])
    expect(await values(b, b.sumAxis(x, 1))).toEqual([6, 15])
    const cube = b.sumAxis(b.fromArray([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]), 1)
    expect(cube.shape).toEqual([2, 2])
    expect(await values(b, cube)).toEqual([4, 6, 12, 14])
  })

  it("takes mean squared errors overall and per row", async () => {
    const b = f64()
    expectClose(await values(b, b.mse(b.fromArray([1, 2, 3], [3]), b.fromArray([1, 0, 0], [3]))), [13 / 3], 1e-15)
    const a = b.fromArray([1, 2, 3, 4], [2, 2])
    const zero = b.zeros([2, 2])
    expect(await values(b, b.mseRows(a, zero, 1))).toEqual([2.5, 12.5])
    expect(await values(b, b.mseRows(a, zero, 0))).toEqual([7.5])
    expect(await values(b, b.mseRows(a, zero, 2))).toEqual([1, 4, 9, 16])
  })

  it("refuses means over nothing, bad axes, dtypes and shapes", () => {
    const b = f32()
    expect(() => b.mean(b.zeros([0, 3]))).toThrow(ShapeError)
    expect(() => b.mse(b.zeros([0]), b.zeros([0]))).toThrow(ShapeError)
    expect(() => b.mseRows(b.zeros([2, 0]), b.zeros([2, 0]), 1)).toThrow(ShapeError)
    expect(() => b.mse(b.zeros([2]), b.zeros([3]))).toThrow(ShapeError)
    expect(() => b.sumAxis(b.zeros([2, 3]), 2)).toThrow(InvalidArgumentError)
    expect(() => b.sumAxis(b.zeros([]), 0)).toThrow(ShapeError)
    expect(() => b.sum(b.zeros([2], "i32"))).toThrow(DTypeError)
  })
})
