import { describe, expect, it } from "vitest"
import { DTypeError, InvalidArgumentError, ShapeError } from "../../../src/kernels/errors.ts"
import { f32, f64, values } from "./helpers.ts"

describe("matmul", () => {
  it("multiplies matrices, with either operand stored transposed and a scale", async () => {
    const b = f64()
    const a = b.fromArray([1, 2, 3, 4], [2, 2])
    const aT = b.fromArray([1, 3, 2, 4], [2, 2])
    const m = b.fromArray([5, 6, 7, 8], [2, 2])
    const mT = b.fromArray([5, 7, 6, 8], [2, 2])
    expect(await values(b, b.matmul(a, m))).toEqual([19, 22, 43, 50])
    expect(await values(b, b.matmul(aT, m, { transA: true }))).toEqual([19, 22, 43, 50])
    expect(await values(b, b.matmul(a, mT, { transB: true }))).toEqual([19, 22, 43, 50])
    expect(await values(b, b.matmul(aT, mT, { transA: true, transB: true, alpha: 0.5 }))).toEqual([9.5, 11, 21.5, 25])
  })

  it("handles rectangular shapes", async () => {
    const b = f64()
    const out = b.matmul(b.fromArray([1, 2, 3, 4, 5, 6], [2, 3]), b.fromArray([1, 0, -1], [3, 1]))
    expect(out.shape).toEqual([2, 1])
    expect(await values(b, out)).toEqual([-2, -2])
  })

  it("runs a batch of problems, each with its own b or one shared b", async () => {
    const b = f64()
    const a = b.fromArray([1, 2, 3, 4, 1, 0, 0, 1], [2, 2, 2])
    const perProblem = b.fromArray([1, 0, 0, 1, 2, 3, 4, 5], [2, 2, 2])
    expect(await values(b, b.matmul(a, perProblem))).toEqual([1, 2, 3, 4, 2, 3, 4, 5])
    const shared = b.fromArray([0, 1, 1, 0], [2, 2])
    expect(await values(b, b.matmul(a, shared))).toEqual([2, 1, 4, 3, 0, 1, 1, 0])
  })

  it("refuses mismatched inner or batch dimensions, low ranks and bad options", () => {
    const b = f32()
    const a = b.zeros([2, 3])
    expect(() => b.matmul(a, b.zeros([2, 3]))).toThrow(ShapeError)
    expect(() => b.matmul(b.zeros([2, 2, 3]), b.zeros([3, 3, 1]))).toThrow(ShapeError)
    expect(() => b.matmul(b.zeros([3]), b.zeros([3, 1]))).toThrow(ShapeError)
    expect(() => b.matmul(a, b.zeros([3, 1]), { alpha: Number.NaN })).toThrow(InvalidArgumentError)
    expect(() => b.matmul(a, b.zeros([1, 3]), { transB: "yes" as unknown as boolean })).toThrow(InvalidArgumentError)
    expect(() => b.matmul(a, b.zeros([3, 1], "i32"))).toThrow(DTypeError)
  })
})

describe("linear", () => {
  it("computes x W^T + bias with W stored [out, in]", async () => {
    const b = f64()
    const x = b.fromArray([1, 2, 3, 4, 5, 6], [2, 3])
    const w = b.fromArray([1, 0, 0, 1, 1, 1], [2, 3])
    expect(await values(b, b.linear(x, w))).toEqual([1, 6, 4, 15])
    const y = b.linear(b.view(x, [1, 2, 3]), w, b.fromArray([10, -10], [2]))
    expect(y.shape).toEqual([1, 2, 2])
    expect(await values(b, y)).toEqual([11, -4, 14, 5])
  })

  it("refuses a weight that does not fit x and a bias of the wrong length", () => {
    const b = f32()
    expect(() => b.linear(b.zeros([2, 3]), b.zeros([3, 2]))).toThrow(ShapeError)
    expect(() => b.linear(b.zeros([2, 3]), b.zeros([2, 3]), b.zeros([3]))).toThrow(ShapeError)
    expect(() => b.linear(b.zeros([2, 3]), b.zeros([3]))).toThrow(ShapeError)
  })
})
