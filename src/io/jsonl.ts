/**
 * JSON Lines files checked against a Schema: one record per non-empty line; the first bad line
 * fails the read with its file and 1-based line number.
 */
import type { FileSystem } from "@effect/platform"
import { Effect, Schema } from "effect"
import type { FileReadError, FileWriteError } from "./file-errors.ts"
import { describeParseError } from "./parse-issues.ts"
import { readTextFile, writeTextFile } from "./text-file.ts"

export class MalformedJsonlLine extends Schema.TaggedError<MalformedJsonlLine>()("MalformedJsonlLine", {
  path: Schema.String,
  line: Schema.Int,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.path}:${this.line}: ${this.reason}`
  }
}

export const parseJsonl = <A, I>(
  schema: Schema.Schema<A, I>,
  text: string,
  path: string
): Effect.Effect<Array<A>, MalformedJsonlLine> =>
  Effect.forEach(
    text.split("\n").flatMap((content, index) => (content.trim() === "" ? [] : [{ content, line: index + 1 }])),
    ({ content, line }) =>
      Effect.try({
        try: () => JSON.parse(content) as unknown,
        catch: (cause) => {
          const detail = cause instanceof Error ? cause.message : String(cause)
          return new MalformedJsonlLine({ path, line, reason: `not JSON (${detail})` })
        }
      }).pipe(
        Effect.flatMap((json) =>
          Schema.decodeUnknown(schema)(json, { onExcessProperty: "ignore" }).pipe(
            Effect.mapError((error) => new MalformedJsonlLine({ path, line, reason: describeParseError(error) }))
          )
        )
      )
  )

export const readJsonl = <A, I>(
  schema: Schema.Schema<A, I>,
  path: string
): Effect.Effect<Array<A>, FileReadError | MalformedJsonlLine, FileSystem.FileSystem> =>
  Effect.flatMap(readTextFile(path), (text) => parseJsonl(schema, text, path))

export const formatJsonl = <A, I>(schema: Schema.Schema<A, I>, records: ReadonlyArray<A>): string =>
  records.map((record) => JSON.stringify(Schema.encodeSync(schema)(record)) + "\n").join("")

export const writeJsonl = <A, I>(
  schema: Schema.Schema<A, I>,
  path: string,
  records: ReadonlyArray<A>
): Effect.Effect<void, FileWriteError, FileSystem.FileSystem> => writeTextFile(path, formatJsonl(schema, records))
