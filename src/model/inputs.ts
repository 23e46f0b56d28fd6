import { Effect, type Scope } from "effect"
import type { KernelError } from "../kernels/errors.ts"
import { Kernels } from "../kernels/Kernels.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import { type ModelSpec, imageTokens, nullTokenId } from "./config.ts"

/** The prompt side of the model's input, on the device. */
export interface TextInputs {
  /** [B, Lt] token ids (i32); a null-prompt row is the learned null token followed by padding. */
  readonly ids: Tensor
  /** [B, Lt] text key mask (i32, 1 = real token). */
  readonly mask: Tensor
  /** [B, Lt + Li] key mask of the joint stream: the text mask, then every image token. */
  readonly jointMask: Tensor
  /** [B, Lt] f32: mask / (number of real tokens), for the pooled text vector. */
  readonly poolWeights: Tensor
}

/** Everything V(x, t, s, c) reads. */
export interface ModelInputs {
  /** [B, C, H, W] */
  readonly x: Tensor
  /** [B] current time */
  readonly t: Tensor
  /** [B] t - s: how far the step jumps (0 for an ordinary denoiser call) */
  readonly gap: Tensor
  readonly text: TextInputs
  /** [B, 1] f32: 1 where the row asks for the fake score (c_fake), else 0. */
  readonly fake: Tensor
}

/** Host-side prompts: token rows from the tokenizer, and which rows are the empty prompt phi. */
export interface HostPrompts {
  readonly tokens: Int32Array
  readonly mask: Int32Array
  /** Rows replaced by the null prompt (prompt dropout, or the unconditional pass). */
  readonly nullRows: ReadonlyArray<boolean>
}

/** Builds the text inputs on the device; a row with no real token (the empty prompt) is treated as null. */
export const textInputs = (spec: ModelSpec, prompts: HostPrompts): Effect.Effect<TextInputs, KernelError, Kernels | Scope.Scope> =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const lt = spec.maxTokens
    const li = imageTokens(spec)
    const batch = prompts.tokens.length / lt
    const ids = new Int32Array(batch * lt)
    const mask = new Int32Array(batch * lt)
    const jointMask = new Int32Array(batch * (lt + li)).fill(1)
    const poolWeights = new Float32Array(batch * lt)
    for (let row = 0; row < batch; row++) {
      const rowMask = prompts.mask.subarray(row * lt, (row + 1) * lt)
      const isNull = (prompts.nullRows[row] ?? false) || rowMask.every((m) => m === 0)
      if (isNull) {
        ids[row * lt] = nullTokenId(spec)
        mask[row * lt] = 1
      } else {
        ids.set(prompts.tokens.subarray(row * lt, (row + 1) * lt), row * lt)
        mask.set(rowMask, row * lt)
      }
      const count = mask.subarray(row * lt, (row + 1) * lt).reduce((n, m) => n + m, 0)
      for (let j = 0; j < lt; j++) {
        jointMask[row * (lt + li) + j] = mask[row * lt + j] as number
        poolWeights[row * lt + j] = (mask[row * lt + j] as number) / count
      }
    }
    const idsTensor = yield* k.fromArray(ids, [batch, lt], "i32")
    // Named so op traces show which prompt a pass read (tests check the critique's two passes).
    idsTensor.name = prompts.nullRows.length > 0 && prompts.nullRows.every((n) => n) ? "null prompt ids" : "prompt ids"
    return {
      ids: idsTensor,
      mask: yield* k.fromArray(mask, [batch, lt], "i32"),
      jointMask: yield* k.fromArray(jointMask, [batch, lt + li], "i32"),
      poolWeights: yield* k.fromArray(poolWeights, [batch, lt])
    }
  })

/** The all-null prompt for `batch` rows (the unconditional branch). */
export const nullPrompts = (spec: ModelSpec, batch: number): HostPrompts => ({
  tokens: new Int32Array(batch * spec.maxTokens),
  mask: new Int32Array(batch * spec.maxTokens),
  nullRows: Array.from({ length: batch }, () => true)
})
