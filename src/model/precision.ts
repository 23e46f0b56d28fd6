import type { DType } from "../tensor/dtype.ts"

/**
 * How the model computes. "f32": everything in f32. "bf16-mixed": the attention and MLP branches (their
 * linears, attention and GELU) run in bf16 with fp32 accumulation, on bf16 copies of the f32 master weights
 * made each forward pass; the residual stream, LayerNorm, adaLN, embeddings and the loss stay f32, and
 * gradients reach the master weights in f32 (the cast's backward), so AdamW and EMA are unchanged. A branch's
 * input leaves its LayerNorm (or adaLN) in bf16 and its output joins the f32 stream in the residual add (or
 * the gated residual): no activation is cast.
 */
export type Precision = "f32" | "bf16-mixed"

/** The element type of the branches that "bf16-mixed" moves to bf16. */
export const branchDtype = (precision: Precision): DType => (precision === "bf16-mixed" ? "bf16" : "f32")

