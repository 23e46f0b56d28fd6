import { describe, expect, it } from "vitest"
import { DTypeError, InvalidArgumentError, ShapeError } from "../../../src/kernels/errors.ts"
import { f32, f64, pseudoRandom, tensorOf, values } from "./helpers.ts"

describe("patchify", () => {
  it("orders each patch vector (py, px, c) and patches row-major over the grid", async () => {
    const b = f64()
    // x[c, h, w] = 100 c + 10 h + w, for C = 2, H = 2, W = 4.
    const data = Array.from({ length: 16 }, (_, i) => 100 * Math.floor(i / 8) + 10 * (Math.floor(i / 4) % 2) + (i % 4))
    const tokens = b.patchify(b.fromArray(data, [1, 2, 2, 4]), 2)
    expect(tokens.shape).toEqual([1, 2, 8])
    expect(await values(b, tokens)).toEqual([0, 100, 1, 101, 10, 110, 11, 111, 2, 102, 3, 103, 12, 112, 13, 113])
  })

  it("is inverted by unpatchify, both ways", async () => {
    const b = f64()
    const image = { channels: 3, height: 4, width: 6, patch: 2 }
    const x = tensorOf(b, [2, 3, 4, 6], 3)
    expect(await values(b, b.unpatchify(b.patchify(x, 2), image))).toEqual(await values(b, x))
    const tokens = tensorOf(b, [2, 6, 12], 4)
    expect(await values(b, b.patchify(b.unpatchify(tokens, image), 2))).toEqual(await values(b, tokens))
  })

  it("refuses images not divisible by the patch and token tensors of the wrong size", () => {
    const b = f32()
    expect(() => b.patchify(b.zeros([1, 3, 4, 6]), 4)).toThrow(ShapeError)
    expect(() => b.patchify(b.zeros([1, 3, 4, 4]), 0)).toThrow(InvalidArgumentError)
    expect(() => b.patchify(b.zeros([3, 4, 4]), 2)).toThrow(ShapeError)
    expect(() => b.unpatchify(b.zeros([1, 4, 12]), { channels: 3, height: 4, width: 6, patch: 2 })).toThrow(ShapeError)
    expect(() => b.unpatchify(b.zeros([1, 6, 12]), { channels: 3, height: 4, width: 6, patch: 1.5 })).toThrow(InvalidArgumentError)
  })
})

describe("concat, narrow, pad", () => {
  it("concatenates along an axis (hand case)", async () => {
    const b = f64()
    const out = b.concat([b.fromArray([1, 2, 3, 4], [2, 2]), b.fromArray([5, 6], [2, 1])], 1)
    expect(out.shape).toEqual([2, 3])
    expect(await values(b, out)).toEqual([1, 2, 5, 3, 4, 6])
  })

  it("narrows and pads along an axis (hand cases)", async () => {
    const b = f64()
    const x = b.fromArray([1, 2, 3, 4, 5, 6], [2, 3])
    expect(await values(b, b.narrow(x, 1, 1, 2))).toEqual([2, 3, 5, 6])
    expect(await values(b, b.narrow(x, 0, 1, 1))).toEqual([4, 5, 6])
    expect(await values(b, b.pad(b.fromArray([1, 2], [2]), 0, 1, 2))).toEqual([0, 1, 2, 0, 0])
    const padded = b.pad(x, 1, 0, 1)
    expect(padded.shape).toEqual([2, 4])
    expect(await values(b, padded)).toEqual([1, 2, 3, 0, 4, 5, 6, 0])
  })

  it("round-trips: concatenated pieces narrow back to the pieces, on every axis and for i32", async () => {
    const b = f32()
    for (const axis of [0, 1, 2]) {
      const pieces = [1, 2, 3].map((n, i) => tensorOf(b, [2, 3, 4].map((d, j) => (j === axis ? n : d)), 10 * axis + i))
      const joined = b.concat(pieces, axis)
      let start = 0
      for (const piece of pieces) {
        const length = piece.shape[axis] as number
        expect(await values(b, b.narrow(joined, axis, start, length))).toEqual(await values(b, piece))
        start += length
      }
    }
    const ids = b.concat([b.fromArray([1, 2], [1, 2], "i32"), b.fromArray([3, 4], [1, 2], "i32")], 0)
    expect(ids.dtype).toBe("i32")
    expect(Array.from(await b.read(b.narrow(ids, 0, 1, 1)))).toEqual([3, 4])
  })

  it("pads as narrow's adjoint: narrowing the padding away gives x back", async () => {
    const b = f64()
    const x = b.fromArray(pseudoRandom(12, 5), [3, 4])
    expect(await values(b, b.narrow(b.pad(x, 1, 2, 3), 1, 2, 4))).toEqual(await values(b, x))
  })

  it("refuses mismatched pieces, bad axes, ranges and padding", () => {
    const b = f32()
    const x = b.zeros([2, 3])
    expect(() => b.concat([], 0)).toThrow(InvalidArgumentError)
    expect(() => b.concat([x, b.zeros([3, 3])], 1)).toThrow(ShapeError)
    expect(() => b.concat([x, b.zeros([2, 3], "i32")], 0)).toThrow(DTypeError)
    expect(() => b.concat([x, x], 2)).toThrow(InvalidArgumentError)
    expect(() => b.concat([b.zeros([])], 0)).toThrow(ShapeError)
    expect(() => b.narrow(x, 1, 2, 2)).toThrow(InvalidArgumentError)
    expect(() => b.narrow(x, -1, 0, 1)).toThrow(InvalidArgumentError)
    expect(() => b.pad(x, 0, -1, 0)).toThrow(InvalidArgumentError)
    expect(() => b.pad(b.zeros([]), 0, 1, 1)).toThrow(ShapeError)
  })
})
