import { Effect } from "effect"
import * as F from "../autograd/functional.ts"
import { noGrad } from "../autograd/tape.ts"
import { Kernels } from "../kernels/Kernels.ts"
import type { ModelInputs } from "../model/inputs.ts"
import { type Model, cleanImage } from "../model/model.ts"
import type { ParamSet } from "../nn/params.ts"
import { flowMatchingTarget, interpolate } from "../selfe/interpolant.ts"
import { streamFor } from "../selfe/random.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import type { RunContext } from "./context.ts"
import type { Landing } from "./landing.ts"
import type { CritiqueRows, PreparedBatch } from "./prepare.ts"
import type { TrainState } from "./state.ts"

/** The velocity targets of a batch and the fake branch's own loss when it is on. */
export interface Critique {
  /** [B, C, H, W]: (x_t - x_renorm) / t for rows with s < t, eps - x0 (flow matching) for the others */
  readonly target: Tensor
  /** [n] per critique row: mean (target - flow-matching target)^2, how far the critique moved the target */
  readonly shift: Tensor | undefined
  /** [n] per critique row: mean (flow-matching target)^2, the scale to read `shift` against */
  readonly flowEnergy: Tensor | undefined
  /** [] L_fake, recorded for autograd; undefined while the fake term is off */
  readonly fakeLoss: Tensor | undefined
}

/** G(x, s, s, c) with the given weights: an ordinary denoiser call at the landing time. */
const evaluate = (model: Model, params: ParamSet, rows: CritiqueRows, x: Tensor, text: ModelInputs["text"], fake: Tensor) =>
  cleanImage(model, params, { x, t: rows.s, gap: rows.noGap, text, fake })

/**
 * Stage "critique": the self-evaluation of the landing point (Eq. 14-19). The landing point is re-noised
 * to s; the unconditional pass runs on the online weights, the conditional on the EMA weights, both under
 * noGrad; their difference is the classifier-score direction (mixed with the fake score when that term is
 * on), and the fused kernel turns it into the energy-preserving velocity target.
 */
export const critique = (ctx: RunContext, state: TrainState, batch: PreparedBatch, landed: Landing, fakeOn: boolean) =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const flowTarget = yield* flowMatchingTarget(batch.x0, landed.eps)
    const rows = batch.critique
    if (rows === undefined) return { target: flowTarget, shift: undefined, flowEnergy: undefined, fakeLoss: undefined } satisfies Critique
    const n = rows.count
    const head = (x: Tensor) => k.narrow(x, 0, 0, n)
    const x0 = yield* head(batch.x0)
    const x0Hat = yield* head(landed.x0Hat)
    const renoise =
      ctx.config.objective.renoise === "same"
        ? yield* head(landed.eps)
        : yield* k.randomNormal(x0.shape, streamFor(ctx.config.seed, batch.step, "renoise"))
    const xsHat = yield* interpolate(x0Hat, renoise, rows.s, rows.oneMinusS)
    const fake = fakeOn
      ? yield* Effect.gen(function* () {
          // The fake branch learns the model's own samples: |G(sg[xs], s, s, c_fake) - sg[x0_hat]|^2, in velocity form.
          const vFake = yield* ctx.model.velocity(state.params, { x: xsHat, t: rows.s, gap: rows.noGap, text: rows.cond, fake: rows.fakeOn })
          const loss = yield* F.mean(yield* F.mseRows(vFake, yield* k.velocityTarget(xsHat, x0Hat, rows.s), 1))
          const score = yield* k.sub(xsHat, yield* k.mulRows(vFake, rows.s))
          return { loss, score }
        })
      : undefined
    const { gUncond, gCond } = yield* noGrad(
      Effect.all({
        gUncond: evaluate(ctx.model, state.params, rows, xsHat, rows.uncond, rows.fakeOff),
        gCond: evaluate(ctx.model, state.ema, rows, xsHat, rows.cond, rows.fakeOff)
      })
    )
    const selfTarget = yield* k.selfEvaluationTarget({
      x0,
      x0Hat,
      xt: yield* head(landed.xt),
      t: rows.t,
      lambda: rows.lambda,
      gUncond,
      gCond,
      gFake: fake?.score,
      k: fake === undefined ? 1 : ctx.config.objective.fakeScore.k
    })
    const flowHead = yield* head(flowTarget)
    const shift = yield* k.mseRows(selfTarget, flowHead, 1)
    const flowEnergy = yield* k.mseRows(flowHead, yield* k.zeros(flowHead.shape), 1)
    const target = n === batch.size ? selfTarget : yield* k.concat([selfTarget, yield* k.narrow(flowTarget, 0, n, batch.size - n)], 0)
    return { target, shift, flowEnergy, fakeLoss: fake?.loss } satisfies Critique
  }).pipe(Effect.withSpan("critique"))
