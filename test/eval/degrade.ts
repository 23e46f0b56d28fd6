/** Image degradations for the evaluator's robustness tests. */
import type { Rng } from "../../src/data/rng.ts"

/** Separable [1, 2, 1] / 4 blur (about a Gaussian of sigma 0.7 px) on a CHW image, edges clamped. */
export const blur = (chw: Float32Array, size: number): Float32Array => {
  const taps = [0.25, 0.5, 0.25]
  const horizontal = new Float32Array(chw.length)
  const out = new Float32Array(chw.length)
  const clamp = (k: number) => Math.min(size - 1, Math.max(0, k))
  for (let plane = 0; plane < 3; plane++) {
    const base = plane * size * size
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let sum = 0
        for (let d = -1; d <= 1; d++) sum += taps[d + 1] * chw[base + y * size + clamp(x + d)]
        horizontal[base + y * size + x] = sum
      }
    }
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let sum = 0
        for (let d = -1; d <= 1; d++) sum += taps[d + 1] * horizontal[base + clamp(y + d) * size + x]
        out[base + y * size + x] = sum
      }
    }
  }
  return out
}

/** Adds Gaussian noise of standard deviation `sigma` (model units, [-1, 1] range) in place. */
export const addNoise = (chw: Float32Array, sigma: number, rng: Rng): Float32Array => {
  for (let i = 0; i < chw.length; i++) chw[i] += sigma * rng.normal()
  return chw
}
