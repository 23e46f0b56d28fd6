/**
 * Sample a trained checkpoint in any number of steps and write a captioned grid.
 *   npx tsx pipelines/sample.ts --checkpoint runs/selfe-tiny/checkpoints/step-00002000.safetensors \
 *     --prompt "a photo of a red circle" --steps 2 --out samples.png [--images 4] [--guidance ep-cfg] [--omega 5]
 */
import { parseArgs } from "node:util"
import { Console, Effect } from "effect"
import { runProgram } from "../src/cli/runProgram.ts"
import { sampleToPng } from "../src/cli/sample.ts"

const { values } = parseArgs({
  options: {
    checkpoint: { type: "string" },
    prompt: { type: "string", multiple: true, default: [] },
    steps: { type: "string", default: "2" },
    images: { type: "string", default: "4" },
    guidance: { type: "string", default: "ep-cfg" },
    omega: { type: "string", default: "5" },
    out: { type: "string", default: "samples.png" }
  }
})

runProgram(
  "sample",
  Effect.gen(function* () {
    if (values.checkpoint === undefined || (values.prompt ?? []).length === 0)
      return yield* Effect.fail({ message: "give --checkpoint FILE and at least one --prompt" })
    const line = yield* sampleToPng({
      checkpoint: values.checkpoint,
      prompts: values.prompt ?? [],
      imagesPerPrompt: Number(values.images),
      out: values.out ?? "samples.png",
      sampler: { steps: Number(values.steps), guidance: values.guidance, omega: Number(values.omega) }
    })
    yield* Console.log(line)
  })
)
