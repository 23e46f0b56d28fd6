/**
 * Train Self-E on ShapeEval (configs/selfe-tiny.json, a 2-core-CPU size).
 *   npx tsx pipelines/train-selfe.ts [--set path=value ...] [--resume latest]
 * The composition lives in src/pipeline/train.ts: data stream -> landing -> critique -> update ->
 * periodic samples and checkpoints.
 */
import { Effect } from "effect"
import { runProgram } from "../src/cli/runProgram.ts"
import { runTraining } from "../src/cli/train.ts"
import { loadTrainConfig } from "../src/cli/trainConfigFile.ts"
import { trainingArgs } from "./args.ts"

const { overrides, resume } = trainingArgs()

runProgram(
  "train-selfe",
  Effect.flatMap(loadTrainConfig("configs/selfe-tiny.json", overrides), (config) => runTraining(config, resume))
)
