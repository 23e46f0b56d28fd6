import { Schema } from "effect"
import { TrainConfig } from "../../src/pipeline/config.ts"

/** A model small enough that a training step runs in milliseconds, for tests of pipeline logic. */
export const tinyModel = {
  preset: "tiny",
  dim: 16,
  depth: 1,
  heads: 2,
  mlpRatio: 2,
  patch: 8,
  textDim: 8,
  textDepth: 1,
  textHeads: 2,
  timeFeatures: 8
} as const

export const tinyConfig = (overrides: Record<string, unknown> = {}): TrainConfig =>
  Schema.decodeUnknownSync(TrainConfig)({
    steps: 8,
    data: { resolution: 16, batchSize: 6, prefetch: 0 },
    model: tinyModel,
    optimizer: { warmupSteps: 2, lr: 1e-3 },
    cadence: { logEvery: 2, samplePrompts: 2 },
    ...overrides
  })
