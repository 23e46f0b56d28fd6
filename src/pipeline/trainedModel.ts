import { Effect } from "effect"
import { Kernels } from "../kernels/Kernels.ts"
import { makeModel } from "../model/model.ts"
import { readCheckpointFile, uploadGroup, CheckpointError } from "./checkpoint.ts"
import { type PrecisionChoice, decodeTrainConfig } from "./config.ts"
import { resolvePrecision } from "./precision.ts"
import { modelSpecFor } from "./train.ts"

export interface LoadOptions {
  /** Which weights: the EMA (default) or the online ones. */
  readonly weights?: "ema" | "params"
  /** How to compute on these kernels (default auto: bf16-mixed on cuda), whatever the run trained with. */
  readonly precision?: PrecisionChoice
}

/** A model and one set of its weights from a checkpoint, with the config it was trained with. */
export const loadTrainedModel = (file: string, options: LoadOptions = {}) =>
  Effect.gen(function* () {
    const checkpoint = yield* readCheckpointFile(file)
    const config = yield* decodeTrainConfig(checkpoint.contents.config).pipe(
      Effect.mapError((error) => new CheckpointError({ path: file, reason: `stored config: ${error.reason}` }))
    )
    const precision = yield* resolvePrecision(options.precision ?? "auto", yield* Kernels)
    const model = yield* makeModel(modelSpecFor(config), precision)
    const params = yield* uploadGroup(checkpoint, model.paramSpecs, options.weights ?? "ema")
    return { model, params, config, step: checkpoint.contents.step }
  })
