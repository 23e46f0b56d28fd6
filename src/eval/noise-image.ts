/** Pure noise: the evaluator's negative control, and `selfe shapes export --noise`. */
import { Rng } from "../data/rng.ts"
import { type RgbImage, rgbFromChw } from "../io/rgb-image.ts"

/** Standard normal noise per pixel and channel in model space ([-1, 1], clipped): an untrained sampler's output. */
export const noiseImage = (size: number, rng: Rng): RgbImage => {
  const chw = new Float32Array(3 * size * size)
  for (let i = 0; i < chw.length; i++) chw[i] = rng.normal()
  return rgbFromChw(chw, size, size)
}
