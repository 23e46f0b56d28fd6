import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import sharp from "sharp"
import { decodePng, encodePng } from "../../src/io/png.ts"
import type { RgbImage } from "../../src/io/rgb-image.ts"

const gradient: RgbImage = {
  width: 5,
  height: 3,
  data: Uint8Array.from({ length: 45 }, (_, k) => (k * 37) % 256)
}

describe("PNG codec", () => {
  it.effect("round-trips 8-bit RGB exactly", () =>
    Effect.gen(function* () {
      const decoded = yield* decodePng(yield* encodePng(gradient))
      expect(decoded).toEqual(gradient)
    })
  )

  it.effect("drops alpha and expands grey to RGB", () =>
    Effect.gen(function* () {
      const rgba = yield* Effect.promise(() =>
        sharp(Buffer.from([10, 20, 30, 128, 40, 50, 60, 255]), { raw: { width: 2, height: 1, channels: 4 } }).png().toBuffer()
      )
      expect(Array.from((yield* decodePng(rgba)).data)).toEqual([10, 20, 30, 40, 50, 60])
      const grey = yield* Effect.promise(() =>
        sharp(Buffer.from([7, 200]), { raw: { width: 2, height: 1, channels: 1 } }).png().toBuffer()
      )
      expect(Array.from((yield* decodePng(grey)).data)).toEqual([7, 7, 7, 200, 200, 200])
    })
  )

  it.effect("fails on bytes that are not an image, with a typed error", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(decodePng(new TextEncoder().encode("hello"), "x.png"))
      expect(error._tag).toBe("PngReadError")
      expect(error.message).toMatch(/^cannot read image x\.png: /)
    })
  )
})
