/** Whole-file text reads and writes whose failures name the file. */
import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import { FileReadError, FileWriteError } from "./file-errors.ts"

export const readTextFile = (path: string): Effect.Effect<string, FileReadError, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    fs.readFileString(path).pipe(Effect.mapError((cause) => new FileReadError({ path, reason: cause.message })))
  )

export const writeTextFile = (path: string, text: string): Effect.Effect<void, FileWriteError, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    fs.writeFileString(path, text).pipe(Effect.mapError((cause) => new FileWriteError({ path, reason: cause.message })))
  )
