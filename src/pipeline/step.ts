import { Effect } from "effect"
import * as F from "../autograd/functional.ts"
import { withTape } from "../autograd/tape.ts"
import type { Batch } from "../data/stream.ts"
import type { KernelError } from "../kernels/errors.ts"
import { Kernels } from "../kernels/Kernels.ts"
import { copyPlanKey, withWeightCopies } from "../model/weightCopies.ts"
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

/** A step whose work is enqueued: its number, and the wait for its metrics (the host reads, already queued). */
export interface PendingStep {
  /** 1-based number of the step */
  readonly step: number
  readonly metrics: Effect.Effect<StepMetrics, KernelError>
}

/**
 * Enqueues one training step: prepare -> landing -> critique -> loss -> update, in one Scope so every
 * activation and gradient is released when it returns, and queues the reads of its metrics behind it. The
 * state's tensors are updated in place. It does not wait for the device: a loop can enqueue the next step
 * before it waits for this one's metrics, so the device is not idle while the host prepares the next step.
 */
export const enqueueTrainStep = (ctx: RunContext, state: TrainState, batch: Batch) =>
  Effect.scoped(
    Effect.gen(function* () {
      const k = yield* Kernels
      const stepNumber = state.step + 1
      const tau = tauAt(state.step, ctx.config.steps, ctx.config.objective.tauRampFraction)
      const fakeOn = fakeScoreActive(ctx.config.objective, state.step, ctx.config.steps)
      const prepared = yield* prepareBatch(ctx.model.spec, ctx.config.objective, ctx.config.seed, batch, tau)
      // The four forward passes share their bf16 weight copies, made in one call from the second step on (the
      // plan keyed by the state's parameters); the region ends before the update changes the weights.
      const [losses, tape] = yield* withTape(
        withWeightCopies(
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
          }),
          copyPlanKey(ctx.model, state.params)
        )
      )
      const updated = yield* update(ctx, state, losses.total, tape, stepNumber)
      // The reads are queued now, behind the step; the tensors may be released (the Scope closes) before they land.
      const startRead = (t: Tensor | undefined) =>
        t === undefined ? Effect.succeed(Effect.succeed([] as Array<number>)) : Effect.map(k.startRead(t), (wait) => Effect.map(wait, (d) => Array.from(d)))
      const waits = yield* Effect.forEach(
        [losses.total, losses.rowLoss, updated.gradNorm, losses.judged.shift, losses.judged.flowEnergy, losses.judged.fakeLoss],
        startRead
      )
      const t = Array.from(prepared.times.t)
      const s = Array.from(prepared.times.s)
      const critiqueRows = prepared.critique?.count ?? 0
      const metrics = Effect.map(Effect.all(waits, { concurrency: "unbounded" }), ([[loss], rowLoss, [gradNorm], shift, energy, fake]) => {
        const fakeLoss: number | undefined = fake[0]
        return {
          step: stepNumber,
          loss: loss as number,
          rowLoss,
          t,
          s,
          critiqueRows,
          selfEvaluationShare: shift.length === 0 ? 0 : mean(shift) / Math.max(1e-12, mean(energy)),
          fakeLoss,
          gradNorm: gradNorm as number,
          learningRate: updated.learningRate,
          tau
        } satisfies StepMetrics
      })
      return { step: stepNumber, metrics } satisfies PendingStep
    })
  ).pipe(Effect.withSpan("enqueueTrainStep"))

/** One training step, waited for: enqueueTrainStep, then its metrics. */
export const trainStep = (ctx: RunContext, state: TrainState, batch: Batch) =>
  Effect.flatMap(enqueueTrainStep(ctx, state, batch), (pending) => pending.metrics).pipe(Effect.withSpan("trainStep"))
