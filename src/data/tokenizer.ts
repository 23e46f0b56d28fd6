/**
 * Word-level tokenizer over the committed vocabulary (data/shapeeval-vocab.json). Prompts become a
 * fixed-length row of ids padded with `pad` (id 0) plus a mask (1 = real token, 0 = padding).
 *
 * The empty prompt "" (classifier-free guidance's null condition) is all padding with an all-zero
 * mask. A text encoder must therefore handle a row with no real token: pool with a denominator of
 * max(1, sum(mask)) (giving a zero vector) and never let attention run over text keys alone.
 */
import { Schema } from "effect"
import vocabularyFile from "../../data/shapeeval-vocab.json" with { type: "json" }

export const Vocabulary = Schema.Struct({
  description: Schema.optional(Schema.String),
  pad: Schema.Int,
  unk: Schema.Int,
  tokens: Schema.Array(Schema.String).pipe(Schema.minItems(2))
}).pipe(
  Schema.filter((vocabulary) =>
    vocabulary.pad === 0 && vocabulary.unk > 0 && vocabulary.unk < vocabulary.tokens.length
      ? undefined
      : "pad must be id 0 and unk a valid id"
  )
)
export type Vocabulary = typeof Vocabulary.Type

/** The committed ShapeEval vocabulary, validated when this module loads. */
export const shapeEvalVocabulary: Vocabulary = Schema.decodeUnknownSync(Vocabulary)(vocabularyFile)

export interface EncodedPrompts {
  /** [count, maxLength] token ids. */
  readonly tokens: Int32Array
  /** [count, maxLength], 1 for a real token, 0 for padding. */
  readonly mask: Int32Array
}

export interface Tokenizer {
  readonly vocabulary: Vocabulary
  readonly maxLength: number
  /** Lower-cased words split on white space; unknown words map to `unk`; words past maxLength are dropped. */
  readonly words: (prompt: string) => ReadonlyArray<string>
  readonly ids: (prompt: string) => ReadonlyArray<number>
  /** Encodes prompts row by row into fresh arrays, or into `into` starting at row `firstRow`. */
  readonly encode: (prompts: ReadonlyArray<string>, into?: EncodedPrompts, firstRow?: number) => EncodedPrompts
}

export const makeTokenizer = (vocabulary: Vocabulary, maxLength: number): Tokenizer => {
  const idOf = new Map(vocabulary.tokens.map((token, id) => [token, id]))
  const words = (prompt: string) => prompt.toLowerCase().split(/\s+/).filter((word) => word.length > 0)
  const ids = (prompt: string) => words(prompt).slice(0, maxLength).map((word) => idOf.get(word) ?? vocabulary.unk)
  const encode = (prompts: ReadonlyArray<string>, into?: EncodedPrompts, firstRow = 0): EncodedPrompts => {
    const out = into ?? {
      tokens: new Int32Array(prompts.length * maxLength),
      mask: new Int32Array(prompts.length * maxLength)
    }
    prompts.forEach((prompt, row) => {
      const start = (firstRow + row) * maxLength
      out.tokens.fill(vocabulary.pad, start, start + maxLength)
      out.mask.fill(0, start, start + maxLength)
      ids(prompt).forEach((id, position) => {
        out.tokens[start + position] = id
        out.mask[start + position] = 1
      })
    })
    return out
  }
  return { vocabulary, maxLength, words, ids, encode }
}
