import { Effect } from "effect"
import * as F from "../../src/autograd/functional.ts"
import type { GradcheckInput } from "../../src/autograd/gradcheck.ts"
import type { Tensor } from "../../src/tensor/Tensor.ts"
import type { Gen } from "./gen.ts"

/**
 * A small transformer block in the DiT style (adaLN modulation, masked multi-head attention, gated
 * residual, GELU MLP) ending in an MSE loss: the composite autograd and the leak tests run it.
 */
export const blockDims = { batch: 2, tokens: 3, dim: 4, heads: 2, hidden: 6 }

const { batch, tokens, dim, heads, hidden } = blockDims

/** Inputs in order: x, target, shift, scale, gate, wq, wk, wv, wo, bo, w1, b1, w2, b2, mask. */
export const blockInputs = (g: Gen): ReadonlyArray<GradcheckInput> => {
  const real = (shape: ReadonlyArray<number>, s = 0.7): GradcheckInput => ({ data: g.normals(shape.reduce((a, b) => a * b, 1), s), shape })
  return [
    real([batch, tokens, dim], 1),
    real([batch, tokens, dim], 1),
    real([batch, dim]),
    real([batch, dim]),
    real([batch, dim]),
    real([dim, dim]),
    real([dim, dim]),
    real([dim, dim]),
    real([dim, dim]),
    real([dim]),
    real([hidden, dim]),
    real([hidden]),
    real([dim, hidden]),
    real([dim]),
    { data: [1, 1, 0, 1, 0, 1], shape: [batch, tokens], dtype: "i32" }
  ]
}

export const blockLoss = (xs: ReadonlyArray<Tensor>) =>
  Effect.gen(function* () {
    const [x, target, shift, scale, gate, wq, wk, wv, wo, bo, w1, b1, w2, b2, mask] = xs as [
      Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor
    ]
    const headShape = [batch, tokens, heads, dim / heads]
    const normed = yield* F.modulate(yield* F.layerNorm(x, { eps: 1e-6 }), shift, scale)
    const q = yield* F.view(yield* F.linear(normed, wq), headShape)
    const k = yield* F.view(yield* F.linear(normed, wk), headShape)
    const v = yield* F.view(yield* F.linear(normed, wv), headShape)
    const attended = yield* F.view(yield* F.attention(q, k, v, { keyMask: mask }), [batch, tokens, dim])
    const h = yield* F.gatedResidual(x, gate, yield* F.linear(attended, wo, bo))
    const mlp = yield* F.linear(yield* F.gelu(yield* F.linear(yield* F.layerNorm(h, { eps: 1e-6 }), w1, b1)), w2, b2)
    const out = yield* F.add(h, mlp)
    return yield* F.mse(out, target)
  })
