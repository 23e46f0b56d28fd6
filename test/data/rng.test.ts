import { describe, expect, it } from "vitest"
import { hashSeed, Rng } from "../../src/data/rng.ts"

const draw = (rng: Rng, n: number) => Array.from({ length: n }, () => rng.uint32())

describe("Rng", () => {
  it("repeats its sequence for the same seed and differs for another", () => {
    expect(draw(new Rng(42), 100)).toEqual(draw(new Rng(42), 100))
    expect(draw(new Rng(42), 100)).not.toEqual(draw(new Rng(43), 100))
  })

  it("derives distinct streams from coordinates, order-sensitively", () => {
    expect(draw(Rng.at(1, 2, 3), 10)).toEqual(draw(Rng.at(1, 2, 3), 10))
    expect(hashSeed(1, 2)).not.toBe(hashSeed(2, 1))
    expect(hashSeed(0, 2 ** 40)).not.toBe(hashSeed(0, 0))
    const seeds = new Set(Array.from({ length: 10_000 }, (_, k) => hashSeed(7, k)))
    expect(seeds.size).toBe(10_000)
  })

  it("draws uniform floats in [0, 1) and integers in range", () => {
    const rng = new Rng(5)
    const floats = Array.from({ length: 20_000 }, () => rng.float())
    expect(Math.min(...floats)).toBeGreaterThanOrEqual(0)
    expect(Math.max(...floats)).toBeLessThan(1)
    expect(floats.reduce((a, b) => a + b) / floats.length).toBeCloseTo(0.5, 1)
    const counts = [0, 0, 0, 0, 0]
    for (let k = 0; k < 20_000; k++) counts[rng.int(5)]++
    for (const count of counts) expect(count).toBeGreaterThan(3_600)
  })

  it("draws standard normals", () => {
    const rng = new Rng(9)
    const values = Array.from({ length: 20_000 }, () => rng.normal())
    const mean = values.reduce((a, b) => a + b) / values.length
    const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length
    expect(mean).toBeCloseTo(0, 1)
    expect(variance).toBeCloseTo(1, 1)
  })

  it("shuffles into a permutation without touching the input", () => {
    const items = Array.from({ length: 50 }, (_, k) => k)
    const shuffled = new Rng(3).shuffle(items)
    expect(shuffled).not.toEqual(items)
    expect([...shuffled].sort((a, b) => a - b)).toEqual(items)
  })
})
