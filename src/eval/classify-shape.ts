/**
 * Shape classification by nearest prototype in the space of scale-free complex moments. Prototypes
 * are the moments of the ideal shapes (the world's geometry, not any scene), sampled finely once.
 */
import { distanceFunction } from "../data/sdf.ts"
import { type Shape, SHAPE_ASPECT, SHAPES } from "../data/world.ts"
import { type Moments, moments } from "./shape-features.ts"

/** Expected spread of each moment on real renders (blur and noise included): the distance unit. */
const TOLERANCE = { c2: 0.015, c3: 0.015, c4: 0.005 } as const
/** A component further than this from every prototype is not an object (noise, smudge, merged blobs). */
const MAX_PROTOTYPE_DISTANCE = 3
const PROTOTYPE_GRID = 256

const signature = (m: Moments): ReadonlyArray<number> => [
  m.c2[0] / TOLERANCE.c2,
  m.c2[1] / TOLERANCE.c2,
  m.c3[0] / TOLERANCE.c3,
  m.c3[1] / TOLERANCE.c3,
  m.c4[0] / TOLERANCE.c4,
  m.c4[1] / TOLERANCE.c4
]

const idealMoments = (shape: Shape): Moments => {
  const width = PROTOTYPE_GRID
  const height = PROTOTYPE_GRID / SHAPE_ASPECT[shape]
  const distance = distanceFunction(shape, width, height)
  const xs: Array<number> = []
  const ys: Array<number> = []
  const weights: Array<number> = []
  for (let y = -height / 2; y < height / 2; y++) {
    for (let x = -width / 2; x < width / 2; x++) {
      if (distance(x + 0.5, y + 0.5) <= 0) {
        xs.push(x + 0.5)
        ys.push(y + 0.5)
        weights.push(1)
      }
    }
  }
  return moments(xs, ys, weights)
}

const PROTOTYPES = SHAPES.map((shape) => ({ shape, signature: signature(idealMoments(shape)) }))

export interface ShapeMatch {
  readonly shape: Shape
  /** Distance to the prototype in tolerance units; smaller is a better fit. */
  readonly distance: number
}

/** The nearest shape, or undefined when nothing is close enough. */
export const classifyShape = (m: Moments): ShapeMatch | undefined => {
  const observed = signature(m)
  let best: ShapeMatch | undefined
  for (const prototype of PROTOTYPES) {
    const distance = Math.hypot(...observed.map((value, k) => value - prototype.signature[k]))
    if (best === undefined || distance < best.distance) best = { shape: prototype.shape, distance }
  }
  return best !== undefined && best.distance <= MAX_PROTOTYPE_DISTANCE ? best : undefined
}
