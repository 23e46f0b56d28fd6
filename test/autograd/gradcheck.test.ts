import { it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import { afterAll, describe, expect } from "vitest"
import * as F from "../../src/autograd/functional.ts"
import { type GradcheckInput, gradcheck } from "../../src/autograd/gradcheck.ts"
import type { DiffOp } from "../../src/autograd/records.ts"
import { backwardRules } from "../../src/autograd/rules.ts"
import type { KernelError } from "../../src/kernels/errors.ts"
import { Kernels } from "../../src/kernels/Kernels.ts"
import type { Shape } from "../../src/tensor/dtype.ts"
import type { Tensor } from "../../src/tensor/Tensor.ts"
import { makeBackends, runOn } from "../helpers/backends.ts"
import { Gen } from "../helpers/gen.ts"

/**
 * Every backward rule against central finite differences, in float64 (Reference, precision "f64"): the
 * rules are composed of backward kernels, so this checks both.
 */
type Fn = (xs: ReadonlyArray<Tensor>) => Effect.Effect<Tensor, KernelError, Kernels | Scope.Scope>
interface GradCase {
  readonly f: Fn
  readonly inputs: (g: Gen) => ReadonlyArray<GradcheckInput>
}

const numel = (shape: Shape) => shape.reduce((a, b) => a * b, 1)
const real = (g: Gen, shape: Shape, scale = 1): GradcheckInput => ({ data: g.normals(numel(shape), scale), shape })
const ids = (g: Gen, shape: Shape, vocab: number): GradcheckInput => ({
  data: Array.from({ length: numel(shape) }, () => g.int(0, vocab - 1)),
  shape,
  dtype: "i32"
})
const at = (xs: ReadonlyArray<Tensor>, i: number) => xs[i] as Tensor

const cases: { readonly [K in DiffOp]: ReadonlyArray<GradCase> } = {
  add: [
    { f: (xs) => F.add(at(xs, 0), at(xs, 1)), inputs: (g) => [real(g, [2, 3]), real(g, [2, 3])] },
    { f: (xs) => F.add(at(xs, 0), at(xs, 1)), inputs: (g) => [real(g, [2, 3, 4]), real(g, [3, 4])] }
  ],
  sub: [{ f: (xs) => F.sub(at(xs, 0), at(xs, 1)), inputs: (g) => [real(g, [3, 4]), real(g, [4])] }],
  mul: [
    { f: (xs) => F.mul(at(xs, 0), at(xs, 1)), inputs: (g) => [real(g, [2, 5]), real(g, [2, 5])] },
    { f: (xs) => F.mul(at(xs, 0), at(xs, 1)), inputs: (g) => [real(g, [2, 3, 2]), real(g, [2])] }
  ],
  mulRows: [{ f: (xs) => F.mulRows(at(xs, 0), at(xs, 1)), inputs: (g) => [real(g, [3, 2, 2]), real(g, [3, 2])] }],
  affine: [{ f: (xs) => F.affine(at(xs, 0), -1.5, 0.25), inputs: (g) => [real(g, [4, 3])] }],
  axpy: [{ f: (xs) => F.axpy(0.7, at(xs, 0), at(xs, 1)), inputs: (g) => [real(g, [5]), real(g, [5])] }],
  rowDot: [{ f: (xs) => F.rowDot(at(xs, 0), at(xs, 1), 1), inputs: (g) => [real(g, [3, 4]), real(g, [3, 4])] }],
  gelu: [{ f: (xs) => F.gelu(at(xs, 0)), inputs: (g) => [real(g, [12], 2)] }],
  silu: [{ f: (xs) => F.silu(at(xs, 0)), inputs: (g) => [real(g, [12], 2)] }],
  layerNorm: [
    { f: (xs) => F.layerNorm(at(xs, 0), { eps: 1e-5 }), inputs: (g) => [real(g, [3, 5])] },
    { f: (xs) => F.layerNorm(at(xs, 0), { weight: at(xs, 1), bias: at(xs, 2), eps: 1e-5 }), inputs: (g) => [real(g, [2, 2, 6], 2), real(g, [6]), real(g, [6])] },
    { f: (xs) => F.layerNorm(at(xs, 0), { weight: at(xs, 1), eps: 1e-3 }), inputs: (g) => [real(g, [2, 4]), real(g, [4])] },
    // A residual around it: x's gradient from the add is the base LayerNorm's backward adds dx to.
    { f: (xs) => Effect.flatMap(F.layerNorm(at(xs, 0), { weight: at(xs, 1), eps: 1e-5 }), (y) => F.add(at(xs, 0), y)), inputs: (g) => [real(g, [3, 5], 2), real(g, [5])] }
  ],
  modulate: [{ f: (xs) => F.modulate(at(xs, 0), at(xs, 1), at(xs, 2)), inputs: (g) => [real(g, [2, 3, 4]), real(g, [2, 4]), real(g, [2, 4])] }],
  layerNormModulate: [
    { f: (xs) => F.layerNormModulate(at(xs, 0), at(xs, 1), at(xs, 2), 1e-5), inputs: (g) => [real(g, [2, 3, 5], 2), real(g, [2, 5]), real(g, [2, 5])] },
    // adaLN's residual: x's gradient so far is the base of dx.
    {
      f: (xs) => Effect.flatMap(F.layerNormModulate(at(xs, 0), at(xs, 1), at(xs, 2), 1e-5), (y) => F.gatedResidual(at(xs, 0), at(xs, 1), y)),
      inputs: (g) => [real(g, [2, 3, 5], 2), real(g, [2, 5]), real(g, [2, 5])]
    }
  ],
  gatedResidual: [
    { f: (xs) => F.gatedResidual(at(xs, 0), at(xs, 1), at(xs, 2)), inputs: (g) => [real(g, [2, 3, 4]), real(g, [2, 4]), real(g, [2, 3, 4])] }
  ],
  attention: [
    { f: (xs) => F.attention(at(xs, 0), at(xs, 1), at(xs, 2)), inputs: (g) => [real(g, [1, 3, 2, 4]), real(g, [1, 4, 2, 4]), real(g, [1, 4, 2, 4])] },
    // The [B, L, H·D] layout: 2 heads of 4.
    { f: (xs) => F.attention(at(xs, 0), at(xs, 1), at(xs, 2), { heads: 2 }), inputs: (g) => [real(g, [2, 3, 8]), real(g, [2, 4, 8]), real(g, [2, 4, 8])] },
    {
      f: (xs) => F.attention(at(xs, 0), at(xs, 1), at(xs, 2), { keyMask: at(xs, 3), scale: 0.8 }),
      inputs: (g) => [
        real(g, [2, 2, 1, 3]),
        real(g, [2, 3, 1, 3]),
        real(g, [2, 3, 1, 3]),
        { data: [1, 0, 1, 0, 0, 0], shape: [2, 3], dtype: "i32" }
      ]
    }
  ],
  matmul: [
    { f: (xs) => F.matmul(at(xs, 0), at(xs, 1)), inputs: (g) => [real(g, [3, 4]), real(g, [4, 2])] },
    { f: (xs) => F.matmul(at(xs, 0), at(xs, 1), { transA: true, transB: true, alpha: 0.5 }), inputs: (g) => [real(g, [2, 4, 3]), real(g, [2, 2, 4])] },
    { f: (xs) => F.matmul(at(xs, 0), at(xs, 1), { transB: true }), inputs: (g) => [real(g, [2, 3, 4]), real(g, [5, 4])] },
    { f: (xs) => F.matmul(at(xs, 0), at(xs, 1)), inputs: (g) => [real(g, [2, 3, 4]), real(g, [4, 2])] },
    { f: (xs) => F.matmul(at(xs, 0), at(xs, 1), { transA: true }), inputs: (g) => [real(g, [2, 4, 3]), real(g, [2, 4, 2])] }
  ],
  linear: [
    { f: (xs) => F.linear(at(xs, 0), at(xs, 1), at(xs, 2)), inputs: (g) => [real(g, [2, 3, 4]), real(g, [5, 4]), real(g, [5])] },
    { f: (xs) => F.linear(at(xs, 0), at(xs, 1)), inputs: (g) => [real(g, [3, 4]), real(g, [2, 4])] },
    // x read by two layers and a weight and bias by two calls: each later gradient is added to the one before.
    {
      f: (xs) =>
        Effect.gen(function* () {
          const twice = yield* F.linear(yield* F.linear(at(xs, 0), at(xs, 1), at(xs, 2)), at(xs, 1), at(xs, 2))
          return yield* F.add(twice, yield* F.linear(at(xs, 0), at(xs, 3)))
        }),
      inputs: (g) => [real(g, [2, 3, 4]), real(g, [4, 4]), real(g, [4]), real(g, [4, 4])]
    },
    // One call reads x as both input and weight: the backward pass adds its two gradients itself.
    { f: (xs) => Effect.flatMap(F.linear(at(xs, 0), at(xs, 0)), (y) => F.add(y, at(xs, 0))), inputs: (g) => [real(g, [4, 4])] }
  ],
  linearGelu: [
    { f: (xs) => F.linearGelu(at(xs, 0), at(xs, 1), at(xs, 2)), inputs: (g) => [real(g, [2, 3, 4]), real(g, [5, 4]), real(g, [5])] },
    { f: (xs) => F.linearGelu(at(xs, 0), at(xs, 1)), inputs: (g) => [real(g, [3, 4], 2), real(g, [2, 4])] },
    // Its weight shared with a plain linear, whose gradient is the base.
    { f: (xs) => Effect.flatMap(F.linear(at(xs, 0), at(xs, 1)), (y) => F.linearGelu(y, at(xs, 1))), inputs: (g) => [real(g, [3, 4], 2), real(g, [4, 4])] }
  ],
  view: [{ f: (xs) => Effect.flatMap(F.view(at(xs, 0), [6, 2]), (v) => F.mul(v, v)), inputs: (g) => [real(g, [3, 4])] }],
  cast: [{ f: (xs) => Effect.flatMap(F.cast(at(xs, 0), "f32"), (c) => F.mul(c, c)), inputs: (g) => [real(g, [3, 4])] }],
  patchify: [{ f: (xs) => F.patchify(at(xs, 0), 2), inputs: (g) => [real(g, [1, 2, 4, 4])] }],
  unpatchify: [{ f: (xs) => F.unpatchify(at(xs, 0), { channels: 2, height: 4, width: 2, patch: 2 }), inputs: (g) => [real(g, [1, 2, 8])] }],
  concat: [{ f: (xs) => F.concat([at(xs, 0), at(xs, 1), at(xs, 0)], 1), inputs: (g) => [real(g, [2, 1, 3]), real(g, [2, 2, 3])] }],
  narrow: [{ f: (xs) => F.narrow(at(xs, 0), 1, 1, 2), inputs: (g) => [real(g, [2, 4, 2])] }],
  split: [
    // Every part used, one nonlinearly.
    {
      f: (xs) => Effect.flatMap(F.split(at(xs, 0), 1, 3), ([a, b, c]) => Effect.flatMap(F.mul(a as Tensor, c as Tensor), (ac) => F.add(ac, b as Tensor))),
      inputs: (g) => [real(g, [2, 6, 2])]
    },
    // The first part unused (its gradient is zeros), the last used twice.
    { f: (xs) => Effect.flatMap(F.split(at(xs, 0), 0, 3), ([, b, c]) => Effect.flatMap(F.mul(c as Tensor, c as Tensor), (cc) => F.sub(cc, b as Tensor))), inputs: (g) => [real(g, [3, 4])] },
    // A middle part unused.
    { f: (xs) => Effect.flatMap(F.split(at(xs, 0), 2, 4), ([a, , , d]) => F.mul(a as Tensor, d as Tensor)), inputs: (g) => [real(g, [2, 2, 8])] }
  ],
  pad: [{ f: (xs) => F.pad(at(xs, 0), 0, 1, 2), inputs: (g) => [real(g, [2, 3])] }],
  embedding: [{ f: (xs) => F.embedding(at(xs, 0), at(xs, 1)), inputs: (g) => [real(g, [5, 3]), ids(g, [2, 4], 5)] }],
  sum: [{ f: (xs) => F.sum(at(xs, 0)), inputs: (g) => [real(g, [3, 4])] }],
  mean: [{ f: (xs) => F.mean(at(xs, 0)), inputs: (g) => [real(g, [3, 4])] }],
  sumAxis: [
    { f: (xs) => F.sumAxis(at(xs, 0), 1), inputs: (g) => [real(g, [2, 3, 4])] },
    { f: (xs) => F.sumAxis(at(xs, 0), 0), inputs: (g) => [real(g, [3, 2])] }
  ],
  mse: [{ f: (xs) => F.mse(at(xs, 0), at(xs, 1)), inputs: (g) => [real(g, [3, 4]), real(g, [3, 4])] }],
  mseRows: [{ f: (xs) => F.mseRows(at(xs, 0), at(xs, 1), 1), inputs: (g) => [real(g, [3, 2, 2]), real(g, [3, 2, 2])] }]
}

describe("every backward rule agrees with finite differences in float64", () => {
  const backends = makeBackends()
  afterAll(() => backends.dispose())

  it("has a gradcheck for every differentiable op", () => {
    expect(Object.keys(cases).sort()).toEqual(Object.keys(backwardRules).sort())
  })

  for (const [op, opCases] of Object.entries(cases)) {
    opCases.forEach((c, i) => {
      it(`${op} #${i}`, async () => {
        const result = await runOn(backends.reference64, gradcheck(c.f, c.inputs(new Gen(17 + i))))
        expect(result.checked).toBeGreaterThan(0)
        expect(result.maxRelError, `${op} #${i}: max abs ${result.maxAbsError}`).toBeLessThan(1e-6)
      })
    })
  }
})
