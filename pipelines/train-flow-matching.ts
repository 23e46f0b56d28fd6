/**
 * Train the flow-matching baseline: the same code as Self-E with s = t on every row and no critique
 * (objective.kind = "flow-matching"), same model, data and steps (configs/flow-matching-tiny.json).
 *   npx tsx pipelines/train-flow-matching.ts [--set path=value ...] [--resume latest]
 */
import { Effect } from "effect"
import { runProgram } from "../src/cli/runProgram.ts"
import { runTraining } from "../src/cli/train.ts"
import { loadTrainConfig } from "../src/cli/trainConfigFile.ts"
import { trainingArgs } from "./args.ts"

const { overrides, resume } = trainingArgs()

runProgram(
  "train-flow-matching",
  Effect.flatMap(loadTrainConfig("configs/flow-matching-tiny.json", [...overrides, "objective.kind=flow-matching"]), (config) =>
    runTraining(config, resume)
  )
)
