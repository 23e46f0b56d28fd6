import { Either, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { colorAttr, colors, counting, namedPairs, position, PromptRecord, singleObject, twoObject } from "../../src/data/prompts.ts"
import { heldOut } from "../../src/data/held-out.ts"
import { samplePrompt } from "../../src/data/prompt-sampler.ts"
import { Rng } from "../../src/data/rng.ts"
import { TAGS } from "../../src/data/world.ts"

describe("GenEval prompt templates", () => {
  it("phrase each tag as GenEval does, with a/an", () => {
    expect(singleObject("circle").prompt).toBe("a photo of a circle")
    expect(singleObject("oval").prompt).toBe("a photo of an oval")
    expect(twoObject("circle", "square").prompt).toBe("a photo of a circle and a square")
    expect(counting(3, "triangle").prompt).toBe("a photo of three triangles")
    expect(counting(2, "oval").prompt).toBe("a photo of two ovals")
    expect(colors("red", "circle").prompt).toBe("a photo of a red circle")
    expect(colors("orange", "square").prompt).toBe("a photo of an orange square")
    expect(position("circle", "left of", "square").prompt).toBe("a photo of a circle left of a square")
    expect(position("oval", "below", "diamond").prompt).toBe("a photo of an oval below a diamond")
    expect(colorAttr("red", "circle", "blue", "square").prompt).toBe("a photo of a red circle and a blue square")
  })

  it("write GenEval's clauses: counting bounded above, position relative to the reference listed first", () => {
    expect(counting(4, "square")).toMatchObject({
      tag: "counting",
      include: [{ class: "square", count: 4 }],
      exclude: [{ class: "square", count: 5 }]
    })
    expect(position("circle", "above", "triangle").include).toEqual([
      { class: "triangle", count: 1 },
      { class: "circle", count: 1, position: ["above", 0] }
    ])
    expect(colorAttr("green", "oval", "purple", "diamond").include).toEqual([
      { class: "oval", count: 1, color: "green" },
      { class: "diamond", count: 1, color: "purple" }
    ])
    expect(namedPairs(colorAttr("green", "oval", "purple", "diamond"))).toEqual([
      { color: "green", shape: "oval" },
      { color: "purple", shape: "diamond" }
    ])
    expect(() => counting(5, "circle")).toThrow(RangeError)
  })

  it("round-trip through the PromptRecord schema, which rejects bad records", () => {
    const record = position("circle", "right of", "oval")
    const decoded = Schema.decodeUnknownSync(PromptRecord)(JSON.parse(JSON.stringify(Schema.encodeSync(PromptRecord)(record))))
    expect(decoded).toEqual(record)
    const forwardReference = { ...record, include: [{ ...record.include[1] }, { ...record.include[0] }] }
    expect(Either.isLeft(Schema.decodeUnknownEither(PromptRecord)(forwardReference))).toBe(true)
    expect(Either.isLeft(Schema.decodeUnknownEither(PromptRecord)({ ...record, tag: "style" }))).toBe(true)
    expect(Either.isLeft(Schema.decodeUnknownEither(PromptRecord)({ ...record, include: [] }))).toBe(true)
  })
})

describe("training prompt sampler", () => {
  const held = heldOut([{ color: "blue", shape: "triangle" }])

  it("produces only its tag's template, distinct shapes where two appear, counts up to maxObjects", () => {
    for (const tag of TAGS) {
      for (let k = 0; k < 300; k++) {
        const record = samplePrompt(tag, Rng.at(1, k), { maxObjects: 3, held })
        expect(record.tag).toBe(tag)
        const classes = record.include.map((clause) => clause.class)
        expect(new Set(classes).size).toBe(classes.length)
        for (const clause of record.include) expect(clause.count).toBeLessThanOrEqual(3)
        if (tag === "color_attr") expect(record.include[0].color).not.toBe(record.include[1].color)
        expect(namedPairs(record).some((pair) => held.has(pair.color, pair.shape))).toBe(false)
      }
    }
  })
})
