import { describe, expect, it } from "vitest"
import { LONGEST_PROMPT_WORDS } from "../../src/data/config.ts"
import { evaluationPrompts, heldOutPrompts } from "../../src/data/eval-sets.ts"
import { heldOut } from "../../src/data/held-out.ts"
import { samplePrompt } from "../../src/data/prompt-sampler.ts"
import { Rng } from "../../src/data/rng.ts"
import { makeTokenizer, shapeEvalVocabulary } from "../../src/data/tokenizer.ts"
import { TAGS } from "../../src/data/world.ts"

const tokenizer = makeTokenizer(shapeEvalVocabulary, 16)

const everyPrompt = (): Array<string> => {
  const held = heldOut([{ color: "red", shape: "circle" }])
  const sampled = TAGS.flatMap((tag) =>
    Array.from({ length: 200 }, (_, k) => samplePrompt(tag, Rng.at(2, k), { maxObjects: 4, held: heldOut([]) }))
  )
  return [...sampled, ...evaluationPrompts(held), ...heldOutPrompts(held)].map((record) => record.prompt)
}

describe("ShapeEval vocabulary", () => {
  it("reserves pad = 0 and an unk id, and lists every word", () => {
    expect(shapeEvalVocabulary.tokens[shapeEvalVocabulary.pad]).toBe("<pad>")
    expect(shapeEvalVocabulary.tokens[shapeEvalVocabulary.unk]).toBe("<unk>")
    expect(new Set(shapeEvalVocabulary.tokens).size).toBe(shapeEvalVocabulary.tokens.length)
  })

  it("covers every word any template produces, within the longest-prompt bound", () => {
    for (const prompt of everyPrompt()) {
      expect(tokenizer.ids(prompt)).not.toContain(shapeEvalVocabulary.unk)
      expect(tokenizer.words(prompt).length).toBeLessThanOrEqual(LONGEST_PROMPT_WORDS)
    }
  })
})

describe("tokenizer", () => {
  it("encodes words to ids with a 1/0 padding mask", () => {
    const { tokens, mask } = tokenizer.encode(["a photo of an oval left of a square"])
    const id = (word: string) => shapeEvalVocabulary.tokens.indexOf(word)
    expect(Array.from(tokens.slice(0, 9))).toEqual(["a", "photo", "of", "an", "oval", "left", "of", "a", "square"].map(id))
    expect(Array.from(tokens.slice(9))).toEqual(new Array(7).fill(0))
    expect(Array.from(mask)).toEqual([...new Array(9).fill(1), ...new Array(7).fill(0)])
  })

  it("encodes the empty prompt as all padding with an all-zero mask", () => {
    const { tokens, mask } = tokenizer.encode(["", "   "])
    expect(tokens.every((id) => id === 0)).toBe(true)
    expect(mask.every((bit) => bit === 0)).toBe(true)
  })

  it("maps unknown words to unk, ignores case and extra spaces, truncates past maxLength", () => {
    expect(tokenizer.ids("A  Photo of a HEXAGON")).toEqual([
      ...["a", "photo", "of", "a"].map((w) => shapeEvalVocabulary.tokens.indexOf(w)),
      shapeEvalVocabulary.unk
    ])
    const short = makeTokenizer(shapeEvalVocabulary, 3)
    const { mask } = short.encode(["a photo of a circle"])
    expect(Array.from(mask)).toEqual([1, 1, 1])
  })

  it("writes rows of a batch in place, clearing what was there", () => {
    const batch = tokenizer.encode(["a photo of two circles", "a photo of a red circle and a blue square"])
    tokenizer.encode(["a photo of a square"], batch, 1)
    expect(Array.from(batch.mask.slice(16))).toEqual([...new Array(5).fill(1), ...new Array(11).fill(0)])
    expect(batch.tokens[16 + 5]).toBe(0)
  })
})
