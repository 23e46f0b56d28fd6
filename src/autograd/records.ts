import type { Shape } from "../tensor/dtype.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import type { ImageGeometry } from "../kernels/ops.ts"

type None = Record<string, never>

/**
 * What each differentiable op keeps on the tape: its inputs (gradients flow back to these, in order),
 * tensors saved for the backward, and scalar attributes.
 */
export interface OpRecords {
  add: { inputs: readonly [Tensor, Tensor]; saved: None; attrs: None }
  sub: { inputs: readonly [Tensor, Tensor]; saved: None; attrs: None }
  mul: { inputs: readonly [Tensor, Tensor]; saved: None; attrs: None }
  mulRows: { inputs: readonly [Tensor, Tensor]; saved: None; attrs: None }
  affine: { inputs: readonly [Tensor]; saved: None; attrs: { alpha: number } }
  axpy: { inputs: readonly [Tensor, Tensor]; saved: None; attrs: { alpha: number } }
  rowDot: { inputs: readonly [Tensor, Tensor]; saved: None; attrs: None }
  gelu: { inputs: readonly [Tensor]; saved: None; attrs: None }
  silu: { inputs: readonly [Tensor]; saved: None; attrs: None }
  layerNorm: {
    inputs: readonly [Tensor, Tensor | undefined, Tensor | undefined]
    saved: { mean: Tensor; rstd: Tensor }
    attrs: None
  }
  modulate: { inputs: readonly [Tensor, Tensor, Tensor]; saved: None; attrs: None }
  layerNormModulate: { inputs: readonly [Tensor, Tensor, Tensor]; saved: { mean: Tensor; rstd: Tensor }; attrs: None }
  gatedResidual: { inputs: readonly [Tensor, Tensor, Tensor]; saved: None; attrs: None }
  attention: {
    inputs: readonly [Tensor, Tensor, Tensor]
    saved: { out: Tensor; lse: Tensor; keyMask: Tensor | undefined }
    attrs: { scale: number; heads: number | undefined }
  }
  matmul: { inputs: readonly [Tensor, Tensor]; saved: None; attrs: { transA: boolean; transB: boolean; alpha: number } }
  linear: { inputs: readonly [Tensor, Tensor, Tensor | undefined]; saved: None; attrs: None }
  linearGelu: { inputs: readonly [Tensor, Tensor, Tensor | undefined]; saved: { pre: Tensor }; attrs: None }
  view: { inputs: readonly [Tensor]; saved: None; attrs: None }
  cast: { inputs: readonly [Tensor]; saved: None; attrs: None }
  patchify: { inputs: readonly [Tensor]; saved: None; attrs: { image: ImageGeometry } }
  unpatchify: { inputs: readonly [Tensor]; saved: None; attrs: { patch: number } }
  concat: { inputs: ReadonlyArray<Tensor>; saved: None; attrs: { axis: number } }
  narrow: { inputs: readonly [Tensor]; saved: None; attrs: { axis: number; start: number } }
  /** The one op with several outputs: the node's `output` is parts[0] (see nodeOutputs). */
  split: { inputs: readonly [Tensor]; saved: None; attrs: { axis: number; parts: ReadonlyArray<Tensor> } }
  pad: { inputs: readonly [Tensor]; saved: None; attrs: { axis: number; before: number } }
  embedding: { inputs: readonly [Tensor]; saved: { ids: Tensor }; attrs: None }
  sum: { inputs: readonly [Tensor]; saved: None; attrs: None }
  mean: { inputs: readonly [Tensor]; saved: None; attrs: None }
  sumAxis: { inputs: readonly [Tensor]; saved: None; attrs: { axis: number; shape: Shape } }
  mse: { inputs: readonly [Tensor, Tensor]; saved: None; attrs: None }
  mseRows: { inputs: readonly [Tensor, Tensor]; saved: None; attrs: { prefixRank: number } }
}

export type DiffOp = keyof OpRecords

export type OpRecord<K extends DiffOp> = OpRecords[K]

export type Node<K extends DiffOp = DiffOp> = K extends DiffOp ? { readonly op: K; readonly output: Tensor } & OpRecords[K] : never

/** Every tensor a node produced: split's parts, else its output. */
export const nodeOutputs = (node: Node): ReadonlyArray<Tensor> => (node.op === "split" ? node.attrs.parts : [node.output])
