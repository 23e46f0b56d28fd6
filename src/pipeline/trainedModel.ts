import { Effect } from "effect"
import { makeModel } from "../model/model.ts"
import { readCheckpointFile, uploadGroup, CheckpointError } from "./checkpoint.ts"
import { decodeTrainConfig } from "./config.ts"
import { modelSpecFor } from "./train.ts"

/** A model and one set of its weights (EMA by default) from a checkpoint, with the config it was trained with. */
export const loadTrainedModel = (file: string, weights: "ema" | "params" = "ema") =>
  Effect.gen(function* () {
    const checkpoint = yield* readCheckpointFile(file)
    const config = yield* decodeTrainConfig(checkpoint.contents.config).pipe(
      Effect.mapError((error) => new CheckpointError({ path: file, reason: `stored config: ${error.reason}` }))
    )
    const model = yield* makeModel(modelSpecFor(config))
    const params = yield* uploadGroup(checkpoint, model.paramSpecs, weights)
    return { model, params, config, step: checkpoint.contents.step }
  })
