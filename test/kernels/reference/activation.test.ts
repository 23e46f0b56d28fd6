import { describe, expect, it } from "vitest"
import { ShapeError } from "../../../src/kernels/errors.ts"
import { expectClose, f64, numericGradient, pseudoRandom, values, weightedSum } from "./helpers.ts"

const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))

describe("gelu", () => {
  it("is the tanh approximation", async () => {
    const b = f64()
    const xs = [-3, -1, -0.25, 0, 0.5, 1, 2.5]
    const got = await values(b, b.gelu(b.fromArray(xs, [7])))
    expectClose(got, xs.map(geluTanh), 1e-15)
    // PyTorch's gelu(1, approximate="tanh").
    expect(got[5]).toBeCloseTo(0.841192, 6)
  })

  it("satisfies gelu(x) - gelu(-x) = x and saturates to x and 0", async () => {
    const b = f64()
    const xs = pseudoRandom(16, 3).map((u) => 4 * u)
    const pos = await values(b, b.gelu(b.fromArray(xs, [16])))
    const neg = await values(b, b.gelu(b.fromArray(xs.map((x) => -x), [16])))
    expectClose(pos.map((p, i) => p - (neg[i] as number)), xs, 1e-14)
    const far = await values(b, b.gelu(b.fromArray([40, -40], [2])))
    expect(far[0]).toBe(40)
    expect(Math.abs(far[1] as number)).toBe(0)
  })

  it("has the derivative of its forward (gradcheck in f64)", async () => {
    const b = f64()
    const xs = [...pseudoRandom(10, 5).map((u) => 3 * u), 0, 12, -12]
    const weights = pseudoRandom(xs.length, 6)
    const dx = await values(b, b.geluBackward(b.fromArray(weights, [xs.length]), b.fromArray(xs, [xs.length])))
    const numeric = await numericGradient(xs, async (x) => weightedSum(await values(b, b.gelu(b.fromArray(x, [x.length]))), weights))
    expectClose(dx, numeric, 1e-8)
  })
})

describe("silu", () => {
  it("is x sigmoid(x)", async () => {
    const b = f64()
    const got = await values(b, b.silu(b.fromArray([0, 1, -1, 800, -800], [5])))
    expectClose(got, [0, 0.7310585786300049, -0.2689414213699951, 800, 0], 1e-15)
  })

  it("has the derivative of its forward (gradcheck in f64)", async () => {
    const b = f64()
    const xs = pseudoRandom(12, 8).map((u) => 5 * u)
    const weights = pseudoRandom(12, 9)
    const dx = await values(b, b.siluBackward(b.fromArray(weights, [12]), b.fromArray(xs, [12])))
    const numeric = await numericGradient(xs, async (x) => weightedSum(await values(b, b.silu(b.fromArray(x, [12]))), weights))
    expectClose(dx, numeric, 1e-8)
  })

  it("refuses a gradient of another shape", () => {
    const b = f64()
    expect(() => b.siluBackward(b.zeros([3]), b.zeros([4]))).toThrow(ShapeError)
    expect(() => b.geluBackward(b.zeros([3]), b.zeros([3, 1]))).toThrow(ShapeError)
  })
})
