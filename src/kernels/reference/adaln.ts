import { layerNormBackward, layerNormForward } from "./layernorm.ts"
import type { Floats } from "./storage.ts"

/** adaLN-Zero pieces of a DiT block over x [batch, tokens, dim] with per-sample vectors [batch, dim]. */
export interface TokenSizes {
  readonly batch: number
  readonly tokens: number
  readonly dim: number
}

/** y = x (1 + scale[b]) + shift[b]. */
export const modulate = (y: Floats, x: Floats, shift: Floats, scale: Floats, { batch, tokens, dim }: TokenSizes): void => {
  for (let b = 0; b < batch; b++)
    for (let l = 0; l < tokens; l++)
      for (let j = 0; j < dim; j++) {
        const at = (b * tokens + l) * dim + j
        y[at] = (x[at] as number) * (1 + (scale[b * dim + j] as number)) + (shift[b * dim + j] as number)
      }
}

/** Writes dx = dy (1 + scale[b]), dshift[b] = sum_tokens dy, dscale[b] = sum_tokens dy x. */
export const modulateBackward = (
  dx: Floats,
  dshift: Floats,
  dscale: Floats,
  dy: Floats,
  x: Floats,
  scale: Floats,
  { batch, tokens, dim }: TokenSizes
): void => {
  for (let b = 0; b < batch; b++)
    for (let j = 0; j < dim; j++) {
      const factor = 1 + (scale[b * dim + j] as number)
      let accShift = 0
      let accScale = 0
      for (let l = 0; l < tokens; l++) {
        const at = (b * tokens + l) * dim + j
        const d = dy[at] as number
        dx[at] = d * factor
        accShift += d
        accScale += d * (x[at] as number)
      }
      dshift[b * dim + j] = accShift
      dscale[b * dim + j] = accScale
    }
}

/**
 * adaLN's LayerNorm (no affine) fused with the modulation: y = xhat (1 + scale[b]) + shift[b], with the
 * normalised rows kept in double until the modulation.
 */
export const layerNormModulate = (
  y: Floats,
  mean: Floats,
  rstd: Floats,
  x: Floats,
  shift: Floats,
  scale: Floats,
  eps: number,
  sizes: TokenSizes
): void => {
  const normalised = new Float64Array(x.length)
  layerNormForward(normalised, mean, rstd, x, undefined, undefined, sizes.dim, eps)
  modulate(y, normalised, shift, scale, sizes)
}

/**
 * Writes dx (LayerNorm's backward of g = dy (1 + scale[b])), dshift[b] = sum_tokens dy and
 * dscale[b] = sum_tokens dy xhat, from the saved mean and rstd.
 */
export const layerNormModulateBackward = (
  dx: Floats,
  dshift: Floats,
  dscale: Floats,
  dy: Floats,
  x: Floats,
  mean: Floats,
  rstd: Floats,
  scale: Floats,
  sizes: TokenSizes
): void => {
  const { batch, tokens, dim } = sizes
  const xhat = new Float64Array(x.length)
  for (let r = 0; r < batch * tokens; r++)
    for (let j = 0; j < dim; j++) xhat[r * dim + j] = ((x[r * dim + j] as number) - (mean[r] as number)) * (rstd[r] as number)
  const g = new Float64Array(x.length)
  modulateBackward(g, dshift, dscale, dy, xhat, scale, sizes)
  layerNormBackward(dx, undefined, undefined, g, x, mean, rstd, undefined, dim)
}

/** out = x + gate[b] branch. */
export const gatedResidual = (out: Floats, x: Floats, gate: Floats, branch: Floats, { batch, tokens, dim }: TokenSizes): void => {
  for (let b = 0; b < batch; b++)
    for (let l = 0; l < tokens; l++)
      for (let j = 0; j < dim; j++) {
        const at = (b * tokens + l) * dim + j
        out[at] = (x[at] as number) + (gate[b * dim + j] as number) * (branch[at] as number)
      }
}

/** Writes dgate[b] = sum_tokens dout branch, dbranch = dout gate[b]. */
export const gatedResidualBackward = (
  dgate: Floats,
  dbranch: Floats,
  dout: Floats,
  gate: Floats,
  branch: Floats,
  { batch, tokens, dim }: TokenSizes
): void => {
  for (let b = 0; b < batch; b++)
    for (let j = 0; j < dim; j++) {
      const g = gate[b * dim + j] as number
      let acc = 0
      for (let l = 0; l < tokens; l++) {
        const at = (b * tokens + l) * dim + j
        dbranch[at] = (dout[at] as number) * g
        acc += (dout[at] as number) * (branch[at] as number)
      }
      dgate[b * dim + j] = acc
    }
}
