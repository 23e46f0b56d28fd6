import { Effect } from "effect"
import * as F from "../autograd/functional.ts"
import type { DType } from "../tensor/dtype.ts"
import type { Tensor } from "../tensor/Tensor.ts"

/**
 * How the model computes. "f32": everything in f32. "bf16-mixed": the attention and MLP branches (their
 * linears, attention and GELU) run in bf16 with fp32 accumulation, on bf16 copies of the f32 master weights
 * made each forward pass; the residual stream, LayerNorm, adaLN, embeddings and the loss stay f32, and
 * gradients reach the master weights in f32 (the cast's backward), so AdamW and EMA are unchanged.
 */
export type Precision = "f32" | "bf16-mixed"

/** The element type of the branches that "bf16-mixed" moves to bf16. */
export const branchDtype = (precision: Precision): DType => (precision === "bf16-mixed" ? "bf16" : "f32")

/** x as `dtype`, recorded on the tape (its gradient comes back in x's dtype); x itself when it already is. */
export const castTo = (x: Tensor, dtype: DType): F.Op => (x.dtype === dtype ? Effect.succeed(x) : F.cast(x, dtype))
