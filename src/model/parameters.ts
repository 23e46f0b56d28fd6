import type { Init, ParamSpec } from "../nn/params.ts"
import type { ModelSpec } from "./config.ts"

/**
 * adaLN-Zero (DiT): every block's modulation and the final layer start at zero, so each block starts as
 * the identity and the network's first output is 0. These are all the zero-initialised weights; biases
 * are zero everywhere (see `bias` below).
 */
export const zeroInitialized = (name: string): boolean =>
  /^blocks\.\d+\.adaLN\.weight$/.test(name) || name === "final.adaLN.weight" || name === "final.linear.weight"

/** Small normals for embeddings and time MLPs, as DiT's initialize_weights. */
const EMBEDDING_STD = 0.02

const weight = (name: string, out: number, inFeatures: number, init: Init = { kind: "xavierUniform" }): ParamSpec => ({
  name,
  shape: [out, inFeatures],
  init: zeroInitialized(name) ? { kind: "zeros" } : init
})
const bias = (name: string, size: number): ParamSpec => ({ name, shape: [size], init: { kind: "zeros" } })
const linear = (name: string, out: number, inFeatures: number, init?: Init): ReadonlyArray<ParamSpec> => [
  weight(`${name}.weight`, out, inFeatures, init),
  bias(`${name}.bias`, out)
]
const layerNormAffine = (name: string, size: number): ReadonlyArray<ParamSpec> => [
  { name: `${name}.weight`, shape: [size], init: { kind: "ones" } },
  bias(`${name}.bias`, size)
]
const attentionBlock = (name: string, dim: number): ReadonlyArray<ParamSpec> => [
  ...linear(`${name}.q`, dim, dim),
  ...linear(`${name}.k`, dim, dim),
  ...linear(`${name}.v`, dim, dim),
  ...linear(`${name}.out`, dim, dim)
]
const mlp = (name: string, dim: number, hidden: number): ReadonlyArray<ParamSpec> => [
  ...linear(`${name}.fc1`, hidden, dim),
  ...linear(`${name}.fc2`, dim, hidden)
]
const timeMlp = (name: string, dim: number, features: number): ReadonlyArray<ParamSpec> => [
  ...linear(`${name}.fc1`, dim, features, { kind: "normal", std: EMBEDDING_STD }),
  ...linear(`${name}.fc2`, dim, dim, { kind: "normal", std: EMBEDDING_STD })
]

/** Every parameter of the text-conditioned two-time DiT, in a fixed order. */
export const modelParamSpecs = (spec: ModelSpec): ReadonlyArray<ParamSpec> => {
  const { dim, textDim, patch, channels } = spec
  const patchFeatures = patch * patch * channels
  return [
    ...linear("patch", dim, patchFeatures),
    ...timeMlp("time.t", dim, spec.timeFeatures),
    ...timeMlp("time.s", dim, spec.timeFeatures),
    // The tokenizer's vocabulary plus one learned null-prompt token (classifier-free guidance's phi).
    { name: "text.embed", shape: [spec.vocabSize + 1, textDim], init: { kind: "normal", std: EMBEDDING_STD } },
    { name: "text.pos", shape: [spec.maxTokens, textDim], init: { kind: "normal", std: EMBEDDING_STD } },
    ...Array.from({ length: spec.textDepth }, (_, i) => [
      ...layerNormAffine(`text.blocks.${i}.ln1`, textDim),
      ...attentionBlock(`text.blocks.${i}.attn`, textDim),
      ...layerNormAffine(`text.blocks.${i}.ln2`, textDim),
      ...mlp(`text.blocks.${i}.mlp`, textDim, 4 * textDim)
    ]).flat(),
    ...layerNormAffine("text.lnOut", textDim),
    ...linear("text.tokens", dim, textDim),
    ...linear("text.pooled", dim, textDim),
    // The learned fake-flag embedding: added to the conditioning of the fake-score branch.
    weight("fake.weight", dim, 1, { kind: "normal", std: EMBEDDING_STD }),
    ...Array.from({ length: spec.depth }, (_, i) => [
      ...linear(`blocks.${i}.adaLN`, 6 * dim, dim),
      ...attentionBlock(`blocks.${i}.attn`, dim),
      ...mlp(`blocks.${i}.mlp`, dim, spec.mlpRatio * dim)
    ]).flat(),
    ...linear("final.adaLN", 2 * dim, dim),
    ...linear("final.linear", patchFeatures, dim)
  ]
}
