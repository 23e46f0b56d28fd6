/**
 * Philox4x32-10 (Salmon et al., SC'11), bit for bit as native/include/selfe/philox.h, so the reference draws
 * the same numbers as the CPU and CUDA kernels. Words are plain numbers in [0, 2^32); no BigInt, since the
 * 64-bit products are split exactly: Math.imul gives the low word, 16-bit halves the high word.
 */

const MULTIPLIER_0 = 0xd2511f53
const MULTIPLIER_1 = 0xcd9e8d57
const WEYL_0 = 0x9e3779b9
const WEYL_1 = 0xbb67ae85
const TWO_32 = 4294967296
const TWO_23 = 8388608

/** High 32 bits of the 64-bit product of two uint32s; every partial product stays below 2^32 (exact). */
export const mulhi32 = (a: number, b: number): number => {
  const aLo = a & 0xffff
  const aHi = a >>> 16
  const bLo = b & 0xffff
  const bHi = b >>> 16
  const loHi = aLo * bHi
  const hiLo = aHi * bLo
  const middle = ((aLo * bLo) >>> 16) + (loHi & 0xffff) + (hiLo & 0xffff)
  return (aHi * bHi + (loHi >>> 16) + (hiLo >>> 16) + (middle >>> 16)) >>> 0
}

/** The Philox4x32-10 bijection of a full 128-bit counter under key (k0, k1); writes the 4 words into out. */
export const philox4x32 = (
  counter: ArrayLike<number>,
  key0: number,
  key1: number,
  out: Uint32Array = new Uint32Array(4)
): Uint32Array => {
  let c0 = (counter[0] as number) >>> 0
  let c1 = (counter[1] as number) >>> 0
  let c2 = (counter[2] as number) >>> 0
  let c3 = (counter[3] as number) >>> 0
  let k0 = key0 >>> 0
  let k1 = key1 >>> 0
  for (let round = 0; round < 10; round++) {
    const hi0 = mulhi32(MULTIPLIER_0, c0)
    const lo0 = Math.imul(MULTIPLIER_0, c0) >>> 0
    const hi1 = mulhi32(MULTIPLIER_1, c2)
    const lo1 = Math.imul(MULTIPLIER_1, c2) >>> 0
    c0 = (hi1 ^ c1 ^ k0) >>> 0
    c1 = lo1
    c2 = (hi0 ^ c3 ^ k1) >>> 0
    c3 = lo0
    k0 = (k0 + WEYL_0) >>> 0
    k1 = (k1 + WEYL_1) >>> 0
  }
  out[0] = c0
  out[1] = c1
  out[2] = c2
  out[3] = c3
  return out
}

/** One block of a stream: key = seed (lo, hi), counter = (block lo, block hi, 0, 0); seed, block < 2^53. */
export const philoxBlock = (seed: number, block: number, out: Uint32Array = new Uint32Array(4)): Uint32Array =>
  philox4x32([block >>> 0, Math.floor(block / TWO_32) >>> 0, 0, 0], seed >>> 0, Math.floor(seed / TWO_32) >>> 0, out)

/** 23 random bits to the centre of one of 2^23 cells of (0, 1): exact in f32, so never 0 or 1. */
export const uniformFromBits = (bits: number): number => ((bits >>> 9) + 0.5) / TWO_23

/** Box-Muller on lane pairs (0, 1) and (2, 3) in double: even lanes r cos(2 pi u2), odd lanes r sin. */
export const normalFromBlock = (block: Uint32Array, lane: number): number => {
  const pair = lane >> 1
  const u1 = uniformFromBits(block[pair * 2] as number)
  const u2 = uniformFromBits(block[pair * 2 + 1] as number)
  const radius = Math.sqrt(-2 * Math.log(u1))
  const angle = 6.283185307179586 * u2
  return (lane & 1) === 1 ? radius * Math.sin(angle) : radius * Math.cos(angle)
}
