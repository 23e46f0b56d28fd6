/**
 * Colour segmentation against the background. Each pixel is explained as a blend of the local
 * background and one palette colour: pixel = background + alpha (palette - background). The palette
 * colour whose blend line passes closest to the pixel labels it; alpha >= 0.5 makes it foreground.
 * Same-label foreground pixels are grouped into 8-connected components (one per candidate object).
 */
import { COLORS, PALETTE } from "../data/world.ts"
import type { RgbImage } from "../io/rgb-image.ts"
import { type BackgroundModel, fitBackground } from "./background.ts"

/** Largest distance (in [0, 1] RGB) a pixel may lie off its blend line and still count as that colour. */
const MAX_RESIDUAL = 0.2

export interface Segmentation {
  readonly width: number
  readonly height: number
  /** Palette index of each foreground pixel, -1 for background. */
  readonly labels: Int8Array
  /** Palette index whose blend line passes closest to each pixel, foreground or not. */
  readonly nearestColors: Int8Array
  /** Component id of each foreground pixel, -1 for background. */
  readonly components: Int32Array
  readonly componentCount: number
  /** Blend weight of palette colour `color` at pixel index `i` (unclamped). */
  readonly alphaOf: (i: number, color: number) => number
}

const PALETTE_RGB = COLORS.map((color) => PALETTE[color])

export const segment = (image: RgbImage, background: BackgroundModel = fitBackground(image)): Segmentation => {
  const { width, height, data } = image
  const count = width * height
  // Per pixel: offset from the background, and the background itself, in [0, 1] units.
  const offsets = new Float32Array(count * 3)
  const backgrounds = new Float32Array(count * 3)
  const [red, green, blue] = background
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x
      const r = red[0] + red[1] * x + red[2] * y
      const g = green[0] + green[1] * x + green[2] * y
      const b = blue[0] + blue[1] * x + blue[2] * y
      backgrounds[i * 3] = r
      backgrounds[i * 3 + 1] = g
      backgrounds[i * 3 + 2] = b
      offsets[i * 3] = data[i * 3] / 255 - r
      offsets[i * 3 + 1] = data[i * 3 + 1] / 255 - g
      offsets[i * 3 + 2] = data[i * 3 + 2] / 255 - b
    }
  }
  const alphaOf = (i: number, c: number): number => {
    const palette = PALETTE_RGB[c]
    const dr = palette[0] - backgrounds[i * 3]
    const dg = palette[1] - backgrounds[i * 3 + 1]
    const db = palette[2] - backgrounds[i * 3 + 2]
    return (offsets[i * 3] * dr + offsets[i * 3 + 1] * dg + offsets[i * 3 + 2] * db) / (dr * dr + dg * dg + db * db)
  }
  const labels = new Int8Array(count).fill(-1)
  const nearestColors = new Int8Array(count)
  for (let i = 0; i < count; i++) {
    const or = offsets[i * 3]
    const og = offsets[i * 3 + 1]
    const ob = offsets[i * 3 + 2]
    let bestResidual = Infinity
    let bestColor = 0
    let bestAlpha = 0
    for (let c = 0; c < PALETTE_RGB.length; c++) {
      const palette = PALETTE_RGB[c]
      const dr = palette[0] - backgrounds[i * 3]
      const dg = palette[1] - backgrounds[i * 3 + 1]
      const db = palette[2] - backgrounds[i * 3 + 2]
      const raw = (or * dr + og * dg + ob * db) / (dr * dr + dg * dg + db * db)
      const alpha = raw < 0 ? 0 : raw > 1 ? 1 : raw
      const residual = (or - alpha * dr) ** 2 + (og - alpha * dg) ** 2 + (ob - alpha * db) ** 2
      if (residual < bestResidual) {
        bestResidual = residual
        bestColor = c
        bestAlpha = alpha
      }
    }
    nearestColors[i] = bestColor
    if (bestAlpha >= 0.5 && bestResidual <= MAX_RESIDUAL * MAX_RESIDUAL) labels[i] = bestColor
  }
  const components = new Int32Array(count).fill(-1)
  let componentCount = 0
  const stack: Array<number> = []
  for (let seed = 0; seed < count; seed++) {
    if (labels[seed] < 0 || components[seed] >= 0) continue
    components[seed] = componentCount
    stack.push(seed)
    while (stack.length > 0) {
      const i = stack.pop()!
      const x = i % width
      const y = (i - x) / width
      for (let ny = Math.max(0, y - 1); ny <= Math.min(height - 1, y + 1); ny++) {
        for (let nx = Math.max(0, x - 1); nx <= Math.min(width - 1, x + 1); nx++) {
          const j = ny * width + nx
          if (labels[j] === labels[seed] && components[j] < 0) {
            components[j] = componentCount
            stack.push(j)
          }
        }
      }
    }
    componentCount++
  }
  return { width, height, labels, nearestColors, components, componentCount, alphaOf }
}
