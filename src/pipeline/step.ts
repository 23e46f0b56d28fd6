import { Effect } from "effect"
import * as F from "../autograd/functional.ts"
import { withTape } from "../autograd/tape.ts"
import type { Batch } from "../data/stream.ts"
import { Kernels } from "../kernels/Kernels.ts"
import { tauAt } from "../selfe/timeSampling.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import type { RunContext } from "./context.ts"
import { critique } from "./critique.ts"
import { landing } from "./landing.ts"
import { prepareBatch } from "./prepare.ts"
import { fakeScoreActive } from "./schedules.ts"
import type { TrainState } from "./state.ts"
import { update } from "./update.ts"

/** What one step reports (host numbers, read once the step has run). */
export interface StepMetrics {
  /** 1-based number of the step just taken */
  readonly step: number
  readonly loss: number
  /** Per row, in the batch's (reordered) row order: loss, t and s. */
  readonly rowLoss: ReadonlyArray<number>
  readonly t: ReadonlyArray<number>
  readonly s: ReadonlyArray<number>
  /** Rows the critique evaluated (s < t). */
  readonly critiqueRows: number
  /** Mean over critique rows of how far the critique moved the target, relative to the flow target's size. */
  readonly selfEvaluationShare: number
  readonly fakeLoss: number | undefined
  readonly gradNorm: number
  readonly learningRate: number
  readonly tau: number
}

const mean = (values: ArrayLike<number>) => (values.length === 0 ? 0 : Array.from(values).reduce((a, b) => a + b, 0) / values.length)

/**
 * One training step: prepare -> landing -> critique -> loss -> update, in one Scope so every activation
 * and gradient is released when it returns. The state's tensors are updated in place.
 */
export const trainStep = (ctx: RunContext, state: TrainState, batch: Batch) =>
  Effect.scoped(
    Effect.gen(function* () {
      const k = yield* Kernels
      const stepNumber = state.step + 1
      const tau = tauAt(state.step, ctx.config.steps, ctx.config.objective.tauRampFraction)
      const fakeOn = fakeScoreActive(ctx.config.objective, state.step, ctx.config.steps)
      const prepared = yield* prepareBatch(ctx.model.spec, ctx.config.objective, ctx.config.seed, batch, tau)
      const [losses, tape] = yield* withTape(
        Effect.gen(function* () {
          const landed = yield* landing(ctx, state, prepared)
          const judged = yield* critique(ctx, state, prepared, landed, fakeOn)
          const rowLoss = yield* F.mseRows(landed.velocity, judged.target, 1)
          const dataLoss = yield* F.mean(rowLoss)
          const total =
            judged.fakeLoss === undefined
              ? dataLoss
              : yield* F.add(dataLoss, yield* F.scale(judged.fakeLoss, ctx.config.objective.fakeScore.lossWeight))
          return { total, rowLoss, judged }
        })
      )
      const updated = yield* update(ctx, state, losses.total, tape, stepNumber)
      // One wait for the step: every read is queued behind it at once, not one round trip after another.
      const readAll = (t: Tensor | undefined) => (t === undefined ? Effect.succeed([] as Array<number>) : Effect.map(k.read(t), (d) => Array.from(d)))
      const [[loss], rowLoss, [gradNorm], shift, energy, fake] = yield* Effect.all(
        [losses.total, losses.rowLoss, updated.gradNorm, losses.judged.shift, losses.judged.flowEnergy, losses.judged.fakeLoss].map(readAll),
        { concurrency: "unbounded" }
      )
      const fakeLoss: number | undefined = fake[0]
      return {
        step: stepNumber,
        loss: loss as number,
        rowLoss,
        t: Array.from(prepared.times.t),
        s: Array.from(prepared.times.s),
        critiqueRows: prepared.critique?.count ?? 0,
        selfEvaluationShare: shift.length === 0 ? 0 : mean(shift) / Math.max(1e-12, mean(energy)),
        fakeLoss,
        gradNorm: gradNorm as number,
        learningRate: updated.learningRate,
        tau
      } satisfies StepMetrics
    })
  ).pipe(Effect.withSpan("trainStep"))
