import { describe, expect, it } from "vitest"
import { DTypeError, InvalidArgumentError, ShapeError } from "../../../src/kernels/errors.ts"
import type { ReferenceBackend } from "../../../src/kernels/reference/ReferenceBackend.ts"
import type { Tensor } from "../../../src/tensor/Tensor.ts"
import { expectClose, f32, f64, pseudoRandom, tensorOf, values } from "./helpers.ts"

const rowNorms = (xs: Array<number>, rows: number) => {
  const cols = xs.length / rows
  return Array.from({ length: rows }, (_, r) => Math.hypot(...xs.slice(r * cols, (r + 1) * cols)))
}

describe("score directions", () => {
  it("classifierScoreDirection is gUncond - gCond", async () => {
    const b = f64()
    expect(await values(b, b.classifierScoreDirection(b.fromArray([3, 1], [1, 2]), b.fromArray([1, 4], [1, 2])))).toEqual([2, -3])
  })

  it("fakeScoreMix is k (gU - gC) + (1 - k) (gF - gC), and the classifier direction at k = 1", async () => {
    const b = f64()
    const [gU, gC, gF] = [b.fromArray([3, 1], [1, 2]), b.fromArray([1, 4], [1, 2]), b.fromArray([0, 0], [1, 2])]
    expectClose(await values(b, b.fakeScoreMix(gU, gC, gF, 0.9)), [0.9 * 2 + 0.1 * -1, 0.9 * -3 + 0.1 * -4], 1e-15)
    expect(await values(b, b.fakeScoreMix(gU, gC, gF, 1))).toEqual(await values(b, b.classifierScoreDirection(gU, gC)))
  })
})

describe("energyPreservingRenorm", () => {
  it("keeps x's direction and takes |ref| per row; a zero row stays zero", async () => {
    const b = f64()
    const xs = [...pseudoRandom(12, 1), 0, 0, 0, 0]
    const refs = pseudoRandom(16, 2).map((u) => 3 * u)
    const out = await values(b, b.energyPreservingRenorm(b.fromArray(xs, [4, 2, 2]), b.fromArray(refs, [4, 2, 2])))
    expectClose(rowNorms(out, 4).slice(0, 3), rowNorms(refs, 4).slice(0, 3), 1e-14)
    const factors = rowNorms(refs, 4).map((n, r) => n / (rowNorms(xs, 4)[r] as number))
    expectClose(out.slice(0, 12), xs.slice(0, 12).map((x, i) => x * (factors[Math.floor(i / 4)] as number)), 1e-14)
    expect(out.slice(12)).toEqual([0, 0, 0, 0])
  })
})

describe("velocityTarget", () => {
  it("is (xt - xRenorm) / t per row", async () => {
    const b = f64()
    const out = b.velocityTarget(b.fromArray([1, 2, 3, 4], [2, 2]), b.fromArray([0, 1, 1, 0], [2, 2]), b.fromArray([0.5, 0.25], [2]))
    expect(await values(b, out)).toEqual([2, 2, 8, 16])
  })

  it("reduces to the flow-matching target eps - x0 when xRenorm = x0 and xt = (1 - t) x0 + t eps", async () => {
    const b = f64()
    const x0 = pseudoRandom(12, 3)
    const eps = pseudoRandom(12, 4)
    const t = [0.2, 0.5, 0.9]
    const xt = x0.map((x, i) => (1 - (t[Math.floor(i / 4)] as number)) * x + (t[Math.floor(i / 4)] as number) * (eps[i] as number))
    const out = b.velocityTarget(b.fromArray(xt, [3, 4]), b.fromArray(x0, [3, 4]), b.fromArray(t, [3]))
    expectClose(await values(b, out), eps.map((e, i) => e - (x0[i] as number)), 1e-14)
  })
})

