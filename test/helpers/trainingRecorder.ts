import { Effect, Layer } from "effect"
import { TrainingObserver } from "../../src/pipeline/observer.ts"
import type { StepMetrics } from "../../src/pipeline/step.ts"

/** An observer that keeps every step's loss and event message, and can stop the run right after a given checkpoint. */
export const trainingRecorder = (stopAfterCheckpoint?: number) => {
  const losses: Array<number> = []
  const messages: Array<string> = []
  const layer = Layer.succeed(TrainingObserver, {
    onStep: (m: StepMetrics) => Effect.sync(() => void losses.push(m.loss)),
    onEvent: (event) =>
      Effect.zipRight(
        Effect.sync(() => void messages.push(event.message)),
        event.kind === "checkpoint" && event.step === stopAfterCheckpoint ? Effect.interrupt : Effect.void
      )
  })
  return { losses, messages, layer }
}
