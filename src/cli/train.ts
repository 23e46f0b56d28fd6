/** `selfe train`: train Self-E (or the flow-matching baseline) on ShapeEval from a JSON config. */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { forBackend } from "../kernels/layers.ts"
import type { TrainConfig } from "../pipeline/config.ts"
import { train } from "../pipeline/train.ts"
import { progressObserver } from "./progress.ts"
import { loadTrainConfig } from "./trainConfigFile.ts"

/** Trains with a progress display on the configured backend; prints where the results went. */
export const runTraining = (config: TrainConfig, resume: string | undefined) =>
  Effect.gen(function* () {
    const result = yield* train(config, { resume }).pipe(
      Effect.provide(progressObserver(config.cadence.logEvery)),
      Effect.provide(forBackend(config.backend))
    )
    yield* Console.log(`run folder: ${result.runDir}\nfinal checkpoint: ${result.checkpoint}`)
    return result
  })

export const trainCommand = Command.make(
  "train",
  {
    config: Options.file("config").pipe(Options.optional, Options.withDescription("JSON config (see configs/); defaults fill every missing field")),
    set: Options.text("set").pipe(Options.repeated, Options.withDescription("override a field by path, e.g. --set optimizer.lr=1e-3 (repeatable)")),
    resume: Options.text("resume").pipe(Options.optional, Options.withDescription("continue from a checkpoint file, or 'latest' in the run's folder"))
  },
  ({ config, set, resume }) =>
    Effect.flatMap(loadTrainConfig(Option.getOrUndefined(config), set), (trainConfig) =>
      runTraining(trainConfig, Option.getOrUndefined(resume))
    )
).pipe(Command.withDescription("train a model on ShapeEval (metrics.jsonl, sample grids and checkpoints in <outDir>/<name>)"))
