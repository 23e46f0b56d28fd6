/**
 * Random prompt records for training: one of GenEval's six templates filled with random shapes,
 * colours, counts and relations, never naming a held-out colour-shape pair.
 */
import type { HeldOut } from "./held-out.ts"
import { colorAttr, colors, counting, position, type PromptRecord, singleObject, twoObject } from "./prompts.ts"
import type { Rng } from "./rng.ts"
import { RELATIONS, SHAPES, type Tag } from "./world.ts"

export interface PromptSamplerOptions {
  /** Largest count a counting prompt asks for (2 to 4). */
  readonly maxObjects: number
  readonly held: HeldOut
}

export const samplePrompt = (tag: Tag, rng: Rng, options: PromptSamplerOptions): PromptRecord => {
  switch (tag) {
    case "single_object":
      return singleObject(rng.pick(SHAPES))
    case "two_object": {
      const [first, second] = rng.shuffle(SHAPES)
      return twoObject(first!, second!)
    }
    case "counting":
      return counting(2 + rng.int(options.maxObjects - 1), rng.pick(SHAPES))
    case "colors": {
      const pair = rng.pick(options.held.allowedPairs)
      return colors(pair.color, pair.shape)
    }
    case "position": {
      const [subject, reference] = rng.shuffle(SHAPES)
      return position(subject!, rng.pick(RELATIONS), reference!)
    }
    case "color_attr": {
      const first = rng.pick(options.held.allowedPairs)
      // Distinct shapes and colours, so that attribute binding is what is being tested.
      const second = rng.pick(
        options.held.allowedPairs.filter((pair) => pair.shape !== first.shape && pair.color !== first.color)
      )
      return colorAttr(first.color, first.shape, second.color, second.shape)
    }
  }
}
