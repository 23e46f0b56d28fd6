/**
 * The any-step comparison: Self-E against the flow-matching baseline trained with the same data, model
 * and steps, each sampled on the ShapeEval evaluation prompts at 1, 2, 4, 8 and 50 steps and scored
 * GenEval-style. Trains both first unless checkpoints are given.
 *   npx tsx pipelines/any-step-table.ts [--selfe CKPT --flow-matching CKPT] [--set path=value ...]
 *     [--steps 1,2,4,8,50] [--prompts N] [--images-per-prompt 4] [--out DIR] [--extra LABEL=CKPT ...]
 * --extra adds more Self-E checkpoints to the comparison (ablations), sampled with Self-E landing.
 * Writes DIR/any-step.md, any-step.json, overall-vs-steps.png and a sample grid per model and step count.
 */
import { parseArgs } from "node:util"
import { FileSystem, Path } from "@effect/platform"
import { Console, Effect, Schema } from "effect"
import { evaluationPrompts } from "../src/data/eval-sets.ts"
import { heldOut } from "../src/data/held-out.ts"
import { fromConfig } from "../src/kernels/layers.ts"
import { runProgram } from "../src/cli/runProgram.ts"
import { runTraining } from "../src/cli/train.ts"
import { loadTrainConfig } from "../src/cli/trainConfigFile.ts"
import { anyStepTable, formatAnyStepTable } from "../src/pipeline/anyStep.ts"
import { spreadPrompts } from "../src/pipeline/samplePrompts.ts"
import { loadTrainedModel } from "../src/pipeline/trainedModel.ts"
import { SamplerConfig } from "../src/selfe/config.ts"

const { values } = parseArgs({
  options: {
    selfe: { type: "string" },
    "flow-matching": { type: "string" },
    set: { type: "string", multiple: true, default: [] },
    extra: { type: "string", multiple: true, default: [] },
    steps: { type: "string", default: "1,2,4,8,50" },
    prompts: { type: "string", default: "all" },
    "images-per-prompt": { type: "string", default: "4" },
    guidance: { type: "string", default: "ep-cfg" },
    omega: { type: "string", default: "5" },
    out: { type: "string", default: "runs/any-step" }
  }
})

/** The checkpoint given, or the final one of a fresh training run from `configFile`. */
const checkpointFor = (given: string | undefined, configFile: string) =>
  given !== undefined
    ? Effect.succeed(given)
    : Effect.flatMap(loadTrainConfig(configFile, values.set ?? []), (config) =>
        Effect.map(runTraining(config, undefined), (result) => result.checkpoint)
      )

runProgram(
  "any-step-table",
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const outDir = values.out as string
    yield* fs.makeDirectory(outDir, { recursive: true })
    const selfeCheckpoint = yield* checkpointFor(values.selfe, "configs/selfe-tiny.json")
    const flowCheckpoint = yield* checkpointFor(values["flow-matching"], "configs/flow-matching-tiny.json")
    const stepCounts = (values.steps as string).split(",").map(Number)
    const imagesPerPrompt = Number(values["images-per-prompt"])
    const sampler = yield* Schema.decodeUnknown(SamplerConfig)({ guidance: values.guidance, omega: Number(values.omega) })
    const rows = yield* Effect.scoped(
      Effect.gen(function* () {
        const selfe = yield* loadTrainedModel(selfeCheckpoint)
        const flow = yield* loadTrainedModel(flowCheckpoint)
        const extras = yield* Effect.forEach(values.extra ?? [], (entry) => {
          const [label, file] = entry.split("=") as [string, string | undefined]
          return file === undefined
            ? Effect.fail({ message: `--extra ${entry}: expected LABEL=CHECKPOINT` })
            : Effect.map(loadTrainedModel(file), (loaded) => ({ label, model: loaded.model, params: loaded.params, landing: "self-e" as const }))
        })
        const data = selfe.config.data
        const records = values.prompts === "all" ? evaluationPrompts(heldOut(data.heldOutPairs)) : spreadPrompts(data, Number(values.prompts))
        yield* Console.log(`${records.length} prompts x ${imagesPerPrompt} images, steps ${stepCounts.join(", ")}, ${sampler.guidance} omega ${sampler.omega}`)
        return yield* anyStepTable(
          [
            { label: "self-e", model: selfe.model, params: selfe.params, landing: "self-e" },
            ...extras,
            { label: "flow-matching", model: flow.model, params: flow.params, landing: "flow-matching" }
          ],
          records,
          stepCounts,
          imagesPerPrompt,
          sampler,
          data.batchSize,
          outDir,
          (row) => Console.log(`${row.label} ${row.steps} steps: overall ${row.summary.overall.toFixed(4)} (${row.seconds.toFixed(0)} s)`)
        )
      })
    ).pipe(Effect.provide(fromConfig))
    const table = formatAnyStepTable(rows)
    yield* fs.writeFileString(path.join(outDir, "any-step.md"), `checkpoints: self-e ${selfeCheckpoint}, flow-matching ${flowCheckpoint}\n\n${table}\n`)
    yield* fs.writeFileString(path.join(outDir, "any-step.json"), JSON.stringify({ selfeCheckpoint, flowCheckpoint, imagesPerPrompt, sampler, rows }, null, 2) + "\n")
    yield* Console.log(`\n${table}\n\nwritten to ${outDir}`)
  })
)
