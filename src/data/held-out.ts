/**
 * Held-out colour-shape pairs: never rendered in a training scene, so prompts naming them measure
 * compositional generalisation (the model knows "blue" and "triangle", never saw a blue triangle).
 */
import { type Color, COLORS, type ColorShapePair, pairKey, type Shape, SHAPES } from "./world.ts"

export interface HeldOut {
  readonly pairs: ReadonlyArray<ColorShapePair>
  readonly has: (color: Color, shape: Shape) => boolean
  /** Colours a training scene may give this shape. */
  readonly colorsFor: (shape: Shape) => ReadonlyArray<Color>
  /** Every pair a training scene may show. */
  readonly allowedPairs: ReadonlyArray<ColorShapePair>
}

export const heldOut = (pairs: ReadonlyArray<ColorShapePair>): HeldOut => {
  const keys = new Set(pairs.map((pair) => pairKey(pair.color, pair.shape)))
  const has = (color: Color, shape: Shape) => keys.has(pairKey(color, shape))
  const colorsFor = (shape: Shape) => COLORS.filter((color) => !has(color, shape))
  const allowedPairs = SHAPES.flatMap((shape) => colorsFor(shape).map((color) => ({ color, shape })))
  return { pairs, has, colorsFor, allowedPairs }
}
