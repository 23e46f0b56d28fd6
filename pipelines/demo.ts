/**
 * npm run demo: train Self-E on ShapeEval on this machine's CPU (configs/demo.json, about ten minutes on
 * two cores), then sample the 553 evaluation prompts at 1, 2, 4 and 8 steps, print GenEval's per-tag table
 * and write sample grids and the quality-vs-steps plot to runs/demo/.
 *   npm run demo [-- --set steps=600]
 */
import { Console, Effect } from "effect"
import { evaluationPrompts } from "../src/data/eval-sets.ts"
import { heldOut } from "../src/data/held-out.ts"
import { formatSummary } from "../src/eval/aggregate.ts"
import { forBackend } from "../src/kernels/layers.ts"
import { runProgram } from "../src/cli/runProgram.ts"
import { runTraining } from "../src/cli/train.ts"
import { loadTrainConfig } from "../src/cli/trainConfigFile.ts"
import { anyStepTable, formatAnyStepTable } from "../src/pipeline/anyStep.ts"
import { loadTrainedModel } from "../src/pipeline/trainedModel.ts"
import { trainingArgs } from "./args.ts"

const { overrides } = trainingArgs()

runProgram(
  "demo",
  Effect.gen(function* () {
    const config = yield* loadTrainConfig("configs/demo.json", overrides)
    const trained = yield* runTraining(config, undefined)
    yield* Effect.scoped(
      Effect.gen(function* () {
        const { model, params } = yield* loadTrainedModel(trained.checkpoint)
        const records = evaluationPrompts(heldOut(config.data.heldOutPairs))
        yield* Console.log(`\nsampling ${records.length} evaluation prompts at 1, 2, 4 and 8 steps (EMA weights, energy-preserving CFG)`)
        const rows = yield* anyStepTable(
          [{ label: "self-e", model, params, landing: "self-e" }],
          records,
          [1, 2, 4, 8],
          1,
          config.sampler,
          config.data.batchSize,
          trained.runDir,
          (row) => Console.log(`\n${row.steps} step${row.steps === 1 ? "" : "s"} (${row.seconds.toFixed(0)} s)\n${formatSummary(row.summary)}`)
        )
        yield* Console.log(`\n${formatAnyStepTable(rows)}\n\ngrids and overall-vs-steps.png in ${trained.runDir}`)
        yield* Console.log(
          "An image counts only when every clause of its prompt holds (shape, count, colour, position). After ten CPU\n" +
            "minutes the tiny model draws blobs in roughly the right colours and places that rarely pass; BENCHMARKS.md\n" +
            "has the same comparison for a model trained on a GPU."
        )
      })
    ).pipe(Effect.provide(forBackend(config.backend)))
  })
)
