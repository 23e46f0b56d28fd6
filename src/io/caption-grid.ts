/** A contact sheet: images upscaled (nearest neighbour) in a grid, each with its caption beneath. */
import { CHARACTER_ADVANCE, drawText, LINE_ADVANCE, wrapText } from "./bitmap-font.ts"
import type { RgbImage } from "./rgb-image.ts"

export interface CaptionedImage {
  readonly image: RgbImage
  readonly caption: string
}

export interface CaptionGridOptions {
  /** Default: as square a grid as the count allows. */
  readonly columns?: number
  /** Upscaling factor; default: enough to make each image about 160 pixels wide. */
  readonly scale?: number
}

const PADDING = 6
const PAPER = 255
const INK = [20, 20, 20] as const

export const captionGrid = (cells: ReadonlyArray<CaptionedImage>, options: CaptionGridOptions = {}): RgbImage => {
  if (cells.length === 0) throw new RangeError("captionGrid needs at least one image")
  const imageWidth = Math.max(...cells.map((cell) => cell.image.width))
  const imageHeight = Math.max(...cells.map((cell) => cell.image.height))
  const scale = options.scale ?? Math.max(1, Math.round(160 / imageWidth))
  const columns = options.columns ?? Math.ceil(Math.sqrt(cells.length))
  const rows = Math.ceil(cells.length / columns)
  const cellWidth = imageWidth * scale
  const captions = cells.map((cell) => wrapText(cell.caption, Math.floor(cellWidth / CHARACTER_ADVANCE)))
  const captionHeight = Math.max(1, ...captions.map((lines) => lines.length)) * LINE_ADVANCE
  const cellHeight = imageHeight * scale + 3 + captionHeight
  const width = PADDING + columns * (cellWidth + PADDING)
  const height = PADDING + rows * (cellHeight + PADDING)
  const canvas: RgbImage = { width, height, data: new Uint8Array(width * height * 3).fill(PAPER) }
  cells.forEach((cell, index) => {
    const left = PADDING + (index % columns) * (cellWidth + PADDING)
    const top = PADDING + Math.floor(index / columns) * (cellHeight + PADDING)
    const { image } = cell
    for (let y = 0; y < image.height * scale; y++) {
      for (let x = 0; x < image.width * scale; x++) {
        const source = (Math.floor(y / scale) * image.width + Math.floor(x / scale)) * 3
        canvas.data.set(image.data.subarray(source, source + 3), ((top + y) * width + left + x) * 3)
      }
    }
    const captionTop = top + image.height * scale + 3
    captions[index].forEach((line, k) => drawText(canvas, left, captionTop + k * LINE_ADVANCE, line, INK))
  })
  return canvas
}
