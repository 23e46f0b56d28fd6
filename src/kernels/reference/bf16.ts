/**
 * bf16 as the CUDA backend stores it: the top 16 bits of an f32, rounded to nearest even (NaN stays NaN).
 * The reference keeps bf16 tensors in a Float32Array holding only bf16-representable values.
 */
const word = new Float32Array(1)
const bits = new Uint32Array(word.buffer)

export const roundToBf16 = (value: number): number => {
  word[0] = value
  const b = bits[0] as number
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) return Number.NaN
  // Adding 0x7fff plus the lowest kept bit rounds half to even; overflow carries into the exponent (to inf).
  bits[0] = ((b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000) >>> 0
  return word[0] as number
}

/** Rounds every element to bf16 in place. */
export const roundArrayToBf16 = (values: Float32Array): void => {
  for (let i = 0; i < values.length; i++) values[i] = roundToBf16(values[i] as number)
}
