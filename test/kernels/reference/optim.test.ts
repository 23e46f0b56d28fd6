import { describe, expect, it } from "vitest"
import { DTypeError, InvalidArgumentError, ShapeError } from "../../../src/kernels/errors.ts"
import { expectClose, f32, f64, tensorOf, values } from "./helpers.ts"

describe("adamw", () => {
  it("takes two steps by the hand formula (bias-corrected moments, decoupled decay)", async () => {
    const b = f64()
    const hyper = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 }
    const p = b.fromArray([1, -2], [2])
    const m = b.zeros([2])
    const v = b.zeros([2])
    const g1 = [0.5, 0.1]
    b.adamw({ params: [p], grads: [b.fromArray(g1, [2])], m: [m], v: [v] }, { ...hyper, step: 1 })
    const m1 = g1.map((g) => 0.1 * g)
    const v1 = g1.map((g) => 0.001 * g * g)
    // At step 1 the corrected moments are g and g^2.
    const p1 = [1, -2].map((x, i) => x - 0.1 * ((g1[i] as number) / (Math.abs(g1[i] as number) + 1e-8) + 0.01 * x))
    expectClose(await values(b, m), m1, 1e-15)
    expectClose(await values(b, v), v1, 1e-15)
    expectClose(await values(b, p), p1, 1e-15)

    const g2 = [-0.2, 0.3]
    b.adamw({ params: [p], grads: [b.fromArray(g2, [2])], m: [m], v: [v] }, { ...hyper, step: 2 })
    const m2 = m1.map((x, i) => 0.9 * x + 0.1 * (g2[i] as number))
    const v2 = v1.map((x, i) => 0.999 * x + 0.001 * (g2[i] as number) ** 2)
    const p2 = p1.map((x, i) => x - 0.1 * ((m2[i] as number) / (1 - 0.81) / (Math.sqrt((v2[i] as number) / (1 - 0.999 ** 2)) + 1e-8) + 0.01 * x))
    expectClose(await values(b, p), p2, 1e-14)
  })

  it("updates every tensor of the lists", async () => {
    const b = f64()
    const params = [b.fromArray([1], [1]), b.fromArray([2, 3], [2])]
    const grads = [b.fromArray([1], [1]), b.fromArray([-1, 1], [2])]
    b.adamw({ params, grads, m: [b.zeros([1]), b.zeros([2])], v: [b.zeros([1]), b.zeros([2])] }, { lr: 0.5, beta1: 0.9, beta2: 0.99, eps: 0, weightDecay: 0, step: 1 })
    expect(await values(b, params[0]!)).toEqual([0.5])
    expect(await values(b, params[1]!)).toEqual([2.5, 2.5])
  })

  it("refuses bad hyper-parameters and mismatched lists", () => {
    const b = f32()
    const state = { params: [b.zeros([2])], grads: [b.zeros([2])], m: [b.zeros([2])], v: [b.zeros([2])] }
    const hyper = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1 }
    expect(() => b.adamw(state, { ...hyper, step: 0 })).toThrow(InvalidArgumentError)
    expect(() => b.adamw(state, { ...hyper, step: 1.5 })).toThrow(InvalidArgumentError)
    expect(() => b.adamw(state, { ...hyper, lr: Number.NaN })).toThrow(InvalidArgumentError)
    expect(() => b.adamw({ ...state, m: [] }, hyper)).toThrow(InvalidArgumentError)
    expect(() => b.adamw({ ...state, v: [b.zeros([3])] }, hyper)).toThrow(ShapeError)
    expect(() => b.adamw({ ...state, grads: [b.zeros([2], "i32")] }, hyper)).toThrow(DTypeError)
    const p = state.params[0]!
    expect(() => b.adamw({ params: [p, p], grads: [p, p], m: [p, p], v: [p, p] }, hyper)).toThrow(InvalidArgumentError)
  })
})

