import { Effect } from "effect"
import * as F from "../autograd/functional.ts"
import type { ParamSet } from "../nn/params.ts"
import type { Tensor } from "../tensor/Tensor.ts"

/** Shared pieces of the text encoder and the DiT: named linear layers, multi-head attention, MLPs. */

export const linear = (params: ParamSet, name: string, x: Tensor) =>
  F.linear(x, params.get(`${name}.weight`), params.has(`${name}.bias`) ? params.get(`${name}.bias`) : undefined)

export const layerNorm = (params: ParamSet, name: string, x: Tensor) =>
  F.layerNorm(x, { weight: params.get(`${name}.weight`), bias: params.get(`${name}.bias`), eps: 1e-5 })

/** LayerNorm without affine, as adaLN uses (the modulation supplies scale and shift). */
export const plainLayerNorm = (x: Tensor) => F.layerNorm(x, { eps: 1e-6 })

/** Multi-head self-attention over x [B, L, D] with a key padding mask [B, L] (i32). */
export const selfAttention = (params: ParamSet, name: string, x: Tensor, heads: number, keyMask: Tensor) =>
  Effect.gen(function* () {
    const [batch, tokens, dim] = x.shape as [number, number, number]
    const split = [batch, tokens, heads, dim / heads]
    const q = yield* F.view(yield* linear(params, `${name}.q`, x), split)
    const k = yield* F.view(yield* linear(params, `${name}.k`, x), split)
    const v = yield* F.view(yield* linear(params, `${name}.v`, x), split)
    const attended = yield* F.attention(q, k, v, { keyMask })
    return yield* linear(params, `${name}.out`, yield* F.view(attended, [batch, tokens, dim]))
  })

export const geluMlp = (params: ParamSet, name: string, x: Tensor) =>
  Effect.flatMap(Effect.flatMap(linear(params, `${name}.fc1`, x), F.gelu), (h) => linear(params, `${name}.fc2`, h))

/** The i-th of `count` equal chunks of the last axis of [B, count * D]. */
export const chunk = (x: Tensor, i: number, count: number) => {
  const width = (x.shape[1] as number) / count
  return F.narrow(x, 1, i * width, width)
}
