import { Context, Effect, Layer } from "effect"
import type { StepMetrics } from "./step.ts"

/** Something a run wants a person (or a test) to know: a written sample grid, a checkpoint, an eval. */
export interface RunEvent {
  readonly kind: "start" | "samples" | "checkpoint" | "resumed" | "done"
  readonly step: number
  readonly message: string
  readonly path?: string | undefined
}

/** Where a training run reports: the CLI draws a progress bar; tests collect what happened. */
export interface TrainingObserverService {
  readonly onStep: (metrics: StepMetrics, totalSteps: number) => Effect.Effect<void>
  readonly onEvent: (event: RunEvent) => Effect.Effect<void>
}

export class TrainingObserver extends Context.Tag("selfe/TrainingObserver")<TrainingObserver, TrainingObserverService>() {}

/** An observer that ignores everything (library use, benchmarks). */
export const silentObserver = Layer.succeed(TrainingObserver, { onStep: () => Effect.void, onEvent: () => Effect.void })
