import { Effect, type Scope } from "effect"
import type { KernelError } from "../kernels/errors.ts"
import { Kernels } from "../kernels/Kernels.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import { type DiffOp, type Node, nodeOutputs } from "./records.ts"
import { type BackwardRule, backwardRules } from "./rules.ts"
import type { Tape } from "./tape.ts"

/** Gradients of the parameters (tensors with requiresGrad) a loss depends on. */
export type Gradients = ReadonlyMap<Tensor, Tensor>

/**
 * Reverse pass over the tape: seeds d(loss) = 1 (for a non-scalar loss, the gradient of its sum), applies
 * each node's rule, accumulates gradients of inputs used more than once, and releases an intermediate
 * gradient as soon as nothing refers to it. Everything it allocates belongs to the caller's Scope.
 *
 * A rule whose kernel can add its gradient to another tensor (linear's, LayerNorm's) asks for the input's
 * gradient so far (`baseOf`) and returns the total; every other accumulation is one `add`.
 */
export const backward = (loss: Tensor, tape: Tape): Effect.Effect<Gradients, KernelError, Kernels | Scope.Scope> =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const grads = new Map<Tensor, Tensor>()
    const uses = new Map<Tensor, number>()
    const hold = (t: Tensor) => uses.set(t, (uses.get(t) ?? 0) + 1)
    const drop = (t: Tensor) => {
      const left = (uses.get(t) ?? 0) - 1
      if (left > 0) return void uses.set(t, left)
      uses.delete(t)
      t.release()
    }
    if (!tape.requiresGrad(loss)) return grads
    const seed = yield* k.full(loss.shape, 1)
    grads.set(loss, seed)
    hold(seed)
    for (let i = tape.nodes.length - 1; i >= 0; i--) {
      const node = tape.nodes[i] as Node
      const outputs = nodeOutputs(node)
      if (!outputs.some((output) => grads.has(output))) continue
      const g = grads.get(node.output) ?? (yield* k.zeros(node.output.shape, node.output.dtype))
      const inputs = node.inputs as ReadonlyArray<Tensor | undefined>
      const rule = backwardRules[node.op] as BackwardRule<DiffOp>
      // Inputs whose gradient so far the rule took as a base: what it returns for them is the total.
      const based = new Set<number>()
      const baseOf = (j: number) => {
        const input = inputs[j]
        // An input the node reads twice keeps the engine's adds, so its gradient so far is counted once.
        if (input === undefined || inputs.some((other, i) => i !== j && other === input)) return undefined
        const existing = grads.get(input)
        if (existing !== undefined) based.add(j)
        return existing
      }
      const inputGrads = yield* rule(node as never, g, k, (j) => tape.requiresGrad(inputs[j]), (output) => grads.get(output), baseOf)
      for (let j = 0; j < inputs.length; j++) {
        const input = inputs[j]
        const ig = inputGrads[j]
        if (input === undefined || ig === undefined || !tape.requiresGrad(input)) continue
        const existing = grads.get(input)
        if (existing === undefined || based.has(j)) {
          grads.set(input, ig)
          hold(ig)
          if (existing !== undefined) drop(existing)
        } else {
          const total = yield* k.add(existing, ig)
          grads.set(input, total)
          hold(total)
          drop(existing)
          // The part is spent once added, unless it is another gradient (a rule's pass-through) or goes on
          // to another input of this node.
          if (!uses.has(ig) && inputGrads.indexOf(ig, j + 1) === -1) ig.release()
        }
      }
      for (const output of outputs) {
        const og = grads.get(output)
        if (og === undefined || output.requiresGrad) continue
        grads.delete(output)
        drop(og)
      }
    }
    return new Map([...grads].filter(([t]) => t.requiresGrad))
  })
