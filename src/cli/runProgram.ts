import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"

/**
 * Runs a program (pipelines/*.ts) on Node: platform services provided, an expected failure printed as
 * one line naming what went wrong, exit code 1; Ctrl-C interrupts cleanly (scopes close, devices free).
 */
export const runProgram = <A, E extends { readonly message: string }>(
  name: string,
  program: Effect.Effect<A, E, NodeContext.NodeContext>
): void =>
  program.pipe(
    Effect.catchAll((error) =>
      Effect.zipRight(
        Console.error(`${name}: ${error.message}`),
        Effect.sync(() => {
          process.exitCode = 1
        })
      )
    ),
    Effect.provide(NodeContext.layer),
    NodeRuntime.runMain
  )
