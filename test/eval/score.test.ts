import { describe, expect, it } from "vitest"
import { type Box, relationsBetween } from "../../src/data/geometry.ts"
import { colorAttr, colors, counting, position, singleObject, twoObject } from "../../src/data/prompts.ts"
import type { Color, Shape } from "../../src/data/world.ts"
import type { DetectedObject } from "../../src/eval/detect.ts"
import { scoreImage } from "../../src/eval/score.ts"

const box = (cx: number, cy: number, size = 8): Box => ({ x0: cx - size / 2, y0: cy - size / 2, x1: cx + size / 2, y1: cy + size / 2 })
const object = (shape: Shape, color: Color, cx = 16, cy = 16, fit = 0.1): DetectedObject => ({
  shape,
  color,
  box: box(cx, cy),
  area: 50,
  fit
})

describe("GenEval relative position", () => {
  it("discounts 0.1 x the summed sizes, then needs more than half the offset's length along the axis", () => {
    expect(relationsBetween(box(5, 16), box(20, 16))).toEqual(new Set(["left of"]))
    expect(relationsBetween(box(20, 16), box(5, 16))).toEqual(new Set(["right of"]))
    expect(relationsBetween(box(16, 4), box(16, 20))).toEqual(new Set(["above"]))
    expect(relationsBetween(box(16, 28), box(16, 12))).toEqual(new Set(["below"]))
    // Diagonal: both relations hold.
    expect(relationsBetween(box(4, 4), box(24, 24))).toEqual(new Set(["left of", "above"]))
    // Offsets smaller than the discount: no relation at all.
    expect(relationsBetween(box(16, 16), box(17, 16.5))).toEqual(new Set())
    // Mostly vertical with a little horizontal offset: only the vertical relation.
    expect(relationsBetween(box(14, 4), box(16, 24))).toEqual(new Set(["above"]))
  })
})

describe("GenEval clause rule", () => {
  it("single object: at least one of the class, others allowed", () => {
    expect(scoreImage(singleObject("circle"), [object("circle", "red")]).correct).toBe(true)
    expect(scoreImage(singleObject("circle"), [object("square", "red"), object("circle", "blue")]).correct).toBe(true)
    expect(scoreImage(singleObject("circle"), [object("square", "red")])).toEqual({
      correct: false,
      reasons: ["expected circle>=1, found 0"]
    })
  })

  it("two objects: both classes", () => {
    expect(scoreImage(twoObject("circle", "oval"), [object("oval", "red"), object("circle", "red")]).correct).toBe(true)
    expect(scoreImage(twoObject("circle", "oval"), [object("circle", "red"), object("circle", "red")]).correct).toBe(false)
  })

  it("counting: at least n and fewer than n + 1", () => {
    const three = [1, 2, 3].map(() => object("triangle", "green"))
    expect(scoreImage(counting(3, "triangle"), three).correct).toBe(true)
    expect(scoreImage(counting(3, "triangle"), three.slice(1)).correct).toBe(false)
    expect(scoreImage(counting(3, "triangle"), [...three, object("triangle", "red")]).reasons).toEqual(["expected triangle<4, found 4"])
    expect(scoreImage(counting(2, "triangle"), [...three.slice(1), object("circle", "red")]).correct).toBe(true)
  })

  it("colours: the most confident object of the class must have the colour", () => {
    expect(scoreImage(colors("red", "square"), [object("square", "red")]).correct).toBe(true)
    expect(scoreImage(colors("red", "square"), [object("square", "blue")]).correct).toBe(false)
    const confidentBlue = [object("square", "blue", 8, 8, 0.1), object("square", "red", 24, 24, 0.5)]
    expect(scoreImage(colors("red", "square"), confidentBlue).correct).toBe(false)
  })

  it("position: every matched subject against every matched reference", () => {
    const record = position("circle", "left of", "square")
    expect(scoreImage(record, [object("circle", "red", 5, 16), object("square", "blue", 25, 16)]).correct).toBe(true)
    expect(scoreImage(record, [object("circle", "red", 25, 16), object("square", "blue", 5, 16)]).correct).toBe(false)
    expect(scoreImage(record, [object("circle", "red", 5, 16)]).reasons).toEqual([
      "expected square>=1, found 0",
      "no target for circle to be left of"
    ])
  })

  it("colour attribution: each class with its own colour", () => {
    const record = colorAttr("red", "circle", "blue", "square")
    expect(scoreImage(record, [object("circle", "red"), object("square", "blue")]).correct).toBe(true)
    expect(scoreImage(record, [object("circle", "blue"), object("square", "red")]).correct).toBe(false)
  })
})
