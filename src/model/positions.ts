/**
 * DiT's fixed 2D sin-cos position embedding for a grid x grid patch layout: half the channels encode the
 * row, half the column, each as [sin(p w_i), cos(p w_i)] with w_i = 10000^(-i / (dim/4)).
 * Returns [grid*grid, dim] row-major, computed on the host once per model.
 */
export const sinCosPositions2d = (grid: number, dim: number): Float32Array => {
  if (dim % 4 !== 0) throw new Error(`2D sin-cos positions need dim divisible by 4, got ${dim}`)
  const quarter = dim / 4
  const out = new Float32Array(grid * grid * dim)
  for (let row = 0; row < grid; row++)
    for (let col = 0; col < grid; col++) {
      const base = (row * grid + col) * dim
      for (let i = 0; i < quarter; i++) {
        const omega = 1 / 10000 ** (i / quarter)
        out[base + i] = Math.sin(row * omega)
        out[base + quarter + i] = Math.cos(row * omega)
        out[base + 2 * quarter + i] = Math.sin(col * omega)
        out[base + 3 * quarter + i] = Math.cos(col * omega)
      }
    }
  return out
}
