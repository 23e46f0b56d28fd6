/**
 * Scale-free geometry of one segmented component, measured on soft (anti-aliased) coverage so that
 * small objects still give stable numbers.
 */
import type { Box } from "../data/geometry.ts"
import type { Segmentation } from "./segment.ts"

type Complex = readonly [re: number, im: number]

/**
 * Complex central moments E[z^k] of z = (x - mean x) + i (y - mean y), divided by area^(k/2) so they
 * do not depend on scale. Both the numerator and the area are unchanged by an isotropic blur, which
 * makes these the blur-proof shape signature: k = 2 sees elongation, k = 3 the triangle, k = 4
 * separates square (negative), circle (zero) and diamond (positive).
 */
export interface Moments {
  readonly area: number
  readonly c2: Complex
  readonly c3: Complex
  readonly c4: Complex
}

/** Moments of a weighted point set (coordinates and weights in parallel arrays). */
export const moments = (xs: ArrayLike<number>, ys: ArrayLike<number>, weights: ArrayLike<number>): Moments => {
  let area = 0
  let sumX = 0
  let sumY = 0
  for (let k = 0; k < weights.length; k++) {
    area += weights[k]
    sumX += weights[k] * xs[k]
    sumY += weights[k] * ys[k]
  }
  const meanX = sumX / area
  const meanY = sumY / area
  let m2re = 0
  let m2im = 0
  let m3re = 0
  let m3im = 0
  let m4re = 0
  let m4im = 0
  for (let k = 0; k < weights.length; k++) {
    const w = weights[k]
    const x = xs[k] - meanX
    const y = ys[k] - meanY
    const x2 = x * x
    const y2 = y * y
    m2re += w * (x2 - y2)
    m2im += w * 2 * x * y
    m3re += w * (x2 * x - 3 * x * y2)
    m3im += w * (3 * x2 * y - y2 * y)
    m4re += w * (x2 * x2 - 6 * x2 * y2 + y2 * y2)
    m4im += w * 4 * x * y * (x2 - y2)
  }
  const scale2 = area ** 2
  const scale3 = area ** 2.5
  const scale4 = area ** 3
  return { area, c2: [m2re / scale2, m2im / scale2], c3: [m3re / scale3, m3im / scale3], c4: [m4re / scale4, m4im / scale4] }
}

export interface ComponentFeatures extends Moments {
  /** Palette index of the component. */
  readonly color: number
  /** Bounding box from the row and column coverage profiles (a blur leaves their sums unchanged). */
  readonly box: Box
}

/** How far (pixels) beyond a component its soft edge is collected: a blur spreads edges about this far. */
const FRINGE = 2
/** A fringe pixel leaning this much towards another colour belongs to a neighbouring object's edge. */
const FOREIGN_ALPHA = 0.15
const clamp01 = (value: number) => (value < 0 ? 0 : value > 1 ? 1 : value)

const profile = (values: Float64Array) => {
  let extent = 0
  let moment = 0
  values.forEach((value, k) => {
    extent += value
    moment += value * (k + 0.5)
  })
  return { extent, centre: moment / extent }
}

/** Measures one component; `stamp` (one entry per pixel) marks the pixels already collected for it. */
const measureComponent = (
  segmentation: Segmentation,
  component: number,
  pixels: ReadonlyArray<number>,
  stamp: Int32Array
): ComponentFeatures => {
  const { width, height, labels, nearestColors, components, alphaOf } = segmentation
  const color = labels[pixels[0]]
  const indices: Array<number> = []
  for (const i of pixels) {
    stamp[i] = component
    indices.push(i)
  }
  for (const i of pixels) {
    const x = i % width
    const y = (i - x) / width
    for (let ny = Math.max(0, y - FRINGE); ny <= Math.min(height - 1, y + FRINGE); ny++) {
      for (let nx = Math.max(0, x - FRINGE); nx <= Math.min(width - 1, x + FRINGE); nx++) {
        const j = ny * width + nx
        if (stamp[j] === component || components[j] >= 0) continue
        if (nearestColors[j] !== color && alphaOf(j, nearestColors[j]) > FOREIGN_ALPHA) continue
        stamp[j] = component
        indices.push(j)
      }
    }
  }
  const xs = new Float64Array(indices.length)
  const ys = new Float64Array(indices.length)
  const weights = new Float64Array(indices.length)
  const columnMax = new Float64Array(width)
  const rowMax = new Float64Array(height)
  indices.forEach((i, k) => {
    const x = i % width
    const y = (i - x) / width
    const w = clamp01(alphaOf(i, color))
    xs[k] = x + 0.5
    ys[k] = y + 0.5
    weights[k] = w
    if (w > columnMax[x]) columnMax[x] = w
    if (w > rowMax[y]) rowMax[y] = w
  })
  const horizontal = profile(columnMax)
  const vertical = profile(rowMax)
  return {
    ...moments(xs, ys, weights),
    color,
    box: {
      x0: horizontal.centre - horizontal.extent / 2,
      x1: horizontal.centre + horizontal.extent / 2,
      y0: vertical.centre - vertical.extent / 2,
      y1: vertical.centre + vertical.extent / 2
    }
  }
}

/**
 * Features of every component of at least `minPixels` foreground pixels (smaller ones are skipped
 * unmeasured: pure noise makes hundreds); background pixels around a component add their partial coverage.
 */
export const componentFeatures = (segmentation: Segmentation, minPixels = 1): Array<ComponentFeatures> => {
  const members: Array<Array<number>> = Array.from({ length: segmentation.componentCount }, () => [])
  segmentation.components.forEach((component, i) => {
    if (component >= 0) members[component].push(i)
  })
  const stamp = new Int32Array(segmentation.width * segmentation.height).fill(-1)
  return members.flatMap((pixels, component) =>
    pixels.length < minPixels ? [] : [measureComponent(segmentation, component, pixels, stamp)]
  )
}
