import type { Floats, Words } from "./storage.ts"

/**
 * Data movement. Patch tokens: image [B, C, H, W] <-> tokens [B, (H/p)(W/p), p*p*C], tokens row-major over
 * the patch grid, vector order (py, px, c) as DiT's unpatchify expects. Axis copies view tensors as
 * [outer, axis, inner].
 */
export interface ImageSizes {
  readonly batch: number
  readonly channels: number
  readonly height: number
  readonly width: number
  readonly patch: number
}

/** Calls move(imageIndex, tokenIndex) for every element of the image/token correspondence. */
const forEachPatchElement = (s: ImageSizes, move: (image: number, token: number) => void): void => {
  const { batch, channels, height, width, patch } = s
  const gridH = height / patch
  const gridW = width / patch
  const vector = patch * patch * channels
  for (let b = 0; b < batch; b++)
    for (let gy = 0; gy < gridH; gy++)
      for (let gx = 0; gx < gridW; gx++) {
        const token = (b * gridH * gridW + gy * gridW + gx) * vector
        for (let py = 0; py < patch; py++)
          for (let px = 0; px < patch; px++)
            for (let c = 0; c < channels; c++) {
              const image = ((b * channels + c) * height + gy * patch + py) * width + gx * patch + px
              move(image, token + (py * patch + px) * channels + c)
            }
      }
}

export const patchify = (tokens: Floats, x: Floats, s: ImageSizes): void =>
  forEachPatchElement(s, (image, token) => {
    tokens[token] = x[image] as number
  })

export const unpatchify = (x: Floats, tokens: Floats, s: ImageSizes): void =>
  forEachPatchElement(s, (image, token) => {
    x[image] = tokens[token] as number
  })

/** dst[o, j, i] = src[o, srcOffset + j, i] for j < dstAxis (writes all of dst). */
export const sliceAxis = (dst: Words, src: Words, outer: number, srcAxis: number, dstAxis: number, srcOffset: number, inner: number): void => {
  for (let o = 0; o < outer; o++) {
    const from = (o * srcAxis + srcOffset) * inner
    dst.set(src.subarray(from, from + dstAxis * inner), o * dstAxis * inner)
  }
}

/** dst[o, dstOffset + j, i] = src[o, j, i] for j < srcAxis (writes that block only). */
export const insertAxis = (dst: Words, src: Words, outer: number, srcAxis: number, dstAxis: number, dstOffset: number, inner: number): void => {
  for (let o = 0; o < outer; o++)
    dst.set(src.subarray(o * srcAxis * inner, (o + 1) * srcAxis * inner), (o * dstAxis + dstOffset) * inner)
}
