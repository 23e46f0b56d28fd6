/**
 * Signed distance (pixels, negative inside) from a point to each shape, centred at the origin with
 * a width x height bounding box. Exact near edges, which is all anti-aliasing needs.
 */
import type { Shape } from "./world.ts"

export type DistanceFunction = (x: number, y: number) => number

const circle = (width: number): DistanceFunction => {
  const radius = width / 2
  return (x, y) => Math.sqrt(x * x + y * y) - radius
}

const square = (width: number, height: number): DistanceFunction => {
  const halfW = width / 2
  const halfH = height / 2
  return (x, y) => {
    const qx = Math.abs(x) - halfW
    const qy = Math.abs(y) - halfH
    const outside = Math.hypot(Math.max(qx, 0), Math.max(qy, 0))
    return outside + Math.min(Math.max(qx, qy), 0)
  }
}

/** Apex up, base along the bottom of the box. */
const triangle = (width: number, height: number): DistanceFunction => {
  const halfW = width / 2
  const halfH = height / 2
  const edgeLength = Math.hypot(height, halfW)
  return (x, y) => {
    const fromApex = y + halfH
    const right = (x * height - fromApex * halfW) / edgeLength
    const left = (-x * height - fromApex * halfW) / edgeLength
    return Math.max(right, left, y - halfH)
  }
}

const diamond = (width: number, height: number): DistanceFunction => {
  const halfW = width / 2
  const halfH = height / 2
  const norm = Math.hypot(halfW, halfH)
  return (x, y) => (Math.abs(x) * halfH + Math.abs(y) * halfW - halfW * halfH) / norm
}

/** Inigo Quilez's first-order ellipse distance: accurate close to the outline. */
const oval = (width: number, height: number): DistanceFunction => {
  const a = width / 2
  const b = height / 2
  return (x, y) => {
    const k0 = Math.hypot(x / a, y / b)
    const k1 = Math.hypot(x / (a * a), y / (b * b))
    return k1 === 0 ? -Math.min(a, b) : (k0 * (k0 - 1)) / k1
  }
}

export const distanceFunction = (shape: Shape, width: number, height: number): DistanceFunction => {
  switch (shape) {
    case "circle":
      return circle(width)
    case "square":
      return square(width, height)
    case "triangle":
      return triangle(width, height)
    case "diamond":
      return diamond(width, height)
    case "oval":
      return oval(width, height)
  }
}