describe("selfEvaluationTarget", () => {
  const inputs = (b: ReferenceBackend, withFake: boolean) => ({
    x0: tensorOf(b, [3, 2, 2], 1),
    x0Hat: tensorOf(b, [3, 2, 2], 2),
    xt: tensorOf(b, [3, 2, 2], 3),
    t: b.fromArray([0.3, 0.6, 0.9], [3]),
    lambda: b.fromArray([0, 0.7, 2.5], [3]),
    gUncond: tensorOf(b, [3, 2, 2], 4),
    gCond: tensorOf(b, [3, 2, 2], 5),
    gFake: withFake ? tensorOf(b, [3, 2, 2], 6) : undefined,
    k: 0.9
  })

  it("matches a hand-worked row", async () => {
    const b = f64()
    const out = b.selfEvaluationTarget({
      x0: b.fromArray([3, 4], [1, 2]),
      x0Hat: b.fromArray([1, 0], [1, 2]),
      xt: b.fromArray([0, 0], [1, 2]),
      t: b.fromArray([0.5], [1]),
      lambda: b.fromArray([1], [1]),
      gUncond: b.fromArray([2, 2], [1, 2]),
      gCond: b.fromArray([2, 2], [1, 2]),
      k: 0.5
    })
    // d = 0, x_self = [1, 0], x_tar = [4, 4], x_renorm = [4, 4] 5 / (4 sqrt 2), out = -x_renorm / 0.5.
    expectClose(await values(b, out), [-5 * Math.SQRT2, -5 * Math.SQRT2], 1e-15)
  })

  it("equals the composition of the separate ops, with and without the fake score", async () => {
    const b = f64()
    for (const withFake of [false, true]) {
      const i = inputs(b, withFake)
      const d: Tensor = i.gFake === undefined ? b.classifierScoreDirection(i.gUncond, i.gCond) : b.fakeScoreMix(i.gUncond, i.gCond, i.gFake, i.k)
      const xTar = b.add(i.x0, b.mulRows(b.sub(i.x0Hat, d), i.lambda))
      const composed = b.velocityTarget(i.xt, b.energyPreservingRenorm(xTar, i.x0), i.t)
      expectClose(await values(b, b.selfEvaluationTarget(i)), await values(b, composed), 1e-14)
    }
  })

  it("is the flow-matching target eps - x0 where lambda = 0 (s = t)", async () => {
    const b = f64()
    const x0 = pseudoRandom(8, 7)
    const eps = pseudoRandom(8, 8)
    const xt = x0.map((x, i) => 0.6 * x + 0.4 * (eps[i] as number))
    const out = b.selfEvaluationTarget({
      x0: b.fromArray(x0, [2, 4]),
      x0Hat: tensorOf(b, [2, 4], 9),
      xt: b.fromArray(xt, [2, 4]),
      t: b.fromArray([0.4, 0.4], [2]),
      lambda: b.zeros([2]),
      gUncond: tensorOf(b, [2, 4], 10),
      gCond: tensorOf(b, [2, 4], 11),
      k: 1
    })
    expectClose(await values(b, out), eps.map((e, i) => e - (x0[i] as number)), 1e-14)
  })

  it("refuses mismatched inputs and a non-finite k", () => {
    const b = f32()
    const i = inputs(b, true)
    expect(() => b.selfEvaluationTarget({ ...i, t: b.zeros([2]) })).toThrow(ShapeError)
    expect(() => b.selfEvaluationTarget({ ...i, lambda: b.zeros([3, 1]) })).toThrow(ShapeError)
    expect(() => b.selfEvaluationTarget({ ...i, gFake: b.zeros([3, 4]) })).toThrow(ShapeError)
    expect(() => b.selfEvaluationTarget({ ...i, xt: b.zeros([3, 2, 2], "i32") })).toThrow(DTypeError)
    expect(() => b.selfEvaluationTarget({ ...i, k: Number.NaN })).toThrow(InvalidArgumentError)
  })
})

describe("guidance", () => {
  it("cfgCombine is vU + omega (vC - vU)", async () => {
    const b = f64()
    expect(await values(b, b.cfgCombine(b.fromArray([1, 2], [1, 2]), b.fromArray([3, 6], [1, 2]), 2))).toEqual([5, 10])
  })

  it("energyPreservingCfg rescales the guided velocity to |vC| per row", async () => {
    const b = f64()
    expectClose(await values(b, b.energyPreservingCfg(b.fromArray([0, 0], [1, 2]), b.fromArray([3, 4], [1, 2]), 2)), [3, 4], 1e-15)
    const vU = pseudoRandom(15, 1)
    const vC = pseudoRandom(15, 2)
    const out = await values(b, b.energyPreservingCfg(b.fromArray(vU, [3, 5]), b.fromArray(vC, [3, 5]), 5))
    expectClose(rowNorms(out, 3), rowNorms(vC, 3), 1e-14)
    const guided = await values(b, b.cfgCombine(b.fromArray(vU, [3, 5]), b.fromArray(vC, [3, 5]), 5))
    const factors = rowNorms(vC, 3).map((n, r) => n / (rowNorms(guided, 3)[r] as number))
    expectClose(out, guided.map((g, i) => g * (factors[Math.floor(i / 5)] as number)), 1e-14)
  })

  it("leaves a zero guided row at zero", async () => {
    const b = f64()
    expect(await values(b, b.energyPreservingCfg(b.zeros([1, 3]), b.zeros([1, 3]), 5))).toEqual([0, 0, 0])
  })

  it("refuses non-finite guidance, scalars without rows and mismatched shapes", () => {
    const b = f32()
    const v = b.zeros([2, 3])
    expect(() => b.cfgCombine(v, v, Number.POSITIVE_INFINITY)).toThrow(InvalidArgumentError)
    expect(() => b.energyPreservingCfg(v, v, Number.NaN)).toThrow(InvalidArgumentError)
    expect(() => b.energyPreservingCfg(b.zeros([]), b.zeros([]), 1)).toThrow(ShapeError)
    expect(() => b.energyPreservingRenorm(b.zeros([]), b.zeros([]))).toThrow(ShapeError)
    expect(() => b.fakeScoreMix(v, v, b.zeros([3, 2]), 0.5)).toThrow(ShapeError)
    expect(() => b.velocityTarget(v, v, b.zeros([3]))).toThrow(ShapeError)
  })
})
