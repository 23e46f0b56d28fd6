/** A small line chart rendered straight to pixels (axes, grid, ticks, legend), for quality-vs-steps plots. */
import { CHARACTER_ADVANCE, GLYPH_HEIGHT, type Ink, drawText } from "./bitmap-font.ts"
import type { RgbImage } from "./rgb-image.ts"

export interface Series {
  readonly label: string
  readonly color: Ink
  readonly points: ReadonlyArray<{ readonly x: number; readonly y: number }>
}

export interface LinePlotOptions {
  readonly title: string
  readonly xLabel: string
  readonly yLabel: string
  readonly series: ReadonlyArray<Series>
  /** Plot x on a log2 axis (step counts 1, 2, 4, ...). */
  readonly logX?: boolean
  readonly yMin?: number
  readonly yMax?: number
  readonly width?: number
  readonly height?: number
}

const TEXT_SCALE = 2
const INK: Ink = [30, 30, 30]
const GRID: Ink = [225, 225, 225]

const setPixel = (canvas: RgbImage, x: number, y: number, ink: Ink) => {
  const px = Math.round(x)
  const py = Math.round(y)
  if (px < 0 || py < 0 || px >= canvas.width || py >= canvas.height) return
  const i = (py * canvas.width + px) * 3
  canvas.data[i] = ink[0]
  canvas.data[i + 1] = ink[1]
  canvas.data[i + 2] = ink[2]
}

const line = (canvas: RgbImage, x0: number, y0: number, x1: number, y1: number, ink: Ink, thickness = 1) => {
  const steps = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))))
  const half = Math.floor(thickness / 2)
  for (let s = 0; s <= steps; s++) {
    const x = x0 + ((x1 - x0) * s) / steps
    const y = y0 + ((y1 - y0) * s) / steps
    for (let dx = -half; dx <= half; dx++) for (let dy = -half; dy <= half; dy++) setPixel(canvas, x + dx, y + dy, ink)
  }
}

const textWidth = (text: string) => text.length * CHARACTER_ADVANCE * TEXT_SCALE

export const linePlot = (options: LinePlotOptions): RgbImage => {
  const width = options.width ?? 720
  const height = options.height ?? 480
  const canvas: RgbImage = { width, height, data: new Uint8Array(width * height * 3).fill(255) }
  const left = 90
  const right = width - 30
  const top = 60
  const bottom = height - 80
  const xs = options.series.flatMap((s) => s.points.map((p) => p.x))
  const ys = options.series.flatMap((s) => s.points.map((p) => p.y))
  const fx = (x: number) => (options.logX ? Math.log2(x) : x)
  const xMin = Math.min(...xs.map(fx))
  const xMax = Math.max(...xs.map(fx), xMin + 1)
  const yMin = options.yMin ?? Math.min(...ys)
  const yMax = options.yMax ?? Math.max(...ys, yMin + 1e-9)
  const px = (x: number) => left + ((fx(x) - xMin) / (xMax - xMin)) * (right - left)
  const py = (y: number) => bottom - ((y - yMin) / (yMax - yMin)) * (bottom - top)

  for (let i = 0; i <= 5; i++) {
    const y = yMin + ((yMax - yMin) * i) / 5
    line(canvas, left, py(y), right, py(y), GRID)
    const label = y.toFixed(2)
    drawText(canvas, left - 10 - textWidth(label), py(y) - (GLYPH_HEIGHT * TEXT_SCALE) / 2, label, INK, TEXT_SCALE)
  }
  for (const x of [...new Set(xs)].sort((a, b) => a - b)) {
    line(canvas, px(x), top, px(x), bottom, GRID)
    const label = String(x)
    drawText(canvas, px(x) - textWidth(label) / 2, bottom + 10, label, INK, TEXT_SCALE)
  }
  line(canvas, left, bottom, right, bottom, INK, 2)
  line(canvas, left, top, left, bottom, INK, 2)
  drawText(canvas, (width - textWidth(options.title)) / 2, 15, options.title, INK, TEXT_SCALE)
  drawText(canvas, (left + right - textWidth(options.xLabel)) / 2, height - 35, options.xLabel, INK, TEXT_SCALE)
  drawText(canvas, 10, top - 35, options.yLabel, INK, TEXT_SCALE)

  options.series.forEach((series, index) => {
    const points = [...series.points].sort((a, b) => a.x - b.x)
    for (let i = 1; i < points.length; i++)
      line(canvas, px(points[i - 1]!.x), py(points[i - 1]!.y), px(points[i]!.x), py(points[i]!.y), series.color, 3)
    for (const p of points) for (let d = -4; d <= 4; d++) line(canvas, px(p.x) - 4, py(p.y) + d, px(p.x) + 4, py(p.y) + d, series.color)
    const legendY = top + 10 + index * (GLYPH_HEIGHT * TEXT_SCALE + 8)
    line(canvas, right - 200, legendY + 8, right - 170, legendY + 8, series.color, 3)
    drawText(canvas, right - 160, legendY, series.label, INK, TEXT_SCALE)
  })
  return canvas
}
