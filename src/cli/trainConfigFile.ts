import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import { FileReadError } from "../io/file-errors.ts"
import { ConfigError, type TrainConfig, applyOverride, decodeTrainConfig } from "../pipeline/config.ts"

/** A training config from an optional JSON file plus `path=value` overrides, decoded (bad fields named). */
export const loadTrainConfig = (
  file: string | undefined,
  overrides: ReadonlyArray<string>
): Effect.Effect<TrainConfig, ConfigError | FileReadError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    let raw: unknown = {}
    if (file !== undefined) {
      const text = yield* fs.readFileString(file).pipe(Effect.mapError((cause) => new FileReadError({ path: file, reason: cause.message })))
      raw = yield* Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: (cause) => new ConfigError({ reason: `${file} is not JSON: ${cause instanceof Error ? cause.message : String(cause)}` })
      })
    }
    for (const assignment of overrides) raw = yield* applyOverride(raw, assignment)
    return yield* decodeTrainConfig(raw)
  })
