import { normalFromBlock, philox4x32, uniformFromBits } from "./philox.ts"
import type { Floats } from "./storage.ts"

const TWO_32 = 4294967296

/**
 * Calls store(i, block, lane) for every element: element i uses Philox block (offset + floor(i / 4)), lane
 * i % 4. The block counter is carried in two 32-bit words, so offsets near 2^53 wrap like the native uint64.
 */
const forEachLane = (
  n: number,
  seed: number,
  offset: number,
  store: (i: number, block: Uint32Array, lane: number) => void
): void => {
  const key0 = seed >>> 0
  const key1 = Math.floor(seed / TWO_32) >>> 0
  const offsetLo = offset >>> 0
  const offsetHi = Math.floor(offset / TWO_32)
  const counter = [0, 0, 0, 0]
  const block = new Uint32Array(4)
  for (let index = 0; index * 4 < n; index++) {
    const lo = offsetLo + (index % TWO_32)
    counter[0] = lo >>> 0
    counter[1] = (offsetHi + Math.floor(index / TWO_32) + (lo >= TWO_32 ? 1 : 0)) >>> 0
    philox4x32(counter, key0, key1, block)
    for (let lane = 0; lane < 4 && index * 4 + lane < n; lane++) store(index * 4 + lane, block, lane)
  }
}

export const randomUniform = (out: Floats, seed: number, offset: number): void =>
  forEachLane(out.length, seed, offset, (i, block, lane) => {
    out[i] = uniformFromBits(block[lane] as number)
  })

export const randomNormal = (out: Floats, seed: number, offset: number): void =>
  forEachLane(out.length, seed, offset, (i, block, lane) => {
    out[i] = normalFromBlock(block, lane)
  })
