import { describe, expect, it } from "vitest"
import { defaultShapeEvalConfig } from "../../src/data/config.ts"
import { boxesOverlap, relationsBetween } from "../../src/data/geometry.ts"
import { heldOut } from "../../src/data/held-out.ts"
import { samplePrompt } from "../../src/data/prompt-sampler.ts"
import { counting, type PromptRecord, singleObject } from "../../src/data/prompts.ts"
import { renderScene } from "../../src/data/render.ts"
import { Rng } from "../../src/data/rng.ts"
import { objectBox, type Scene, sceneForRecord } from "../../src/data/scene.ts"
import { trainingPairs } from "../../src/data/training-pairs.ts"
import { PALETTE, pairKey, TAGS } from "../../src/data/world.ts"
import { rgbFromChw } from "../../src/io/rgb-image.ts"

const nothingHeldOut = heldOut([])

const scenesFor = (size: number, count: number): Array<{ record: PromptRecord; scene: Scene }> =>
  Array.from({ length: count }, (_, k) => {
    const rng = Rng.at(size, k)
    const record = samplePrompt(TAGS[k % TAGS.length], rng, { maxObjects: 4, held: nothingHeldOut })
    return { record, scene: sceneForRecord(record, size, rng, nothingHeldOut) }
  })

describe("scene layout", () => {
  it("places objects inside the image, apart from each other, at every resolution", () => {
    for (const size of [16, 32, 64, 128]) {
      for (const { scene } of scenesFor(size, 600)) {
        const boxes = scene.objects.map(objectBox)
        for (const box of boxes) {
          expect(box.x0).toBeGreaterThanOrEqual(0)
          expect(box.y0).toBeGreaterThanOrEqual(0)
          expect(box.x1).toBeLessThanOrEqual(size)
          expect(box.y1).toBeLessThanOrEqual(size)
        }
        boxes.forEach((a, i) => boxes.slice(i + 1).forEach((b) => expect(boxesOverlap(a, b, 0.07 * size)).toBe(false)))
      }
    }
  })

  it("draws exactly the objects a prompt asks for, with its colours and relations", () => {
    for (const { record, scene } of scenesFor(32, 1200)) {
      const wanted = record.include.reduce((sum, clause) => sum + clause.count, 0)
      expect(scene.objects).toHaveLength(wanted)
      let first = 0
      const groups = record.include.map((clause) => {
        const group = scene.objects.slice(first, first + clause.count)
        first += clause.count
        return group
      })
      record.include.forEach((clause, index) => {
        for (const object of groups[index]) {
          expect(object.shape).toBe(clause.class)
          if (clause.color !== undefined) expect(object.color).toBe(clause.color)
          if (clause.position !== undefined) {
            for (const reference of groups[clause.position[1]]) {
              expect(relationsBetween(objectBox(object), objectBox(reference)).has(clause.position[0])).toBe(true)
            }
          }
        }
      })
    }
  })

  it("is a pure function of the seed", () => {
    const record = counting(4, "triangle")
    const render = (seed: number) => renderScene(sceneForRecord(record, 32, new Rng(seed), nothingHeldOut))
    expect(render(1)).toEqual(render(1))
    expect(render(1)).not.toEqual(render(2))
  })

  it("gives open colours only to allowed pairs", () => {
    const held = heldOut([
      { color: "red", shape: "circle" },
      { color: "blue", shape: "circle" }
    ])
    for (let k = 0; k < 500; k++) {
      for (const object of sceneForRecord(singleObject("circle"), 32, Rng.at(k), held).objects) {
        expect(["red", "blue"]).not.toContain(object.color)
      }
    }
  })
})

describe("training stream scenes", () => {
  it("never render a held-out colour-shape pair (50,000 pairs)", () => {
    const config = defaultShapeEvalConfig
    const forbidden = new Set(config.heldOutPairs.map((pair) => pairKey(pair.color, pair.shape)))
    const pairs = trainingPairs(config)
    const seen = new Set<string>()
    for (let index = 0; index < 50_000; index++) {
      for (const object of pairs(index).scene.objects) seen.add(pairKey(object.color, object.shape))
    }
    for (const key of forbidden) expect(seen.has(key)).toBe(false)
    // Everything else does appear, so the held-out pairs are the only gap.
    expect(seen.size).toBe(30 - forbidden.size)
  })
})

describe("renderer", () => {
  const scene: Scene = {
    size: 32,
    background: { base: [0.85, 0.85, 0.85], rampX: 0, rampY: 0 },
    objects: [{ shape: "square", color: "red", cx: 10.3, cy: 12.6, width: 8, height: 8 }]
  }

  it("writes CHW floats in [-1, 1] at the given offset", () => {
    const out = new Float32Array(2 * 3 * 32 * 32).fill(7)
    renderScene(scene, out, 3 * 32 * 32)
    expect(out.slice(0, 3 * 32 * 32).every((v) => v === 7)).toBe(true)
    const image = out.slice(3 * 32 * 32)
    expect(Math.min(...image)).toBeGreaterThanOrEqual(-1)
    expect(Math.max(...image)).toBeLessThanOrEqual(1)
    // Inside the square, channel planes hold the palette's red.
    const at = (channel: number, x: number, y: number) => (image[channel * 1024 + y * 32 + x] + 1) / 2
    expect(at(0, 10, 12)).toBeCloseTo(PALETTE.red[0], 5)
    expect(at(1, 10, 12)).toBeCloseTo(PALETTE.red[1], 5)
    expect(at(2, 10, 12)).toBeCloseTo(PALETTE.red[2], 5)
    expect(at(1, 25, 25)).toBeCloseTo(0.85, 5)
  })

  it("anti-aliases edges: a pixel half covered is half blended", () => {
    const image = renderScene(scene)
    const green = (x: number, y: number) => (image[1024 + y * 32 + x] + 1) / 2
    // The left edge is at x = 6.3: pixel 6 (spanning 6..7) is 70% covered.
    const expected = 0.85 + 0.7 * (PALETTE.red[1] - 0.85)
    expect(green(6, 12)).toBeCloseTo(expected, 5)
  })

  it("converts to 8-bit RGB rows for PNGs", () => {
    const rgb = rgbFromChw(renderScene(scene), 32, 32)
    expect(rgb.data).toHaveLength(32 * 32 * 3)
    const pixel = rgb.data.slice((12 * 32 + 10) * 3, (12 * 32 + 10) * 3 + 3)
    PALETTE.red.forEach((value, channel) => expect(Math.abs(pixel[channel] - value * 255)).toBeLessThanOrEqual(0.5 + 1e-3))
  })
})
