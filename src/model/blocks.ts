import { Effect } from "effect"
import * as F from "../autograd/functional.ts"
import type { ParamSet } from "../nn/params.ts"
import type { DType } from "../tensor/dtype.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import { castWeights } from "./weightCopies.ts"

/** Shared pieces of the text encoder and the DiT: named linear layers, multi-head attention, MLPs. */

/** A named layer's weight and bias in `dtype`: the f32 masters, cast (on the tape, shared by a region's passes) for a bf16 input. */
const layerWeights = (params: ParamSet, name: string, dtype: DType) =>
  castWeights([params.get(`${name}.weight`), params.has(`${name}.bias`) ? params.get(`${name}.bias`) : undefined], dtype)

/** A named linear layer in x's dtype. */
export const linear = (params: ParamSet, name: string, x: Tensor) =>
  Effect.flatMap(layerWeights(params, name, x.dtype), ([weight, bias]) => F.linear(x, weight as Tensor, bias))

/** gelu of a named linear layer, in x's dtype (one kernel: a GEMM epilogue on CUDA). */
const linearGelu = (params: ParamSet, name: string, x: Tensor) =>
  Effect.flatMap(layerWeights(params, name, x.dtype), ([weight, bias]) => F.linearGelu(x, weight as Tensor, bias))

/** A named LayerNorm, y in `dtype` (x's, or bf16 from an f32 x: a bf16 branch's input, no cast). */
export const layerNorm = (params: ParamSet, name: string, x: Tensor, dtype: DType = x.dtype) =>
  F.layerNorm(x, { weight: params.get(`${name}.weight`), bias: params.get(`${name}.bias`), eps: 1e-5, dtype })

/**
 * adaLN: LayerNorm without affine, modulated by the conditioning's shift and scale, written in `dtype` (a bf16
 * branch's input in mixed precision): one fused kernel.
 */
export const adaLayerNorm = (x: Tensor, shift: Tensor, scale: Tensor, dtype: DType = x.dtype) =>
  F.layerNormModulate(x, shift, scale, 1e-6, dtype)

/**
 * Multi-head self-attention over x [B, L, D] with a key padding mask [B, L] (i32), computed in x's dtype (a
 * branch's: its LayerNorm wrote x in it). The projections go to attention as [B, L, D] with `heads`: no
 * reshapes on the tape.
 */
export const selfAttention = (params: ParamSet, name: string, x: Tensor, heads: number, keyMask: Tensor) =>
  Effect.gen(function* () {
    const q = yield* linear(params, `${name}.q`, x)
    const k = yield* linear(params, `${name}.k`, x)
    const v = yield* linear(params, `${name}.v`, x)
    return yield* linear(params, `${name}.out`, yield* F.attention(q, k, v, { keyMask, heads }))
  })

/** Linear, GELU, linear, computed in x's dtype (a branch's: its LayerNorm wrote x in it). */
export const geluMlp = (params: ParamSet, name: string, x: Tensor) =>
  Effect.flatMap(linearGelu(params, `${name}.fc1`, x), (a) => linear(params, `${name}.fc2`, a))

/** The `count` equal chunks of the last axis of [B, count * D]: one split, one node on the tape. */
export const chunks = (x: Tensor, count: number) => F.split(x, 1, count)
