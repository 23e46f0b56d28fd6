/** `selfe profile`: where a training step's time goes, for a training config, without writing a run. */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { Kernels } from "../kernels/Kernels.ts"
import { forBackend } from "../kernels/layers.ts"
import { resolvePrecision } from "../pipeline/precision.ts"
import { formatStepProfile, profileSteps } from "../pipeline/stepProfile.ts"
import { checkedModelSpec } from "../pipeline/train.ts"
import { loadTrainConfig } from "./trainConfigFile.ts"

const count = (name: string, fallback: number, least: number, description: string) =>
  Options.integer(name).pipe(
    Options.withDefault(fallback),
    Options.filterMap((value) => (value >= least ? Option.some(value) : Option.none()), `--${name} must be an integer >= ${least}`),
    Options.withDescription(description)
  )

export const profileCommand = Command.make(
  "profile",
  {
    config: Options.file("config").pipe(Options.optional, Options.withDescription("JSON training config (see configs/), as `selfe train` takes it")),
    set: Options.text("set").pipe(Options.repeated, Options.withDescription("override a field by path, e.g. --set model.preset=S (repeatable)")),
    steps: count("steps", 20, 1, "steps timed"),
    warmup: count("warmup", 5, 0, "steps taken before the timed ones (GEMM plans, caches, the data workers' start)"),
    afterStep: Options.integer("after-step").pipe(
      Options.optional,
      Options.filterMap((value) => (Option.isNone(value) || value.value >= 0 ? Option.some(value) : Option.none()), "--after-step must be an integer >= 0"),
      Options.withDescription("the run's step the warm-up starts after, which sets the schedules (fake score, tau) and so what a step computes; default: the run's last steps are the ones timed, where every part of a step is on")
    )
  },
  ({ config, set, steps, warmup, afterStep }) =>
    Effect.gen(function* () {
      const trainConfig = yield* loadTrainConfig(Option.getOrUndefined(config), set)
      // A model `train` would refuse fails here, before any device is opened.
      yield* checkedModelSpec(trainConfig)
      const profile = yield* Effect.gen(function* () {
        const precision = yield* resolvePrecision(trainConfig.precision, yield* Kernels)
        yield* Console.log(`profiling ${trainConfig.name}: ${warmup} warm-up steps, then ${steps} timed steps ...`)
        return yield* profileSteps(trainConfig, precision, steps, warmup, Option.getOrElse(afterStep, () => Math.max(0, trainConfig.steps - warmup - steps)))
      }).pipe(Effect.provide(forBackend(trainConfig.backend)))
      yield* Console.log(formatStepProfile(profile))
    })
).pipe(
  Command.withDescription("time training steps of a config and print where a step's time goes: the JS thread, and the stream thread by op")
)
