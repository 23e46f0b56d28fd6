import type { ObjectiveConfig } from "../selfe/config.ts"
import type { OptimizerConfig } from "./config.ts"

/** Learning rate at 1-based `step`: linear warm-up to lr, then linear decay to minLr at `totalSteps`. */
export const learningRateAt = (config: OptimizerConfig, step: number, totalSteps: number): number => {
  if (step <= config.warmupSteps) return (config.lr * step) / Math.max(1, config.warmupSteps)
  const span = Math.max(1, totalSteps - config.warmupSteps)
  const progress = Math.min(1, (step - config.warmupSteps) / span)
  return config.lr + (config.minLr - config.lr) * progress
}

/** EMA decay at 1-based `step`, with the optional warm-up min(decay, (1 + step) / (10 + step)). */
export const emaDecayAt = (config: OptimizerConfig, step: number): number =>
  config.emaWarmup ? Math.min(config.emaDecay, (1 + step) / (10 + step)) : config.emaDecay

/** Whether the fake-score term is on at 0-based `step` (off before its switch, on from it). */
export const fakeScoreActive = (config: ObjectiveConfig, step: number, totalSteps: number): boolean =>
  config.kind === "self-e" && config.fakeScore.enabled && step >= Math.ceil(config.fakeScore.startFraction * totalSteps)
