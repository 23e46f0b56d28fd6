/**
 * The interchange image type (8-bit RGB, rows of interleaved pixels, as PNGs hold them) and its
 * conversion from the model's layout (Float32 CHW in [-1, 1]).
 */

export interface RgbImage {
  readonly width: number
  readonly height: number
  /** height x width x 3 bytes, row-major. */
  readonly data: Uint8Array
}

/** Converts one CHW [-1, 1] image starting at `offset` of `chw` (values outside the range clip). */
export const rgbFromChw = (chw: Float32Array, width: number, height: number, offset = 0): RgbImage => {
  const plane = width * height
  const data = new Uint8Array(plane * 3)
  for (let channel = 0; channel < 3; channel++) {
    const base = offset + channel * plane
    for (let i = 0; i < plane; i++) {
      const value = Math.round((chw[base + i] + 1) * 127.5)
      data[i * 3 + channel] = value < 0 ? 0 : value > 255 ? 255 : value
    }
  }
  return { width, height, data }
}
