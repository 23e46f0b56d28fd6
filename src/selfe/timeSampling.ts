import type { ObjectiveConfig } from "./config.ts"
import { hostNormals, hostUniforms, streamFor } from "./random.ts"

/** The resolution shift of the paper: t' = e^mu / (e^mu + 1/t - 1) (identity at mu = 0). */
export const shiftTime = (t: number, mu: number): number => {
  if (mu === 0 || t <= 0 || t >= 1) return t
  const e = Math.exp(mu)
  return e / (e + 1 / t - 1)
}

/** tau at `step` of `totalSteps`: 0 -> 1 linearly over the first `rampFraction` of training, then 1. */
export const tauAt = (step: number, totalSteps: number, rampFraction: number): number =>
  rampFraction <= 0 ? 1 : Math.min(1, step / Math.max(1, rampFraction * totalSteps))

/** Times of one batch: the current time t and the landing time s <= t per row, and which rows lost their prompt. */
export interface BatchTimes {
  readonly t: Float64Array
  readonly s: Float64Array
  /** Rows whose prompt became the null prompt phi (they use s = t). */
  readonly dropped: ReadonlyArray<boolean>
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z))

/**
 * t = shift(sigmoid(z)), z ~ N(mean, std), clipped; s = t with probability p (and always for dropped rows),
 * else s ~ U((1 - tau) t, t). Drawn from the run's Philox streams for `step`, so resumes repeat them.
 */
export const sampleBatchTimes = (
  config: ObjectiveConfig,
  seed: number,
  step: number,
  batch: number,
  tau: number
): BatchTimes => {
  const z = hostNormals(batch, streamFor(seed, step, "times"))
  const landing = hostUniforms(2 * batch, streamFor(seed, step, "landing"))
  const drop = hostUniforms(batch, streamFor(seed, step, "dropout"))
  const lo = config.timeClip
  const hi = 1 - config.timeClip
  const t = new Float64Array(batch)
  const s = new Float64Array(batch)
  const dropped: Array<boolean> = []
  for (let i = 0; i < batch; i++) {
    const ti = Math.min(hi, Math.max(lo, shiftTime(sigmoid(config.timeLogitMean + config.timeLogitStd * (z[i] as number)), config.timeShift)))
    const isDropped = (drop[i] as number) < config.promptDropout
    const jumps = config.kind === "self-e" && !isDropped && (landing[2 * i] as number) >= config.landingEqualProbability
    t[i] = ti
    s[i] = jumps ? ti - tau * ti * (landing[2 * i + 1] as number) : ti
    dropped.push(isDropped)
  }
  return { t, s, dropped }
}

/** lambda_{s,t} = t/(1-t) - s/(1-s) (Eq. 17): the self-evaluation weight, 0 when s = t. */
export const selfEvaluationWeight = (t: number, s: number): number => t / (1 - t) - s / (1 - s)
