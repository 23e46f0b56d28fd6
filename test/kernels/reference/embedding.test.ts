import { describe, expect, it } from "vitest"
import { DeviceError, DTypeError, InvalidArgumentError, ShapeError } from "../../../src/kernels/errors.ts"
import { expectClose, f32, f64, values } from "./helpers.ts"

describe("embedding", () => {
  it("looks rows up by id, for ids of any shape", async () => {
    const b = f64()
    const table = b.fromArray([1, 2, 3, 4, 5, 6], [3, 2])
    const out = b.embedding(table, b.fromArray([2, 0, 1, 2], [2, 2], "i32"))
    expect(out.shape).toEqual([2, 2, 2])
    expect(await values(b, out)).toEqual([5, 6, 1, 2, 3, 4, 5, 6])
  })

  it("sums gradient rows per id; unused rows are zero", async () => {
    const b = f64()
    const dout = b.fromArray([1, 2, 10, 20, 100, 200, 5, 5], [4, 2])
    const dtable = b.embeddingBackward(dout, b.fromArray([2, 0, 2, 1], [4], "i32"), 4)
    expect(dtable.shape).toEqual([4, 2])
    expect(await values(b, dtable)).toEqual([10, 20, 5, 5, 101, 202, 0, 0])
  })

  it("fails with a DeviceError naming the id and the vocabulary, allocating nothing", () => {
    const b = f32()
    const table = b.zeros([3, 2])
    const before = b.stats().liveTensors
    expect(() => b.embedding(table, b.fromArray([0, 3], [2], "i32"))).toThrow(DeviceError)
    expect(() => b.embedding(table, b.fromArray([-1], [1], "i32"))).toThrow(/id -1 at position 0 is outside the vocabulary \[0, 3\)/)
    expect(() => b.embeddingBackward(b.zeros([1, 2]), b.fromArray([5], [1], "i32"), 5)).toThrow(/id 5 .*\[0, 5\)/)
    // Only the four inputs made above are live: the failing ops made no output.
    expect(b.stats().liveTensors).toBe(before + 4)
  })

  it("refuses bad tables, ids, gradients and vocabularies", () => {
    const b = f32()
    expect(() => b.embedding(b.zeros([3, 2]), b.zeros([2]))).toThrow(DTypeError)
    expect(() => b.embedding(b.zeros([6]), b.zeros([2], "i32"))).toThrow(ShapeError)
    expect(() => b.embeddingBackward(b.zeros([2, 3]), b.zeros([3], "i32"), 4)).toThrow(ShapeError)
    expect(() => b.embeddingBackward(b.zeros([2, 3]), b.zeros([2], "i32"), 0)).toThrow(InvalidArgumentError)
    expect(() => b.embeddingBackward(b.zeros([2, 3]), b.zeros([2], "i32"), 2 ** 31)).toThrow(InvalidArgumentError)
  })
})

describe("timestepEmbedding", () => {
  it("puts cos(t f_j) then sin(t f_j), f_j = exp(-ln(maxPeriod) j / half)", async () => {
    const b = f64()
    const out = b.timestepEmbedding(b.fromArray([0, 1, 250], [3]), 4)
    expect(out.shape).toEqual([3, 4])
    const f = [1, 0.01]
    const row = (t: number) => [...f.map((fj) => Math.cos(t * fj)), ...f.map((fj) => Math.sin(t * fj))]
    expectClose(await values(b, out), [...row(0), ...row(1), ...row(250)], 1e-15)
  })

  it("zeroes the last column of an odd dimension and honours maxPeriod", async () => {
    const b = f64()
    const got = await values(b, b.timestepEmbedding(b.fromArray([2], [1]), 5, 100))
    const f = [1, Math.exp(-Math.log(100) / 2)]
    expectClose(got, [Math.cos(2), Math.cos(2 * (f[1] as number)), Math.sin(2), Math.sin(2 * (f[1] as number)), 0], 1e-15)
    expect(await values(b, b.timestepEmbedding(b.fromArray([7], [1]), 1))).toEqual([0])
  })

  it("refuses bad times, dimensions and periods", () => {
    const b = f32()
    const t = b.zeros([2])
    expect(() => b.timestepEmbedding(b.zeros([2, 1]), 4)).toThrow(ShapeError)
    expect(() => b.timestepEmbedding(t, 0)).toThrow(InvalidArgumentError)
    expect(() => b.timestepEmbedding(t, 2.5)).toThrow(InvalidArgumentError)
    expect(() => b.timestepEmbedding(t, 4, -1)).toThrow(InvalidArgumentError)
    expect(() => b.timestepEmbedding(t, 4, Number.NaN)).toThrow(InvalidArgumentError)
    expect(() => b.timestepEmbedding(t, 4, 1e39)).toThrow(InvalidArgumentError)
  })
})
