import type { Model } from "../model/model.ts"
import type { TrainConfig } from "./config.ts"

/** What every stage of a run reads: the built model and the run's configuration. */
export interface RunContext {
  readonly model: Model
  readonly config: TrainConfig
}
