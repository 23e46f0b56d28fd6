/**
 * The `selfe` command line. Each subcommand lives in its own file; add one by importing it and
 * listing it in `withSubcommands`.
 */
import { Command, ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { evalCommand } from "./eval.ts"
import { profileCommand } from "./profile.ts"
import { shapesCommand } from "./shapes.ts"
import { sampleCommand } from "./sample.ts"
import { trainCommand } from "./train.ts"

const selfe = Command.make("selfe").pipe(
  Command.withDescription("Self-E text-to-image training, sampling and evaluation"),
  Command.withSubcommands([shapesCommand, evalCommand, trainCommand, sampleCommand, profileCommand])
)

const cli = Command.run(selfe, { name: "selfe", version: "0.1.0" })

/** @effect/cli spells one-letter options "-n" only; accept "--n" as well. */
const argv = process.argv.map((arg) => (/^--[A-Za-z]$/.test(arg) ? arg.slice(1) : arg))

cli(argv).pipe(
  // Expected failures print one line and exit 1; the CLI has already explained usage errors.
  Effect.catchAll((error) =>
    Effect.zipRight(
      ValidationError.isValidationError(error) ? Effect.void : Console.error(`selfe: ${error.message}`),
      Effect.sync(() => {
        process.exitCode = 1
      })
    )
  ),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain
)
