/**
 * PNG files through sharp: encode 8-bit RGB, decode anything sharp reads to 8-bit RGB (alpha dropped,
 * grey expanded). Failures become typed errors naming the file.
 */
import { FileSystem } from "@effect/platform"
import { Effect, Schema } from "effect"
import sharp from "sharp"
import { FileWriteError } from "./file-errors.ts"
import type { RgbImage } from "./rgb-image.ts"

export class PngReadError extends Schema.TaggedError<PngReadError>()("PngReadError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot read image ${this.path}: ${this.reason}`
  }
}

const describe = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

export const encodePng = (image: RgbImage, path = "<memory>"): Effect.Effect<Uint8Array, FileWriteError> =>
  Effect.tryPromise({
    try: () =>
      sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
        .png()
        .toBuffer()
        .then((buffer) => new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)),
    catch: (cause) => new FileWriteError({ path, reason: describe(cause) })
  })

export const decodePng = (bytes: Uint8Array, path = "<memory>"): Effect.Effect<RgbImage, PngReadError> =>
  Effect.tryPromise({
    try: async () => {
      const { data, info } = await sharp(bytes)
        .toColourspace("srgb")
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true })
      if (info.channels !== 3) throw new Error(`expected 3 colour channels, got ${info.channels}`)
      return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) }
    },
    catch: (cause) => new PngReadError({ path, reason: describe(cause) })
  })

export const readPng = (path: string): Effect.Effect<RgbImage, PngReadError, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    fs.readFile(path).pipe(
      Effect.mapError((cause) => new PngReadError({ path, reason: cause.message })),
      Effect.flatMap((bytes) => decodePng(bytes, path))
    )
  )

export const writePng = (path: string, image: RgbImage): Effect.Effect<void, FileWriteError, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    encodePng(image, path).pipe(
      Effect.flatMap((bytes) => fs.writeFile(path, bytes)),
      Effect.mapError((cause) =>
        cause instanceof FileWriteError ? cause : new FileWriteError({ path, reason: cause.message })
      )
    )
  )
