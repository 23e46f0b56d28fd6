import { Effect } from "effect"
import * as F from "../autograd/functional.ts"
import type { ParamSet } from "../nn/params.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import { geluMlp, layerNorm, linear, selfAttention } from "./blocks.ts"
import type { ModelSpec } from "./config.ts"
import type { TextInputs } from "./inputs.ts"
import { type Precision, branchDtype } from "./precision.ts"

export interface EncodedText {
  /** Text tokens projected to the joint stream's width: [B, Lt, dim]. */
  readonly tokens: Tensor
  /** Masked mean of the text features, projected to dim: [B, dim] (joins the adaLN conditioning). */
  readonly pooled: Tensor
}

/**
 * A small pre-LN transformer over the prompt's tokens, trained from scratch with the DiT. Padding keys
 * are masked; a null-prompt row holds the learned null token alone. In mixed precision the residual stream
 * stays f32 and the branches run in bf16 without casts: LayerNorm writes a branch's bf16 input, and the
 * residual add takes its bf16 output.
 */
export const encodeText = (params: ParamSet, spec: ModelSpec, text: TextInputs, precision: Precision) =>
  Effect.gen(function* () {
    const dtype = branchDtype(precision)
    let h = yield* F.add(yield* F.embedding(params.get("text.embed"), text.ids), params.get("text.pos"))
    for (let i = 0; i < spec.textDepth; i++) {
      const name = `text.blocks.${i}`
      const attended = yield* selfAttention(params, `${name}.attn`, yield* layerNorm(params, `${name}.ln1`, h, dtype), spec.textHeads, text.mask)
      h = yield* F.add(h, attended)
      h = yield* F.add(h, yield* geluMlp(params, `${name}.mlp`, yield* layerNorm(params, `${name}.ln2`, h, dtype)))
    }
    const out = yield* layerNorm(params, "text.lnOut", h)
    const mean = yield* F.sumAxis(yield* F.mulRows(out, text.poolWeights), 1)
    return {
      tokens: yield* linear(params, "text.tokens", out),
      pooled: yield* linear(params, "text.pooled", mean)
    } satisfies EncodedText
  })
