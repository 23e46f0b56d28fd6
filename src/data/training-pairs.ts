/**
 * The training distribution: pair number n of the infinite stream is a pure function of
 * (seed, n), so any position can be regenerated without replaying the ones before it.
 */
import type { ShapeEvalConfig } from "./config.ts"
import { type HeldOut, heldOut } from "./held-out.ts"
import { samplePrompt } from "./prompt-sampler.ts"
import type { PromptRecord } from "./prompts.ts"
import { Rng } from "./rng.ts"
import { type Scene, sceneForRecord } from "./scene.ts"

export interface TrainingPair {
  readonly record: PromptRecord
  readonly scene: Scene
}

export type TrainingPairSource = (index: number) => TrainingPair

/** Pairs mix the configured tags uniformly and never show a held-out colour-shape pair. */
export const trainingPairs = (config: ShapeEvalConfig): TrainingPairSource => {
  const held: HeldOut = heldOut(config.heldOutPairs)
  const options = { maxObjects: config.maxObjects, held }
  return (index) => {
    const rng = Rng.at(config.seed, index)
    const record = samplePrompt(rng.pick(config.tags), rng, options)
    return { record, scene: sceneForRecord(record, config.resolution, rng, held) }
  }
}
