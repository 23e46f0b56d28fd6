import type { RandomStream } from "../kernels/ops.ts"
import { randomNormal, randomUniform } from "../kernels/reference/random.ts"

/**
 * Every random draw of a run is a Philox stream addressed by (seed, step, purpose), so a resumed run
 * draws exactly what an uninterrupted one would, on every backend, with no generator state to save.
 */
const PURPOSES = ["times", "landing", "dropout", "noise", "renoise", "sample", "sampleRenoise"] as const
export type Purpose = (typeof PURPOSES)[number]

/** Philox blocks reserved per (step, purpose): 2^26 numbers, enough for a batch of 64 images of 512^2. */
const BLOCKS_PER_STREAM = 2 ** 24

export const streamFor = (seed: number, step: number, purpose: Purpose): RandomStream => ({
  seed,
  offset: (step * PURPOSES.length + PURPOSES.indexOf(purpose)) * BLOCKS_PER_STREAM
})

/** Host-side uniforms in (0, 1) from a stream (the same numbers the kernels would draw). */
export const hostUniforms = (count: number, stream: RandomStream): Float64Array => {
  const out = new Float64Array(count)
  randomUniform(out, stream.seed, stream.offset)
  return out
}

export const hostNormals = (count: number, stream: RandomStream): Float64Array => {
  const out = new Float64Array(count)
  randomNormal(out, stream.seed, stream.offset)
  return out
}
