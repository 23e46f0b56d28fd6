import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { defaultShapeEvalConfig } from "../../src/data/config.ts"
import {
  evaluationPrompts,
  GENEVAL_PROMPT_COUNTS,
  groundTruthScene,
  HELD_OUT_PROMPT_COUNTS,
  heldOutPrompts
} from "../../src/data/eval-sets.ts"
import { heldOut } from "../../src/data/held-out.ts"
import { namedPairs, PromptRecord } from "../../src/data/prompts.ts"
import { TAGS } from "../../src/data/world.ts"
import { formatJsonl } from "../../src/io/jsonl.ts"

const held = heldOut(defaultShapeEvalConfig.heldOutPairs)
const countByTag = (records: ReadonlyArray<PromptRecord>) =>
  Object.fromEntries(
    TAGS.map((tag) => [tag, records.filter((record) => record.tag === tag).length] as const).filter(([, count]) => count > 0)
  )

describe("evaluation prompt set", () => {
  const records = evaluationPrompts(held)

  it("has GenEval's prompt count per tag, in GenEval's tag order", () => {
    expect(countByTag(records)).toEqual(GENEVAL_PROMPT_COUNTS)
    expect(records).toHaveLength(553)
    expect(records.map((record) => record.tag)).toEqual(TAGS.flatMap((tag) => new Array(GENEVAL_PROMPT_COUNTS[tag]).fill(tag)))
  })

  it("is deterministic and covers every distinct prompt of the small tags", () => {
    expect(evaluationPrompts(held)).toEqual(records)
    const distinct = (tag: string) => new Set(records.filter((record) => record.tag === tag).map((record) => record.prompt)).size
    expect(distinct("single_object")).toBe(5)
    expect(distinct("two_object")).toBe(20)
    expect(distinct("counting")).toBe(15)
    expect(distinct("colors")).toBe(30 - held.pairs.length)
    expect(distinct("position")).toBe(80)
    expect(distinct("color_attr")).toBe(100)
  })

  it("never names a held-out pair", () => {
    for (const record of records) expect(namedPairs(record).some((pair) => held.has(pair.color, pair.shape))).toBe(false)
  })
})

describe("held-out prompt set", () => {
  const records = heldOutPrompts(held)

  it("asks colors and color_attr prompts, each naming a held-out pair, with every held-out pair present", () => {
    expect(countByTag(records)).toEqual(HELD_OUT_PROMPT_COUNTS)
    for (const record of records) expect(namedPairs(record).some((pair) => held.has(pair.color, pair.shape))).toBe(true)
    const named = new Set(records.flatMap((record) => namedPairs(record).map((pair) => `${pair.color} ${pair.shape}`)))
    for (const pair of held.pairs) expect(named.has(`${pair.color} ${pair.shape}`)).toBe(true)
  })

  it("renders ground truth that shows the held-out pairs it names", () => {
    records.forEach((record, index) => {
      const scene = groundTruthScene(record, 32, held, 0, index, 0)
      for (const pair of namedPairs(record)) {
        expect(scene.objects.some((object) => object.color === pair.color && object.shape === pair.shape)).toBe(true)
      }
    })
  })
})

describe("committed prompt files", () => {
  const committed = (file: string) =>
    Effect.runPromise(
      Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(new URL(`../../data/${file}`, import.meta.url).pathname)).pipe(
        Effect.provide(NodeContext.layer)
      )
    )

  it("equal what the generators produce (regenerate with `selfe shapes prompts --set ... --out data/...`)", async () => {
    expect(await committed("shapeeval-eval.jsonl")).toBe(formatJsonl(PromptRecord, evaluationPrompts(held)))
    expect(await committed("shapeeval-heldout.jsonl")).toBe(formatJsonl(PromptRecord, heldOutPrompts(held)))
  })
})
