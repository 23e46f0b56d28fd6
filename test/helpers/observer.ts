import { Effect, Layer } from "effect"
import { TrainingObserver } from "../../src/pipeline/observer.ts"
import type { StepMetrics } from "../../src/pipeline/step.ts"

/** A TrainingObserver that keeps every step's loss and every event's message, for tests of whole runs. */
export const recordingObserver = () => {
  const losses: Array<number> = []
  const messages: Array<string> = []
  const layer = Layer.succeed(TrainingObserver, {
    onStep: (m: StepMetrics) => Effect.sync(() => void losses.push(m.loss)),
    onEvent: (event) => Effect.sync(() => void messages.push(event.message))
  })
  return { losses, messages, layer }
}
