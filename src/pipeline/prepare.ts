import { Effect, type Scope } from "effect"
import type { Batch } from "../data/stream.ts"
import type { KernelError } from "../kernels/errors.ts"
import { Kernels } from "../kernels/Kernels.ts"
import type { ModelSpec } from "../model/config.ts"
import { type TextInputs, nullPrompts, textInputs } from "../model/inputs.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import type { ObjectiveConfig } from "../selfe/config.ts"
import { type BatchTimes, sampleBatchTimes, selfEvaluationWeight } from "../selfe/timeSampling.ts"

/** The rows the critique evaluates (s < t), first in the batch, on the device. */
export interface CritiqueRows {
  readonly count: number
  /** [n] times of those rows, and 1 - s */
  readonly t: Tensor
  readonly s: Tensor
  readonly oneMinusS: Tensor
  /** [n] lambda_{s,t} */
  readonly lambda: Tensor
  /** [n] zeros: the critique's evaluations are ordinary denoiser calls G(x, s, s, .) */
  readonly noGap: Tensor
  readonly cond: TextInputs
  readonly uncond: TextInputs
  /** [n, 1] ones and zeros: the fake flag on and off */
  readonly fakeOn: Tensor
  readonly fakeOff: Tensor
}

/** One training batch, reordered so rows that jump (s < t) come first, with everything on the device. */
export interface PreparedBatch {
  readonly step: number
  readonly size: number
  /** Host copies in the device's row order, for metrics. */
  readonly times: BatchTimes
  readonly prompts: ReadonlyArray<string>
  /** [B, C, H, W] clean images */
  readonly x0: Tensor
  /** [B] */
  readonly t: Tensor
  readonly oneMinusT: Tensor
  /** [B] t - s */
  readonly gap: Tensor
  readonly cond: TextInputs
  /** [B, 1] zeros (the data branch never carries the fake flag) */
  readonly fakeOff: Tensor
  readonly critique: CritiqueRows | undefined
}

const permute = <T extends Float32Array | Int32Array>(source: T, order: ReadonlyArray<number>, width: number): T => {
  const out = new (source.constructor as new (n: number) => T)(source.length)
  order.forEach((from, to) => out.set(source.subarray(from * width, (from + 1) * width), to * width))
  return out
}

const pick = (values: Float64Array, order: ReadonlyArray<number>) => Float64Array.from(order, (i) => values[i] as number)

/** Host side of a step: times, prompt dropout, row order; then uploads. Runs while the previous step computes. */
export const prepareBatch = (
  spec: ModelSpec,
  objective: ObjectiveConfig,
  seed: number,
  batch: Batch,
  tau: number
): Effect.Effect<PreparedBatch, KernelError, Kernels | Scope.Scope> =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const size = batch.batchSize
    const drawn = sampleBatchTimes(objective, seed, batch.step, size, tau)
    const rows = Array.from({ length: size }, (_, i) => i)
    const order = [...rows.filter((i) => drawn.s[i]! < drawn.t[i]!), ...rows.filter((i) => !(drawn.s[i]! < drawn.t[i]!))]
    const times: BatchTimes = { t: pick(drawn.t, order), s: pick(drawn.s, order), dropped: order.map((i) => drawn.dropped[i] as boolean) }
    const imageSize = batch.images.length / size
    const tokens = permute(batch.tokens, order, batch.maxTokens)
    const mask = permute(batch.mask, order, batch.maxTokens)
    const vector = (values: ArrayLike<number>) => k.fromArray(values, [values.length])
    const critiqueCount = order.filter((i) => drawn.s[i]! < drawn.t[i]!).length
    const critique: CritiqueRows | undefined =
      critiqueCount === 0
        ? undefined
        : yield* Effect.gen(function* () {
            const t = times.t.subarray(0, critiqueCount)
            const s = times.s.subarray(0, critiqueCount)
            const prefix = { tokens: tokens.subarray(0, critiqueCount * batch.maxTokens), mask: mask.subarray(0, critiqueCount * batch.maxTokens), nullRows: [] }
            return {
              count: critiqueCount,
              t: yield* vector(t),
              s: yield* vector(s),
              oneMinusS: yield* vector(s.map((v) => 1 - v)),
              lambda: yield* vector(Array.from(t, (ti, i) => selfEvaluationWeight(ti, s[i] as number))),
              noGap: yield* k.zeros([critiqueCount]),
              cond: yield* textInputs(spec, prefix),
              uncond: yield* textInputs(spec, nullPrompts(spec, critiqueCount)),
              fakeOn: yield* k.full([critiqueCount, 1], 1),
              fakeOff: yield* k.zeros([critiqueCount, 1])
            }
          })
    return {
      step: batch.step,
      size,
      times,
      prompts: order.map((i) => batch.prompts[i] as string),
      x0: yield* k.fromArray(permute(batch.images, order, imageSize), [size, spec.channels, spec.resolution, spec.resolution]),
      t: yield* vector(times.t),
      oneMinusT: yield* vector(times.t.map((v) => 1 - v)),
      gap: yield* vector(times.t.map((v, i) => v - (times.s[i] as number))),
      cond: yield* textInputs(spec, { tokens, mask, nullRows: times.dropped }),
      fakeOff: yield* k.zeros([size, 1]),
      critique
    }
  })