describe("adamwEma", () => {
  const hyper = { lr: 0.05, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01, step: 3 }
  for (const [precision, make] of [["f32", f32], ["f64", f64]] as const)
    it(`gives exactly adamw followed by emaUpdate (${precision})`, async () => {
      const b = make()
      const shapes = [[3], [2, 5], [1]]
      const state = (offset: number) => ({
        params: shapes.map((s, i) => tensorOf(b, s, offset + i)),
        grads: shapes.map((s, i) => tensorOf(b, s, offset + 10 + i)),
        m: shapes.map((s, i) => b.affine(tensorOf(b, s, offset + 20 + i), 0.1, 0)),
        v: shapes.map((s, i) => b.affine(tensorOf(b, s, offset + 30 + i), 0.001, 0.002)),
        ema: shapes.map((s, i) => tensorOf(b, s, offset + 40 + i))
      })
      const fused = state(1)
      const split = state(1)
      for (const step of [3, 4]) {
        b.adamwEma(fused, { ...hyper, step }, 0.9)
        b.adamw(split, { ...hyper, step })
        b.emaUpdate(split.ema, split.params, 0.9)
      }
      for (const key of ["params", "m", "v", "ema"] as const)
        for (const [i, t] of fused[key].entries()) expect(await values(b, t), `${key}[${i}]`).toEqual(await values(b, split[key][i]!))
    })

  it("refuses what adamw refuses, a mismatched ema list and a bad decay", () => {
    const b = f32()
    const state = { params: [b.zeros([2])], grads: [b.zeros([2])], m: [b.zeros([2])], v: [b.zeros([2])], ema: [b.zeros([2])] }
    const hyper = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1 }
    expect(() => b.adamwEma(state, { ...hyper, step: 0 }, 0.9)).toThrow(InvalidArgumentError)
    expect(() => b.adamwEma(state, { ...hyper, eps: Number.NaN }, 0.9)).toThrow(InvalidArgumentError)
    expect(() => b.adamwEma(state, hyper, Number.NaN)).toThrow(/emaDecay/)
    expect(() => b.adamwEma({ ...state, ema: [] }, hyper, 0.9)).toThrow(InvalidArgumentError)
    expect(() => b.adamwEma({ ...state, ema: [b.zeros([3])] }, hyper, 0.9)).toThrow(ShapeError)
    expect(() => b.adamwEma({ ...state, ema: [b.zeros([2], "i32")] }, hyper, 0.9)).toThrow(DTypeError)
  })
})

describe("emaUpdate, globalNorm, clipByNorm", () => {
  it("moves the average toward the parameters by 1 - decay", async () => {
    const b = f64()
    const ema = b.fromArray([0, 10], [2])
    b.emaUpdate([ema], [b.fromArray([1, 0], [2])], 0.9)
    expectClose(await values(b, ema), [0.1, 9], 1e-15)
    expect(() => b.emaUpdate([ema], [b.zeros([2])], Number.NaN)).toThrow(InvalidArgumentError)
  })

  it("takes the norm over every tensor of the list", async () => {
    const b = f64()
    const norm = b.globalNorm([b.fromArray([3], [1]), b.fromArray([0, 4], [1, 2])])
    expect(norm.shape).toEqual([])
    expect(await values(b, norm)).toEqual([5])
    expect(await values(b, b.globalNorm([]))).toEqual([0])
  })

  it("scales by maxNorm / (norm + 1e-6) only when that is below 1", async () => {
    const b = f64()
    const xs = [b.fromArray([3], [1]), b.fromArray([4], [1])]
    b.clipByNorm(xs, b.globalNorm(xs), 10)
    expect(await values(b, xs[0]!)).toEqual([3])
    b.clipByNorm(xs, b.globalNorm(xs), 1)
    expectClose([...(await values(b, xs[0]!)), ...(await values(b, xs[1]!))], [3 / (5 + 1e-6), 4 / (5 + 1e-6)], 1e-15)
  })

  it("propagates a NaN norm into the tensors", async () => {
    const b = f32()
    const x = b.fromArray([1, 2], [2])
    b.clipByNorm([x], b.fromArray([Number.NaN], []), 1)
    expect((await values(b, x)).every(Number.isNaN)).toBe(true)
  })

  it("refuses a norm that is not a scalar and a non-finite maxNorm", () => {
    const b = f32()
    const x = b.zeros([2])
    expect(() => b.clipByNorm([x], b.zeros([1]), 1)).toThrow(ShapeError)
    expect(() => b.clipByNorm([x], b.zeros([]), Number.NaN)).toThrow(InvalidArgumentError)
  })
})
