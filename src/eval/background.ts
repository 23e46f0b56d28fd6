/**
 * Estimates the background of an image as a plane per channel (value = a + b x + c y over pixel
 * column x and row y, in [0, 1]), fitted by least squares to the pixels that look like background
 * and refitted after each outlier rejection.
 */
import type { RgbImage } from "../io/rgb-image.ts"

export type Plane = readonly [a: number, b: number, c: number]

/** One plane per channel (r, g, b). */
export type BackgroundModel = readonly [Plane, Plane, Plane]

/** A pixel further than this (max over channels, in [0, 1]) from the current fit is not background. */
const OUTLIER_DISTANCE = 0.1
const REFITS = 3

/** Per-channel median from a 256-bin histogram: objects cover well under half of any scene. */
const medianPlanes = (image: RgbImage): BackgroundModel => {
  const count = image.width * image.height
  const planeOf = (channel: number): Plane => {
    const histogram = new Int32Array(256)
    for (let i = 0; i < count; i++) histogram[image.data[i * 3 + channel]]++
    let seen = 0
    let level = 0
    while (level < 255 && seen + histogram[level] <= count / 2) seen += histogram[level++]
    return [level / 255, 0, 0]
  }
  return [planeOf(0), planeOf(1), planeOf(2)]
}

const at = (plane: Plane, x: number, y: number) => plane[0] + plane[1] * x + plane[2] * y

export const fitBackground = (image: RgbImage): BackgroundModel => {
  const { width, height, data } = image
  let model = medianPlanes(image)
  for (let refit = 0; refit < REFITS; refit++) {
    // Normal equations of the least-squares plane: the matrix is shared by the three channels.
    let n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0
    const sv = [0, 0, 0]
    const sxv = [0, 0, 0]
    const syv = [0, 0, 0]
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 3
        const r = data[i] / 255
        const g = data[i + 1] / 255
        const b = data[i + 2] / 255
        if (
          Math.abs(r - at(model[0], x, y)) > OUTLIER_DISTANCE ||
          Math.abs(g - at(model[1], x, y)) > OUTLIER_DISTANCE ||
          Math.abs(b - at(model[2], x, y)) > OUTLIER_DISTANCE
        ) continue
        n++
        sx += x
        sy += y
        sxx += x * x
        sxy += x * y
        syy += y * y
        sv[0] += r
        sv[1] += g
        sv[2] += b
        sxv[0] += x * r
        sxv[1] += x * g
        sxv[2] += x * b
        syv[0] += y * r
        syv[1] += y * g
        syv[2] += y * b
      }
    }
    // Too few inliers to pin a plane (noise, or an image full of colour): keep the current estimate.
    if (n < Math.max(8, (width * height) / 8)) break
    const det = n * (sxx * syy - sxy * sxy) - sx * (sx * syy - sxy * sy) + sy * (sx * sxy - sxx * sy)
    if (Math.abs(det) < 1e-9) break
    const solve = (channel: number): Plane => {
      const v0 = sv[channel]
      const v1 = sxv[channel]
      const v2 = syv[channel]
      // Cramer's rule on [[n, sx, sy], [sx, sxx, sxy], [sy, sxy, syy]] [a, b, c] = [v0, v1, v2].
      const a = v0 * (sxx * syy - sxy * sxy) - sx * (v1 * syy - sxy * v2) + sy * (v1 * sxy - sxx * v2)
      const b = n * (v1 * syy - sxy * v2) - v0 * (sx * syy - sxy * sy) + sy * (sx * v2 - v1 * sy)
      const c = n * (sxx * v2 - v1 * sxy) - sx * (sx * v2 - v1 * sy) + v0 * (sx * sxy - sxx * sy)
      return [a / det, b / det, c / det]
    }
    model = [solve(0), solve(1), solve(2)]
  }
  return model
}
