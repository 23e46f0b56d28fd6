import { describe, expect, it } from "vitest"
import { renderScene } from "../../src/data/render.ts"
import type { Scene } from "../../src/data/scene.ts"
import { COLORS, SHAPES } from "../../src/data/world.ts"
import { detectObjects } from "../../src/eval/detect.ts"
import { rgbFromChw } from "../../src/io/rgb-image.ts"

const background = { base: [0.86, 0.84, 0.85], rampX: 0.04, rampY: -0.03 } as const

describe("object detection", () => {
  it("finds each shape in each colour, with its box, on a sloped background", () => {
    for (const shape of SHAPES) {
      for (const color of COLORS) {
        const width = 9.6
        const height = shape === "oval" ? width * 0.6 : width
        const scene: Scene = { size: 32, background, objects: [{ shape, color, cx: 13.4, cy: 17.7, width, height }] }
        const [found, ...rest] = detectObjects(rgbFromChw(renderScene(scene), 32, 32))
        expect(rest).toEqual([])
        expect(found).toMatchObject({ shape, color })
        expect((found.box.x0 + found.box.x1) / 2).toBeCloseTo(13.4, 0)
        expect((found.box.y0 + found.box.y1) / 2).toBeCloseTo(17.7, 0)
        expect(found.box.x1 - found.box.x0).toBeGreaterThan(width - 1.5)
        expect(found.box.x1 - found.box.x0).toBeLessThan(width + 0.5)
      }
    }
  })

  it("ignores specks too small to be objects", () => {
    const scene: Scene = { size: 32, background, objects: [{ shape: "square", color: "red", cx: 10, cy: 10, width: 3, height: 3 }] }
    expect(detectObjects(rgbFromChw(renderScene(scene), 32, 32))).toEqual([])
  })
})
