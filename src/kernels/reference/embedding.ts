import { DeviceError } from "../errors.ts"
import type { Floats } from "./storage.ts"

/** Token embedding lookup, its scatter-add backward, and DiT's sinusoidal time embedding. */

/** Ids index the table directly, so one outside [0, vocab) is a device error (as the native kernel's). */
export const checkIds = (op: string, ids: Int32Array, vocab: number): void => {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as number
    if (id < 0 || id >= vocab)
      throw new DeviceError({ op, reason: `id ${id} at position ${i} is outside the vocabulary [0, ${vocab})` })
  }
}

/** out[i, :] = table[ids[i], :]; ids already checked. */
export const embedding = (out: Floats, table: Floats, ids: Int32Array, dim: number): void => {
  for (let i = 0; i < ids.length; i++) {
    const row = (ids[i] as number) * dim
    out.set(table.subarray(row, row + dim), i * dim)
  }
}

/** Writes dtable: each row the double sum, in position order, of the dout rows whose id names it. */
export const embeddingBackward = (dtable: Floats, dout: Floats, ids: Int32Array, dim: number): void => {
  const acc = new Float64Array(dtable.length)
  for (let i = 0; i < ids.length; i++) {
    const row = (ids[i] as number) * dim
    for (let j = 0; j < dim; j++) acc[row + j] += dout[i * dim + j] as number
  }
  dtable.set(acc)
}

/**
 * out[b, j] = cos(t_b f_j), out[b, half + j] = sin(t_b f_j), f_j = exp(-ln(maxPeriod) j / half),
 * half = floor(dim / 2); an odd dim's last column is 0 (DiT's order).
 */
export const timestepEmbedding = (out: Floats, t: Floats, dim: number, maxPeriod: number): void => {
  const half = Math.floor(dim / 2)
  const logPeriod = Math.log(maxPeriod)
  for (let b = 0; b < t.length; b++) {
    for (let j = 0; j < half; j++) {
      const angle = (t[b] as number) * Math.exp((-logPeriod * j) / half)
      out[b * dim + j] = Math.cos(angle)
      out[b * dim + half + j] = Math.sin(angle)
    }
    if (dim % 2 === 1) out[b * dim + dim - 1] = 0
  }
}
