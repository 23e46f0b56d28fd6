/**
 * Prompt records in GenEval's metadata format and the six GenEval templates that produce them.
 * A record is both the caption (`prompt`) and the checkable meaning (`include` / `exclude` clauses).
 */
import { Schema } from "effect"
import { Color, type ColorShapePair, COUNT_WORDS, MAX_COUNT, Relation, Shape, SHAPE_PLURALS, Tag } from "./world.ts"

/**
 * One GenEval requirement: at least `count` objects of `class`, optionally of a colour and placed
 * relative to the objects of an earlier clause.
 */
export const Clause = Schema.Struct({
  class: Shape,
  count: Schema.Int.pipe(Schema.between(1, MAX_COUNT)),
  color: Schema.optional(Color),
  position: Schema.optional(
    Schema.Tuple(Relation, Schema.NonNegativeInt).annotations({
      description: "[relation, index of the earlier clause whose objects are the reference]"
    })
  )
})
export type Clause = typeof Clause.Type

/** GenEval's upper bound for counting: fewer than `count` objects of `class` must be found. */
export const ExcludeClause = Schema.Struct({ class: Shape, count: Schema.Int.pipe(Schema.between(1, MAX_COUNT + 1)) })
export type ExcludeClause = typeof ExcludeClause.Type

export const PromptRecord = Schema.Struct({
  tag: Tag,
  prompt: Schema.String,
  include: Schema.Array(Clause).pipe(Schema.minItems(1)),
  exclude: Schema.optional(Schema.Array(ExcludeClause))
}).pipe(
  Schema.filter((record) =>
    record.include.every((clause, index) => clause.position === undefined || clause.position[1] < index)
      ? undefined
      : "a position clause must refer to an earlier clause"
  )
)
export type PromptRecord = typeof PromptRecord.Type

/** "a circle", "an oval", "an orange square". */
const withArticle = (phrase: string): string => (/^[aeiou]/.test(phrase) ? `an ${phrase}` : `a ${phrase}`)

const photoOf = (what: string): string => `a photo of ${what}`

export const singleObject = (shape: Shape): PromptRecord => ({
  tag: "single_object",
  prompt: photoOf(withArticle(shape)),
  include: [{ class: shape, count: 1 }]
})

export const twoObject = (first: Shape, second: Shape): PromptRecord => ({
  tag: "two_object",
  prompt: photoOf(`${withArticle(first)} and ${withArticle(second)}`),
  include: [
    { class: first, count: 1 },
    { class: second, count: 1 }
  ]
})

export const counting = (count: number, shape: Shape): PromptRecord => {
  const word = COUNT_WORDS[count]
  if (word === undefined) throw new RangeError(`counting prompts cover two to four objects, not ${count}`)
  return {
    tag: "counting",
    prompt: photoOf(`${word} ${SHAPE_PLURALS[shape]}`),
    include: [{ class: shape, count }],
    exclude: [{ class: shape, count: count + 1 }]
  }
}

export const colors = (color: Color, shape: Shape): PromptRecord => ({
  tag: "colors",
  prompt: photoOf(withArticle(`${color} ${shape}`)),
  include: [{ class: shape, count: 1, color }]
})

/** "a photo of a {subject} {relation} a {reference}": GenEval lists the reference first. */
export const position = (subject: Shape, relation: Relation, reference: Shape): PromptRecord => ({
  tag: "position",
  prompt: photoOf(`${withArticle(subject)} ${relation} ${withArticle(reference)}`),
  include: [
    { class: reference, count: 1 },
    { class: subject, count: 1, position: [relation, 0] }
  ]
})

export const colorAttr = (firstColor: Color, first: Shape, secondColor: Color, second: Shape): PromptRecord => ({
  tag: "color_attr",
  prompt: photoOf(`${withArticle(`${firstColor} ${first}`)} and ${withArticle(`${secondColor} ${second}`)}`),
  include: [
    { class: first, count: 1, color: firstColor },
    { class: second, count: 1, color: secondColor }
  ]
})

/** The colour-shape pairs a record names explicitly (what held-out splits are about). */
export const namedPairs = (record: PromptRecord): ReadonlyArray<ColorShapePair> =>
  record.include.flatMap((clause) => (clause.color === undefined ? [] : [{ color: clause.color, shape: clause.class }]))
