/**
 * The ShapeEval world: which shapes, colours, relations and prompt tags exist. Everything else
 * (prompts, renderer, evaluator, vocabulary) is derived from these lists.
 */
import { Schema } from "effect"

/** A literal union whose decode error lists the choices once, instead of one line per member. */
const oneOf = <const L extends ReadonlyArray<string>>(values: L, description: string) =>
  Schema.Literal(...values).annotations({
    description,
    message: (issue) => ({
      message: `expected one of ${values.join(", ")}, got ${JSON.stringify(issue.actual)}`,
      override: true
    })
  })

export const SHAPES = ["circle", "square", "triangle", "diamond", "oval"] as const
export const Shape = oneOf(SHAPES, "an object class (GenEval's 'class')")
export type Shape = typeof Shape.Type

export const SHAPE_PLURALS: Readonly<Record<Shape, string>> = {
  circle: "circles",
  square: "squares",
  triangle: "triangles",
  diamond: "diamonds",
  oval: "ovals"
}

/** Width / height of each shape's bounding box; the oval is the only elongated one. */
export const SHAPE_ASPECT: Readonly<Record<Shape, number>> = {
  circle: 1,
  square: 1,
  triangle: 1,
  diamond: 1,
  oval: 1 / 0.6
}

export const COLORS = ["red", "orange", "yellow", "green", "blue", "purple"] as const
export const Color = oneOf(COLORS, "a palette colour")
export type Color = typeof Color.Type

export type Rgb = readonly [r: number, g: number, b: number]

/** Object colours in [0, 1] sRGB, chosen to stand apart from each other and from the light background. */
export const PALETTE: Readonly<Record<Color, Rgb>> = {
  red: [0.86, 0.1, 0.1],
  orange: [0.97, 0.5, 0.06],
  yellow: [0.94, 0.86, 0.08],
  green: [0.12, 0.6, 0.2],
  blue: [0.14, 0.3, 0.86],
  purple: [0.55, 0.17, 0.7]
}

export const RELATIONS = ["left of", "right of", "above", "below"] as const
export const Relation = oneOf(RELATIONS, "a GenEval relative position")
export type Relation = typeof Relation.Type

/** GenEval's six tags, in GenEval's order. */
export const TAGS = ["single_object", "two_object", "counting", "colors", "position", "color_attr"] as const
export const Tag = oneOf(TAGS, "a GenEval prompt tag")
export type Tag = typeof Tag.Type

/** Counts the counting tag asks for, with their words (the vocabulary stops at four). */
export const COUNT_WORDS: Readonly<Record<number, string>> = { 2: "two", 3: "three", 4: "four" }
export const MAX_COUNT = 4

/** Object sizes (longest side) as fractions of the image side: small and large. */
export const OBJECT_SIZES = [0.25, 0.32] as const

export const ColorShapePair = Schema.Struct({ color: Color, shape: Shape })
export type ColorShapePair = typeof ColorShapePair.Type

export const pairKey = (color: Color, shape: Shape): string => `${color} ${shape}`
