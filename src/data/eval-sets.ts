/**
 * The fixed evaluation prompt sets. The main set has GenEval's prompt count per tag; since our world
 * has far fewer distinct prompts than GenEval's 80 classes, each tag cycles through all of its
 * distinct prompts (in a fixed shuffled order) and repeats them until the count is reached. The
 * held-out set asks only for colour-shape pairs that training never shows.
 */
import type { HeldOut } from "./held-out.ts"
import { colorAttr, colors, counting, namedPairs, position, type PromptRecord, singleObject, twoObject } from "./prompts.ts"
import { Rng } from "./rng.ts"
import { type Scene, sceneForRecord } from "./scene.ts"
import { COLORS, type ColorShapePair, MAX_COUNT, RELATIONS, SHAPES, type Tag, TAGS } from "./world.ts"

/** GenEval's prompts per tag (553 in all); each prompt gets `IMAGES_PER_PROMPT` images. */
export const GENEVAL_PROMPT_COUNTS: Readonly<Record<Tag, number>> = {
  single_object: 80,
  two_object: 99,
  counting: 80,
  colors: 94,
  position: 100,
  color_attr: 100
}
export const IMAGES_PER_PROMPT = 4

/** Held-out set sizes: only the two tags that bind a colour to a shape can name a held-out pair. */
export const HELD_OUT_PROMPT_COUNTS: Readonly<Partial<Record<Tag, number>>> = { colors: 40, color_attr: 60 }

/** Fixed so that the sets never change with any training seed. */
const EVAL_SET_SEED = 20_251_226

const orderedShapePairs = SHAPES.flatMap((first) =>
  SHAPES.filter((second) => second !== first).map((second) => [first, second] as const)
)
const allPairs: ReadonlyArray<ColorShapePair> = SHAPES.flatMap((shape) => COLORS.map((color) => ({ color, shape })))

/** Every distinct prompt of a tag, in a canonical order. */
const distinctPrompts = (tag: Tag): ReadonlyArray<PromptRecord> => {
  switch (tag) {
    case "single_object":
      return SHAPES.map(singleObject)
    case "two_object":
      return orderedShapePairs.map(([first, second]) => twoObject(first, second))
    case "counting":
      return SHAPES.flatMap((shape) => Array.from({ length: MAX_COUNT - 1 }, (_, k) => counting(k + 2, shape)))
    case "colors":
      return allPairs.map((pair) => colors(pair.color, pair.shape))
    case "position":
      return orderedShapePairs.flatMap(([subject, reference]) =>
        RELATIONS.map((relation) => position(subject, relation, reference))
      )
    case "color_attr":
      return allPairs.flatMap((first) =>
        allPairs
          .filter((second) => second.shape !== first.shape && second.color !== first.color)
          .map((second) => colorAttr(first.color, first.shape, second.color, second.shape))
      )
  }
}

const namesHeldOutPair = (record: PromptRecord, held: HeldOut) =>
  namedPairs(record).some((pair) => held.has(pair.color, pair.shape))

/** `count` prompts cycling through `candidates` in shuffled rounds (each round a fresh order). */
const fill = (candidates: ReadonlyArray<PromptRecord>, count: number, rng: Rng): Array<PromptRecord> => {
  const out: Array<PromptRecord> = []
  while (out.length < count) out.push(...rng.shuffle(candidates).slice(0, count - out.length))
  return out
}

/** The main evaluation set: GenEval's counts per tag, never naming a held-out pair. */
export const evaluationPrompts = (held: HeldOut): Array<PromptRecord> =>
  TAGS.flatMap((tag, t) => {
    const candidates = distinctPrompts(tag).filter((record) => !namesHeldOutPair(record, held))
    return fill(candidates, GENEVAL_PROMPT_COUNTS[tag], Rng.at(EVAL_SET_SEED, t))
  })

/** The held-out set: colors and color_attr prompts naming at least one held-out pair. */
export const heldOutPrompts = (held: HeldOut): Array<PromptRecord> =>
  TAGS.flatMap((tag, t) => {
    const count = HELD_OUT_PROMPT_COUNTS[tag]
    if (count === undefined || held.pairs.length === 0) return []
    const candidates = distinctPrompts(tag).filter((record) => namesHeldOutPair(record, held))
    return fill(candidates, count, Rng.at(EVAL_SET_SEED, 100 + t))
  })

/** Ground-truth scene for image `sample` of prompt `promptIndex`: deterministic, and satisfies the prompt. */
export const groundTruthScene = (
  record: PromptRecord,
  size: number,
  held: HeldOut,
  seed: number,
  promptIndex: number,
  sample: number
): Scene => sceneForRecord(record, size, Rng.at(seed, promptIndex, sample), held)
