import { Effect } from "effect"
import * as F from "../autograd/functional.ts"
import { Kernels } from "../kernels/Kernels.ts"
import type { ParamSet } from "../nn/params.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import { adaLayerNorm, chunks, geluMlp, linear, selfAttention } from "./blocks.ts"
import { type ModelSpec, imageTokens } from "./config.ts"
import type { ModelInputs } from "./inputs.ts"
import { type Precision, branchDtype } from "./precision.ts"
import { encodeText } from "./textEncoder.ts"

/** DiT's time scale: times in [0, 1] become [0, 1000] before the sinusoidal embedding. */
const TIME_SCALE = 1000

/** MLP(sin-embed(time)): times are data, so the embedding itself is a constant to autograd. */
const timeEmbedding = (params: ParamSet, name: string, spec: ModelSpec, time: Tensor) =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const features = yield* k.timestepEmbedding(yield* k.affine(time, TIME_SCALE, 0), spec.timeFeatures)
    return yield* linear(params, `${name}.fc2`, yield* F.silu(yield* linear(params, `${name}.fc1`, features)))
  })

/**
 * The two-time conditioning vector e = MLP_t(sin t) + MLP_s(sin(t - s)), plus the pooled prompt and the
 * fake flag: [B, dim], the input of every adaLN modulation.
 */
const conditioning = (params: ParamSet, spec: ModelSpec, inputs: ModelInputs, pooledText: Tensor) =>
  Effect.gen(function* () {
    const current = yield* timeEmbedding(params, "time.t", spec, inputs.t)
    const jump = yield* timeEmbedding(params, "time.s", spec, inputs.gap)
    const fake = yield* F.linear(inputs.fake, params.get("fake.weight"))
    return yield* F.add(yield* F.add(yield* F.add(current, jump), pooledText), fake)
  })

/**
 * One DiT block with adaLN-Zero over the joint [text; image] stream. A branch's input leaves adaLN in the
 * branch's dtype and its output joins the stream in the gated residual, so mixed precision takes no casts of
 * activations here.
 */
const ditBlock = (params: ParamSet, spec: ModelSpec, precision: Precision, index: number, z: Tensor, activeE: Tensor, jointMask: Tensor) =>
  Effect.gen(function* () {
    const dtype = branchDtype(precision)
    const name = `blocks.${index}`
    const mods = yield* linear(params, `${name}.adaLN`, activeE)
    const [shiftAttn, scaleAttn, gateAttn, shiftMlp, scaleMlp, gateMlp] = yield* chunks(mods, 6)
    const attnIn = yield* adaLayerNorm(z, shiftAttn!, scaleAttn!, dtype)
    const attended = yield* selfAttention(params, `${name}.attn`, attnIn, spec.heads, jointMask)
    const afterAttn = yield* F.gatedResidual(z, gateAttn!, attended)
    const mlpIn = yield* adaLayerNorm(afterAttn, shiftMlp!, scaleMlp!, dtype)
    return yield* F.gatedResidual(afterAttn, gateMlp!, yield* geluMlp(params, `${name}.mlp`, mlpIn))
  })

/**
 * V(x, t, s, c): the velocity predicted by the text-conditioned two-time DiT. Text conditions by joint
 * attention over [text tokens; image tokens] in every block (the single-stream MMDiT layout, see
 * docs/model.md); the time pair, the pooled prompt and the fake flag condition through adaLN-Zero.
 * Returns [B, C, H, W] in f32 whatever the precision (see precision.ts). The clean-image prediction is
 * G = x - t V.
 */
export const velocity = (params: ParamSet, spec: ModelSpec, precision: Precision, positions: Tensor, inputs: ModelInputs) =>
  Effect.gen(function* () {
    const text = yield* encodeText(params, spec, inputs.text, precision)
    const e = yield* conditioning(params, spec, inputs, text.pooled)
    const activeE = yield* F.silu(e)
    const patches = yield* F.patchify(inputs.x, spec.patch)
    const image = yield* F.add(yield* linear(params, "patch", patches), positions)
    let z = yield* F.concat([text.tokens, image], 1)
    for (let i = 0; i < spec.depth; i++) z = yield* ditBlock(params, spec, precision, i, z, activeE, inputs.text.jointMask)
    const imageOut = yield* F.narrow(z, 1, spec.maxTokens, imageTokens(spec))
    const finalMods = yield* linear(params, "final.adaLN", activeE)
    const [finalShift, finalScale] = yield* chunks(finalMods, 2)
    const modulated = yield* adaLayerNorm(imageOut, finalShift!, finalScale!)
    const out = yield* linear(params, "final.linear", modulated)
    return yield* F.unpatchify(out, { channels: spec.channels, height: spec.resolution, width: spec.resolution, patch: spec.patch })
  })
