/**
 * Rasterises a scene into the model's input layout: Float32 CHW in [-1, 1]. Edges are anti-aliased
 * by box-filter coverage from the signed distance at each pixel centre.
 */
import type { Scene } from "./scene.ts"
import { distanceFunction } from "./sdf.ts"
import { PALETTE } from "./world.ts"

/** Renders into `out` at `offset` (3 x size x size floats) and returns `out`. */
export const renderScene = (
  scene: Scene,
  out: Float32Array = new Float32Array(3 * scene.size * scene.size),
  offset = 0
): Float32Array => {
  const { size, background } = scene
  const plane = size * size
  const red = offset
  const green = offset + plane
  const blue = offset + 2 * plane
  for (let y = 0; y < size; y++) {
    const rampY = background.rampY * ((y + 0.5) / size - 0.5)
    for (let x = 0; x < size; x++) {
      const ramp = rampY + background.rampX * ((x + 0.5) / size - 0.5)
      const i = y * size + x
      out[red + i] = background.base[0] + ramp
      out[green + i] = background.base[1] + ramp
      out[blue + i] = background.base[2] + ramp
    }
  }
  for (const object of scene.objects) {
    const distance = distanceFunction(object.shape, object.width, object.height)
    const [r, g, b] = PALETTE[object.color]
    const x0 = Math.max(0, Math.floor(object.cx - object.width / 2 - 1))
    const x1 = Math.min(size - 1, Math.ceil(object.cx + object.width / 2 + 1))
    const y0 = Math.max(0, Math.floor(object.cy - object.height / 2 - 1))
    const y1 = Math.min(size - 1, Math.ceil(object.cy + object.height / 2 + 1))
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const coverage = 0.5 - distance(x + 0.5 - object.cx, y + 0.5 - object.cy)
        if (coverage <= 0) continue
        const alpha = coverage >= 1 ? 1 : coverage
        const i = y * size + x
        out[red + i] += alpha * (r - out[red + i])
        out[green + i] += alpha * (g - out[green + i])
        out[blue + i] += alpha * (b - out[blue + i])
      }
    }
  }
  for (let i = 0; i < 3 * plane; i++) out[offset + i] = 2 * out[offset + i] - 1
  return out
}
