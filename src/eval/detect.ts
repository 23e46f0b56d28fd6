/**
 * Object detection from pixels alone: segment by colour, measure each component, keep those of a
 * plausible size that look like one of the world's shapes. Plays the role of GenEval's detector.
 */
import type { Box } from "../data/geometry.ts"
import { type Color, COLORS, type Shape } from "../data/world.ts"
import type { RgbImage } from "../io/rgb-image.ts"
import { classifyShape } from "./classify-shape.ts"
import { segment } from "./segment.ts"
import { componentFeatures } from "./shape-features.ts"

/**
 * Components smaller than this fraction of the image are specks (the smallest object, a small oval,
 * covers 2.9%; clusters in pure noise stay near 1%); larger than the upper one are not single objects.
 */
const MIN_AREA_FRACTION = 0.015
const MAX_AREA_FRACTION = 0.25

export interface DetectedObject {
  readonly shape: Shape
  /** Nearest palette colour. */
  readonly color: Color
  readonly box: Box
  /** Soft area in pixels. */
  readonly area: number
  /** Distance to the shape prototype (lower is more confident), GenEval's detector score turned around. */
  readonly fit: number
}

/** Detected objects, most confident first. */
export const detectObjects = (image: RgbImage): Array<DetectedObject> => {
  const imageArea = image.width * image.height
  const detected: Array<DetectedObject> = []
  // Below half the minimum area in hard pixels even the fringe cannot lift a component over it;
  // skipping those spares measuring the hundreds of specks that noise produces.
  const minPixels = Math.floor((MIN_AREA_FRACTION * imageArea) / 2)
  for (const component of componentFeatures(segment(image), minPixels)) {
    if (component.area < MIN_AREA_FRACTION * imageArea || component.area > MAX_AREA_FRACTION * imageArea) continue
    const match = classifyShape(component)
    if (match === undefined) continue
    detected.push({
      shape: match.shape,
      color: COLORS[component.color],
      box: component.box,
      area: component.area,
      fit: match.distance
    })
  }
  return detected.sort((a, b) => a.fit - b.fit)
}
