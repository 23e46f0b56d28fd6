/** `selfe eval`: score a folder of PNGs against its prompts (GenEval-style) and print the per-tag table. */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Option, Schema } from "effect"
import { formatSummary } from "../eval/aggregate.ts"
import { EvaluationReport, evaluateFolder } from "../eval/folder.ts"
import { writeTextFile } from "../io/text-file.ts"

export const evalCommand = Command.make(
  "eval",
  {
    images: Options.directory("images").pipe(
      Options.withDescription("folder: prompts.jsonl + 00000/0000.png, 00000/0001.png, 00001/...")
    ),
    prompts: Options.file("prompts").pipe(
      Options.optional,
      Options.withDescription("prompt JSONL (default: IMAGES/prompts.jsonl)")
    ),
    json: Options.file("json").pipe(
      Options.optional,
      Options.withDescription("write the summary and per-image verdicts here")
    ),
    size: Options.integer("size").pipe(
      Options.optional,
      Options.withDescription("required image side (default: the first image's)")
    )
  },
  ({ images, prompts, json, size }) =>
    Effect.gen(function* () {
      const report = yield* evaluateFolder(images, {
        promptsPath: Option.getOrUndefined(prompts),
        size: Option.getOrUndefined(size)
      })
      yield* Console.log(formatSummary(report))
      if (Option.isSome(json)) {
        yield* writeTextFile(json.value, JSON.stringify(Schema.encodeSync(EvaluationReport)(report), null, 2) + "\n")
      }
    })
).pipe(Command.withDescription("score generated images against their prompts, GenEval-style, from pixels alone"))
