/**
 * Scene layout: which objects, where, on what background, satisfying a prompt record. Layout is
 * separate from rasterising so tests can check placement rules without pixels.
 */
import { type Box, boxesOverlap, relationStrength } from "./geometry.ts"
import type { HeldOut } from "./held-out.ts"
import type { Clause, PromptRecord } from "./prompts.ts"
import type { Rng } from "./rng.ts"
import { type Color, OBJECT_SIZES, type Rgb, type Shape, SHAPE_ASPECT } from "./world.ts"

export interface SceneObject {
  readonly shape: Shape
  readonly color: Color
  /** Centre in pixels (x right, y down). */
  readonly cx: number
  readonly cy: number
  /** Bounding box size in pixels. */
  readonly width: number
  readonly height: number
}

/** A light, slightly tinted background with a linear brightness ramp (the "mild variation"). */
export interface Background {
  readonly base: Rgb
  /** Brightness change per image width along x and along y. */
  readonly rampX: number
  readonly rampY: number
}

export interface Scene {
  readonly size: number
  readonly background: Background
  readonly objects: ReadonlyArray<SceneObject>
}

export const objectBox = (object: SceneObject): Box => ({
  x0: object.cx - object.width / 2,
  y0: object.cy - object.height / 2,
  x1: object.cx + object.width / 2,
  y1: object.cy + object.height / 2
})

/** Empty space kept between object boxes, and between boxes and the border, as fractions of the image side. */
const GAP_FRACTION = 0.08
const BORDER_FRACTION = 0.03
/** Renderer's margin over GenEval's 0.5 threshold, so blur or noise cannot flip a position relation. */
const RELATION_MARGIN = 0.7
const TRIES_PER_OBJECT = 100
const LAYOUT_ATTEMPTS = 200

const sampleBackground = (rng: Rng): Background => {
  const grey = rng.uniform(0.8, 0.9)
  const tint = () => grey + rng.uniform(-0.025, 0.025)
  const ramp = rng.uniform(0, 0.06)
  const angle = rng.uniform(0, 2 * Math.PI)
  return { base: [tint(), tint(), tint()], rampX: ramp * Math.cos(angle), rampY: ramp * Math.sin(angle) }
}

interface PlannedObject {
  readonly shape: Shape
  readonly color: Color
  readonly clauseIndex: number
}

/** Expands clauses into objects, choosing unspecified colours among those the held-out rule allows. */
const planObjects = (clauses: ReadonlyArray<Clause>, rng: Rng, held: HeldOut): Array<PlannedObject> =>
  clauses.flatMap((clause, clauseIndex) =>
    Array.from({ length: clause.count }, () => ({
      shape: clause.class,
      color: clause.color ?? rng.pick(held.colorsFor(clause.class)),
      clauseIndex
    }))
  )

const tryLayout = (
  size: number,
  planned: ReadonlyArray<PlannedObject>,
  clauses: ReadonlyArray<Clause>,
  rng: Rng
): Array<SceneObject> | undefined => {
  const gap = GAP_FRACTION * size
  const border = BORDER_FRACTION * size
  const placed: Array<SceneObject> = []
  for (const plan of planned) {
    const longest = rng.pick(OBJECT_SIZES) * size
    const width = longest
    const height = longest / SHAPE_ASPECT[plan.shape]
    const position = clauses[plan.clauseIndex].position
    const references = position === undefined ? [] : placed.filter((_, i) => planned[i].clauseIndex === position[1])
    let object: SceneObject | undefined
    for (let attempt = 0; attempt < TRIES_PER_OBJECT && object === undefined; attempt++) {
      const candidate: SceneObject = {
        shape: plan.shape,
        color: plan.color,
        cx: rng.uniform(border + width / 2, size - border - width / 2),
        cy: rng.uniform(border + height / 2, size - border - height / 2),
        width,
        height
      }
      const box = objectBox(candidate)
      const free = placed.every((other) => !boxesOverlap(box, objectBox(other), gap))
      const related =
        position === undefined ||
        references.every((reference) => relationStrength(box, objectBox(reference), position[0]) >= RELATION_MARGIN)
      if (free && related) object = candidate
    }
    if (object === undefined) return undefined
    placed.push(object)
  }
  return placed
}

/**
 * A scene satisfying every clause of `record`: exactly the objects the clauses ask for (no
 * distractors), colours left open by the prompt drawn at random, positions non-overlapping.
 */
export const sceneForRecord = (record: PromptRecord, size: number, rng: Rng, held: HeldOut): Scene => {
  const background = sampleBackground(rng)
  for (let attempt = 0; attempt < LAYOUT_ATTEMPTS; attempt++) {
    const planned = planObjects(record.include, rng, held)
    const objects = tryLayout(size, planned, record.include, rng)
    if (objects !== undefined) return { size, background, objects }
  }
  // Unreachable with the world's object sizes (tests lay out thousands of scenes at every
  // resolution): reaching it is a bug, not an input error.
  throw new Error(`no layout found for "${record.prompt}" at ${size}x${size}`)
}

/** A scene with no objects: the "blank image" of the evaluator tests. */
export const emptyScene = (size: number, rng: Rng): Scene => ({ size, background: sampleBackground(rng), objects: [] })
