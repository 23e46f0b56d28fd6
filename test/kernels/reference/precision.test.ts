import { describe, expect, it } from "vitest"
import type { ReferenceBackend } from "../../../src/kernels/reference/ReferenceBackend.ts"
import type { Shape } from "../../../src/tensor/dtype.ts"
import type { Tensor } from "../../../src/tensor/Tensor.ts"
import { f32, f64, pseudoRandom } from "./helpers.ts"

/** Inputs already representable in f32, so both precisions start from the same numbers. */
const input = (b: ReferenceBackend, shape: Shape, seed: number, scale = 1) =>
  b.fromArray(pseudoRandom(shape.reduce((n, d) => n * d, 1), seed).map((u) => Math.fround(scale * u)), shape)

const cases: ReadonlyArray<readonly [string, (b: ReferenceBackend) => Tensor]> = [
  ["add", (b) => b.add(input(b, [4, 8], 1), input(b, [8], 2))],
  ["gelu", (b) => b.gelu(input(b, [32], 3, 4))],
  ["siluBackward", (b) => b.siluBackward(input(b, [32], 4), input(b, [32], 5, 4))],
  ["layerNorm", (b) => b.layerNorm(input(b, [4, 16], 6, 3), { weight: input(b, [16], 7), bias: input(b, [16], 8), eps: 1e-5 }).y],
  [
    "layerNormBackward",
    (b) => {
      const x = input(b, [4, 16], 9, 3)
      return b.layerNormBackward(input(b, [4, 16], 10), x, b.layerNorm(x, { eps: 1e-5 }), { withBias: false }).dx
    }
  ],
  ["attention", (b) => b.attention(input(b, [2, 5, 2, 8], 11, 2), input(b, [2, 7, 2, 8], 12, 2), input(b, [2, 7, 2, 8], 13), {}).out],
  [
    "attentionBackward",
    (b) => {
      const [q, k, v] = [input(b, [1, 4, 2, 4], 14), input(b, [1, 6, 2, 4], 15), input(b, [1, 6, 2, 4], 16)]
      return b.attentionBackward(input(b, [1, 4, 2, 4], 17), q, k, v, b.attention(q, k, v, {}), {}).dk
    }
  ],
  ["matmul", (b) => b.matmul(input(b, [3, 4, 16], 18), input(b, [16, 5], 19), { alpha: 0.5 })],
  ["linear", (b) => b.linear(input(b, [6, 16], 20), input(b, [8, 16], 21), input(b, [8], 22))],
  ["timestepEmbedding", (b) => b.timestepEmbedding(b.fromArray([0, 0.25, 500, 999], [4]), 32)],
  ["mseRows", (b) => b.mseRows(input(b, [4, 16], 23), input(b, [4, 16], 24), 1)],
  [
    "selfEvaluationTarget",
    (b) =>
      b.selfEvaluationTarget({
        x0: input(b, [3, 16], 25),
        x0Hat: input(b, [3, 16], 26),
        xt: input(b, [3, 16], 27),
        t: b.fromArray([0.25, 0.5, 0.75], [3]),
        lambda: b.fromArray([0, 0.5, 2], [3]),
        gUncond: input(b, [3, 16], 28),
        gCond: input(b, [3, 16], 29),
        gFake: input(b, [3, 16], 30),
        k: 0.9
      })
  ],
  ["energyPreservingCfg", (b) => b.energyPreservingCfg(input(b, [3, 16], 31), input(b, [3, 16], 32), 5)],
  ["randomNormal", (b) => b.randomNormal([64], { seed: 5, offset: 9 })]
]

describe("f32 and f64 precision", () => {
  it.each(cases)("agree to ~1e-6 on %s", async (_, run) => {
    const [single, double] = [f32(), f64()]
    const got = await single.read(run(single))
    const exact = await double.read(run(double))
    expect(got).toBeInstanceOf(Float32Array)
    expect(exact).toBeInstanceOf(Float64Array)
    const scale = Math.max(1, ...Array.from(exact, Math.abs))
    for (let i = 0; i < exact.length; i++) expect(Math.abs((got[i] as number) - (exact[i] as number)) / scale, `element ${i}`).toBeLessThan(1e-6)
  })
})
