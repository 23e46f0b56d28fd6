import type { Floats } from "./storage.ts"

/**
 * LayerNorm over the last dimension of [rows, dim]: biased variance, rstd = 1 / sqrt(var + eps), statistics
 * and the affine in double. weight and bias are optional and independent.
 */
export const layerNormForward = (
  y: Floats,
  mean: Floats,
  rstd: Floats,
  x: Floats,
  weight: Floats | undefined,
  bias: Floats | undefined,
  dim: number,
  eps: number
): void => {
  for (let r = 0; r < mean.length; r++) {
    const base = r * dim
    let sum = 0
    for (let j = 0; j < dim; j++) sum += x[base + j] as number
    const m = sum / dim
    let squares = 0
    for (let j = 0; j < dim; j++) {
      const centred = (x[base + j] as number) - m
      squares += centred * centred
    }
    const s = 1 / Math.sqrt(squares / dim + eps)
    for (let j = 0; j < dim; j++) {
      let v = ((x[base + j] as number) - m) * s
      if (weight !== undefined) v *= weight[j] as number
      if (bias !== undefined) v += bias[j] as number
      y[base + j] = v
    }
    mean[r] = m
    rstd[r] = s
  }
}

/**
 * Writes dx, and dweight / dbias when given, from the saved (stored) mean and rstd. With g = dy weight and
 * xhat = (x - mean) rstd: dx = rstd (g - mean_j g - xhat mean_j(g xhat)); dweight = sum_rows dy xhat;
 * dbias = sum_rows dy.
 */
export const layerNormBackward = (
  dx: Floats,
  dweight: Floats | undefined,
  dbias: Floats | undefined,
  dy: Floats,
  x: Floats,
  mean: Floats,
  rstd: Floats,
  weight: Floats | undefined,
  dim: number
): void => {
  const accWeight = new Float64Array(dim)
  const accBias = new Float64Array(dim)
  for (let r = 0; r < mean.length; r++) {
    const base = r * dim
    const m = mean[r] as number
    const s = rstd[r] as number
    let sumG = 0
    let sumGX = 0
    for (let j = 0; j < dim; j++) {
      const d = dy[base + j] as number
      const g = weight === undefined ? d : d * (weight[j] as number)
      const xhat = ((x[base + j] as number) - m) * s
      sumG += g
      sumGX += g * xhat
      accWeight[j] += d * xhat
      accBias[j] += d
    }
    const meanG = sumG / dim
    const meanGX = sumGX / dim
    for (let j = 0; j < dim; j++) {
      const d = dy[base + j] as number
      const g = weight === undefined ? d : d * (weight[j] as number)
      dx[base + j] = s * (g - meanG - ((x[base + j] as number) - m) * s * meanGX)
    }
  }
  dweight?.set(accWeight)
  dbias?.set(accBias)
}
