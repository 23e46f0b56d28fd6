import { describe, expect, it } from "vitest"
import { DTypeError, InvalidArgumentError, ShapeError } from "../../../src/kernels/errors.ts"
import { f32, f64, values } from "./helpers.ts"

describe("binary ops", () => {
  it("adds, subtracts and multiplies tensors of one shape", async () => {
    const b = f64()
    const x = b.fromArray([1, 2, 3], [3])
    const y = b.fromArray([10, 20, 30], [3])
    expect(await values(b, b.add(x, y))).toEqual([11, 22, 33])
    expect(await values(b, b.sub(x, y))).toEqual([-9, -18, -27])
    expect(await values(b, b.mul(x, y))).toEqual([10, 40, 90])
  })

  it("broadcasts a trailing suffix (a bias) and a scalar", async () => {
    const b = f64()
    const x = b.fromArray([1, 2, 3, 4, 5, 6], [2, 3])
    expect(await values(b, b.add(x, b.fromArray([10, 20, 30], [3])))).toEqual([11, 22, 33, 14, 25, 36])
    expect(await values(b, b.mul(x, b.fromArray([2], [])))).toEqual([2, 4, 6, 8, 10, 12])
    expect(await values(b, b.sub(x, b.fromArray([1, 2, 3, 4, 5, 6], [2, 3])))).toEqual([0, 0, 0, 0, 0, 0])
  })

  it("rounds each f32 result once, like an f32 operation", async () => {
    const b = f32()
    const sum = await values(b, b.add(b.fromArray([0.1], [1]), b.fromArray([0.2], [1])))
    expect(sum).toEqual([Math.fround(Math.fround(0.1) + Math.fround(0.2))])
  })

  it("refuses shapes that are neither equal nor a suffix, and non-f32 operands", () => {
    const b = f32()
    const x = b.zeros([2, 3])
    expect(() => b.add(x, b.zeros([2]))).toThrow(ShapeError)
    expect(() => b.mul(x, b.zeros([3, 3]))).toThrow(ShapeError)
    expect(() => b.sub(x, b.zeros([3], "i32"))).toThrow(DTypeError)
  })
})

describe("mulRows", () => {
  it("scales each row by its factor, for any leading prefix", async () => {
    const b = f64()
    const x = b.fromArray([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2])
    expect(await values(b, b.mulRows(x, b.fromArray([2, -1], [2])))).toEqual([2, 4, 6, 8, -5, -6, -7, -8])
    expect(await values(b, b.mulRows(x, b.fromArray([1, 0, 10, -2], [2, 2])))).toEqual([1, 2, 0, 0, 50, 60, -14, -16])
  })

  it("refuses a factor tensor that is not a prefix", () => {
    const b = f32()
    expect(() => b.mulRows(b.zeros([2, 3]), b.zeros([3]))).toThrow(ShapeError)
  })
})

describe("affine, scale, axpy", () => {
  it("computes alpha x + beta, alpha x and alpha x + y", async () => {
    const b = f64()
    const x = b.fromArray([1, -2, 0.5], [3])
    const y = b.fromArray([10, 20, 30], [3])
    expect(await values(b, b.affine(x, 2, 1))).toEqual([3, -3, 2])
    expect(await values(b, b.scale(x, -3))).toEqual([-3, 6, -1.5])
    expect(await values(b, b.axpy(2, x, y))).toEqual([12, 16, 31])
  })

  it("refuses non-finite scalars and mismatched operands", () => {
    const b = f32()
    const x = b.zeros([3])
    expect(() => b.affine(x, Number.NaN, 0)).toThrow(InvalidArgumentError)
    expect(() => b.affine(x, 1, Number.POSITIVE_INFINITY)).toThrow(InvalidArgumentError)
    expect(() => b.scale(x, Number.NaN)).toThrow(InvalidArgumentError)
    expect(() => b.axpy(Number.NaN, x, x)).toThrow(InvalidArgumentError)
    expect(() => b.axpy(1, x, b.zeros([4]))).toThrow(ShapeError)
    expect(() => b.scale(b.zeros([3], "i32"), 2)).toThrow(DTypeError)
  })
})

describe("rowDot", () => {
  it("sums a * b over the dimensions after the prefix", async () => {
    const b = f64()
    const x = b.fromArray([1, 2, 3, 4, 5, 6], [2, 3])
    const y = b.fromArray([1, 0, -1, 2, 2, 2], [2, 3])
    expect(await values(b, b.rowDot(x, y, 1))).toEqual([-2, 30])
    expect(await values(b, b.rowDot(x, y, 0))).toEqual([28])
    expect(await values(b, b.rowDot(x, y, 2))).toEqual([1, 0, -3, 8, 10, 12])
  })

  it("refuses a prefix rank beyond the tensor's rank", () => {
    const b = f32()
    const x = b.zeros([2, 3])
    expect(() => b.rowDot(x, x, 3)).toThrow(InvalidArgumentError)
    expect(() => b.rowDot(x, x, -1)).toThrow(InvalidArgumentError)
  })
})
