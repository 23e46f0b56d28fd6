import { describe, expect, it } from "vitest"
import { CHARACTER_ADVANCE, drawText, GLYPH_HEIGHT, LINE_ADVANCE, wrapText } from "../../src/io/bitmap-font.ts"
import { captionGrid } from "../../src/io/caption-grid.ts"
import type { RgbImage } from "../../src/io/rgb-image.ts"

const blank = (width: number, height: number): RgbImage => ({ width, height, data: new Uint8Array(width * height * 3).fill(255) })
const inked = (image: RgbImage) => {
  let count = 0
  for (let i = 0; i < image.data.length; i += 3) if (image.data[i] === 0) count++
  return count
}

describe("bitmap font", () => {
  it("draws a glyph for every character a prompt or tag uses, distinct per character", () => {
    const characters = "abcdefghijklmnopqrstuvwxyz0123456789.,:-_/()=%?"
    const shapes = new Set<string>()
    for (const character of characters) {
      const canvas = blank(CHARACTER_ADVANCE, GLYPH_HEIGHT)
      drawText(canvas, 0, 0, character, [0, 0, 0])
      expect(inked(canvas), character).toBeGreaterThan(0)
      shapes.add(canvas.data.join(","))
    }
    expect(shapes.size).toBe(characters.length)
  })

  it("draws unknown characters as '?', upper case as lower case, and clips at the edges", () => {
    const draw = (text: string) => {
      const canvas = blank(12, GLYPH_HEIGHT)
      drawText(canvas, 0, 0, text, [0, 0, 0])
      return canvas.data.join(",")
    }
    expect(draw("é")).toBe(draw("?"))
    expect(draw("AB")).toBe(draw("ab"))
    expect(() => drawText(blank(4, 4), -3, 2, "wide text", [0, 0, 0], 2)).not.toThrow()
  })

  it("wraps words to the line length", () => {
    expect(wrapText("a photo of a red circle and a blue square", 16)).toEqual(["a photo of a red", "circle and a", "blue square"])
    expect(wrapText("extraordinarily", 5)).toEqual(["extra"])
  })
})

describe("caption grid", () => {
  it("lays images out upscaled with their captions beneath", () => {
    const image: RgbImage = { width: 4, height: 4, data: new Uint8Array(48).fill(100) }
    const grid = captionGrid(
      Array.from({ length: 5 }, (_, k) => ({ image, caption: `cell ${k}` })),
      { scale: 10 }
    )
    // 3 columns x 2 rows of 40-pixel cells plus 6-pixel padding; one caption line each.
    expect(grid.width).toBe(6 + 3 * (40 + 6))
    expect(grid.height).toBe(6 + 2 * (40 + 3 + LINE_ADVANCE + 6))
    const pixel = (x: number, y: number) => grid.data[(y * grid.width + x) * 3]
    expect(pixel(6, 6)).toBe(100)
    expect(pixel(45, 45)).toBe(100)
    expect(pixel(46, 46)).toBe(255)
    const captionBand = { ...grid, data: grid.data.slice(49 * grid.width * 3, (49 + GLYPH_HEIGHT) * grid.width * 3), height: GLYPH_HEIGHT }
    expect(inked({ ...captionBand, data: captionBand.data.map((v) => (v < 100 ? 0 : 255)) })).toBeGreaterThan(20)
  })
})
