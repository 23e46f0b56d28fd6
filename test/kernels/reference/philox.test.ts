import { describe, expect, it } from "vitest"
import { mulhi32, normalFromBlock, philox4x32, philoxBlock, uniformFromBits } from "../../../src/kernels/reference/philox.ts"
import { f32, f64, pseudoRandom, values } from "./helpers.ts"

const hex = (words: Uint32Array) => Array.from(words, (w) => w.toString(16).padStart(8, "0"))

describe("Philox4x32-10", () => {
  it("matches Random123's known answers", () => {
    expect(hex(philox4x32([0, 0, 0, 0], 0, 0))).toEqual(["6627e8d5", "e169c58d", "bc57ac4c", "9b00dbd8"])
    expect(hex(philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], 0xffffffff, 0xffffffff))).toEqual([
      "408f276d",
      "41c83b0e",
      "a20bc7c6",
      "6d5451fd"
    ])
    expect(hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], 0xa4093822, 0x299f31d0))).toEqual([
      "d16cfe09",
      "94fdcceb",
      "5001e420",
      "24126ea1"
    ])
  })

  it("takes the exact high word of 32x32-bit products", () => {
    const words = [0, 1, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xd2511f53, 0xcd9e8d57, 0xffffffff]
    const randomWords = pseudoRandom(200, 9).map((u) => Math.floor((u + 1) * 2 ** 31) >>> 0)
    for (const a of [...words, ...randomWords.slice(0, 100)])
      for (const b of [...words, ...randomWords.slice(100, 110)]) {
        const exact = Number((BigInt(a) * BigInt(b)) >> 32n)
        expect(mulhi32(a, b), `${a} * ${b}`).toBe(exact)
      }
  })

  it("keys a stream block by the seed's two words and counts blocks in the counter's low two words", () => {
    const seed = 2 ** 32 * 3 + 5
    const block = 2 ** 32 * 7 + 11
    expect(Array.from(philoxBlock(seed, block))).toEqual(Array.from(philox4x32([11, 7, 0, 0], 5, 3)))
  })

  it("maps the top 23 bits to the centre of a cell, exactly representable in f32", () => {
    expect(uniformFromBits(0)).toBe(2 ** -24)
    expect(uniformFromBits(0x000001ff)).toBe(2 ** -24)
    expect(uniformFromBits(0x00000200)).toBe(1.5 * 2 ** -23)
    expect(uniformFromBits(0x80000000)).toBe(0.5 + 2 ** -24)
    // The top cell's centre stays below 1 and is an f32 value.
    expect(uniformFromBits(0xffffffff)).toBe(1 - 2 ** -24)
    expect(Math.fround(uniformFromBits(0xffffffff))).toBe(uniformFromBits(0xffffffff))
  })

  it("forms normals by Box-Muller on lane pairs", () => {
    const block = philox4x32([1, 2, 0, 0], 3, 4)
    const u = Array.from(block, (bits) => ((bits >>> 9) + 0.5) / 2 ** 23)
    const r01 = Math.sqrt(-2 * Math.log(u[0] as number))
    const r23 = Math.sqrt(-2 * Math.log(u[2] as number))
    expect(normalFromBlock(block, 0)).toBe(r01 * Math.cos(2 * Math.PI * (u[1] as number)))
    expect(normalFromBlock(block, 1)).toBe(r01 * Math.sin(2 * Math.PI * (u[1] as number)))
    expect(normalFromBlock(block, 2)).toBe(r23 * Math.cos(2 * Math.PI * (u[3] as number)))
    expect(normalFromBlock(block, 3)).toBe(r23 * Math.sin(2 * Math.PI * (u[3] as number)))
  })
})

describe("random streams", () => {
  it("gives element i lane i % 4 of block offset + floor(i / 4)", async () => {
    const b = f32()
    const seed = 123456789
    const got = await values(b, b.randomUniform([3, 3], { seed, offset: 40 }))
    const expected = Array.from({ length: 9 }, (_, i) => uniformFromBits(philoxBlock(seed, 40 + Math.floor(i / 4))[i % 4] as number))
    expect(got).toEqual(expected)
  })

  it("continues a stream when the offset advances by the blocks used", async () => {
    const b = f32()
    const whole = await values(b, b.randomNormal([20], { seed: 9, offset: 0 }))
    const tail = await values(b, b.randomNormal([8], { seed: 9, offset: 3 }))
    expect(tail).toEqual(whole.slice(12))
  })

  it("carries the block counter from the low word into the high word", async () => {
    const b = f32()
    const seed = 77
    const got = await values(b, b.randomUniform([8], { seed, offset: 2 ** 32 - 1 }))
    const secondBlock = philox4x32([0, 1, 0, 0], seed, 0)
    expect(got.slice(4)).toEqual(Array.from(secondBlock, uniformFromBits))
  })

  it("depends on the seed's high word", async () => {
    const b = f32()
    const low = await values(b, b.randomUniform([4], { seed: 5, offset: 0 }))
    const high = await values(b, b.randomUniform([4], { seed: 2 ** 32 + 5, offset: 0 }))
    expect(high).not.toEqual(low)
    expect(high).toEqual(Array.from(philox4x32([0, 0, 0, 0], 5, 1), uniformFromBits))
  })

  it("has the moments of U(0, 1) and N(0, 1)", async () => {
    const b = f32()
    const n = 1 << 16
    const u = await values(b, b.randomUniform([n], { seed: 2024, offset: 0 }))
    const z = await values(b, b.randomNormal([n], { seed: 2024, offset: 0 }))
    const mean = (xs: Array<number>) => xs.reduce((s, x) => s + x, 0) / xs.length
    const variance = (xs: Array<number>) => {
      const m = mean(xs)
      return mean(xs.map((x) => (x - m) ** 2))
    }
    expect(u.every((x) => x > 0 && x <= 1)).toBe(true)
    expect(Math.abs(mean(u) - 0.5)).toBeLessThan(0.005)
    expect(Math.abs(variance(u) - 1 / 12)).toBeLessThan(0.002)
    expect(Math.abs(mean(z))).toBeLessThan(0.02)
    expect(Math.abs(variance(z) - 1)).toBeLessThan(0.03)
  })

  it("draws the same numbers in both precisions (normals rounded once from double)", async () => {
    const [a, b] = [f32(), f64()]
    const stream = { seed: 31337, offset: 5 }
    expect(await values(b, b.randomUniform([33], stream))).toEqual(await values(a, a.randomUniform([33], stream)))
    const normals64 = await values(b, b.randomNormal([33], stream))
    expect(await values(a, a.randomNormal([33], stream))).toEqual(normals64.map(Math.fround))
  })
})
