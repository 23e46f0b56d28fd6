/**
 * Axis-aligned boxes and GenEval's relative-position rule, shared by the renderer (to place objects
 * so a position prompt holds) and the evaluator (to check it from detected boxes).
 */
import { RELATIONS, type Relation } from "./world.ts"

/** Pixel coordinates, x to the right, y downwards; x1/y1 exclusive edges. */
export interface Box {
  readonly x0: number
  readonly y0: number
  readonly x1: number
  readonly y1: number
}

/** GenEval's POSITION_THRESHOLD: this fraction of the summed box sizes is discounted from the offset. */
export const POSITION_THRESHOLD = 0.1

/**
 * Direction of A relative to B as GenEval computes it: centre offset, shrunk by 0.1 x the summed box
 * sizes per axis, divided by the length of the raw offset. `undefined` when the shrunk offset vanishes.
 */
const positionDirection = (a: Box, b: Box): { readonly dx: number; readonly dy: number } | undefined => {
  const offsetX = (a.x0 + a.x1) / 2 - (b.x0 + b.x1) / 2
  const offsetY = (a.y0 + a.y1) / 2 - (b.y0 + b.y1) / 2
  const shrink = (offset: number, sizeA: number, sizeB: number) =>
    Math.max(Math.abs(offset) - POSITION_THRESHOLD * (sizeA + sizeB), 0) * Math.sign(offset)
  const revisedX = shrink(offsetX, a.x1 - a.x0, b.x1 - b.x0)
  const revisedY = shrink(offsetY, a.y1 - a.y0, b.y1 - b.y0)
  if (Math.abs(revisedX) < 1e-3 && Math.abs(revisedY) < 1e-3) return undefined
  const norm = Math.hypot(offsetX, offsetY)
  return { dx: revisedX / norm, dy: revisedY / norm }
}

/** How far A lies in the direction `relation` from B, on GenEval's scale (the relation holds above 0.5). */
export const relationStrength = (a: Box, b: Box, relation: Relation): number => {
  const direction = positionDirection(a, b)
  if (direction === undefined) return 0
  switch (relation) {
    case "left of":
      return -direction.dx
    case "right of":
      return direction.dx
    case "above":
      return -direction.dy
    case "below":
      return direction.dy
  }
}

/** GenEval's `relative_position`: every relation that A has to B (possibly two, e.g. left of and above). */
export const relationsBetween = (a: Box, b: Box): ReadonlySet<Relation> => {
  const relations = new Set<Relation>()
  for (const relation of RELATIONS) {
    if (relationStrength(a, b, relation) > 0.5) relations.add(relation)
  }
  return relations
}

export const boxesOverlap = (a: Box, b: Box, gap: number): boolean =>
  a.x0 < b.x1 + gap && b.x0 < a.x1 + gap && a.y0 < b.y1 + gap && b.y0 < a.y1 + gap
