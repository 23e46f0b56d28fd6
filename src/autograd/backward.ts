import { Effect, type Scope } from "effect"
import type { KernelError } from "../kernels/errors.ts"
import { Kernels } from "../kernels/Kernels.ts"
import { Tensor } from "../tensor/Tensor.ts"
import { type DiffOp, type Node, nodeOutputs } from "./records.ts"
import { type BackwardRule, backwardRules } from "./rules.ts"
import type { Tape } from "./tape.ts"

/** Gradients of the parameters (tensors with requiresGrad) a loss depends on. */
export type Gradients = ReadonlyMap<Tensor, Tensor>

/** A parameter's cast (its bf16 copy) met by the backward pass, and the copy's gradient. */
interface CastBack {
  readonly parameter: Tensor
  readonly g: Tensor
}

/**
 * Reverse pass over the tape: seeds d(loss) = 1 (for a non-scalar loss, the gradient of its sum), applies
 * each node's rule, accumulates gradients of inputs used more than once, and releases an intermediate
 * gradient as soon as nothing refers to it. Everything it allocates belongs to the caller's Scope.
 *
 * A rule whose kernel can add its gradient to another tensor (linear's, LayerNorm's) asks for the input's
 * gradient so far (`baseOf`) and returns the total; every other accumulation is one `add`. The casts of a
 * parameter (a master weight's bf16 copy) wait for the end of the pass: their gradients go back to the
 * parameters' dtype in one castAll.
 */
export const backward = (loss: Tensor, tape: Tape): Effect.Effect<Gradients, KernelError, Kernels | Scope.Scope> =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const grads = new Map<Tensor, Tensor>()
    const uses = new Map<Tensor, number>()
    const hold = (t: Tensor) => uses.set(t, (uses.get(t) ?? 0) + 1)
    // One holder lets go of t; says whether t is spent (nothing holds it any more).
    const letGo = (t: Tensor): boolean => {
      const left = (uses.get(t) ?? 0) - 1
      if (left > 0) {
        uses.set(t, left)
        return false
      }
      uses.delete(t)
      return true
    }
    const drop = (t: Tensor) => {
      if (letGo(t)) t.release()
    }
    // Takes ig as input's gradient where it is the first or a total (a rule took the sum so far as its base);
    // false where it has to be added (kept synchronous: this runs for every input of every node).
    const take = (input: Tensor, ig: Tensor, total: boolean): boolean => {
      const existing = grads.get(input)
      if (existing !== undefined && !total) return false
      grads.set(input, ig)
      hold(ig)
      if (existing !== undefined) drop(existing)
      return true
    }
    // Adds ig to input's gradient so far; the part is then spent unless something holds it or `reused` (it
    // is also another input's gradient of the same node).
    const add = (input: Tensor, ig: Tensor, reused: boolean) =>
      Effect.map(k.add(grads.get(input) as Tensor, ig), (sum) => {
        drop(grads.get(input) as Tensor)
        grads.set(input, sum)
        hold(sum)
        if (!uses.has(ig) && !reused) ig.release()
      })
    // Parameters' casts, waiting for the end of the pass: the parameter and its copy's gradient (held).
    const castsBack: Array<CastBack> = []
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
      const parameter = inputs[0]
      if (node.op === "cast" && parameter !== undefined && parameter.requiresGrad) {
        hold(g)
        castsBack.push({ parameter, g })
      } else {
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
          if (!take(input, ig, based.has(j))) yield* add(input, ig, inputGrads.indexOf(ig, j + 1) !== -1)
        }
      }
      for (const output of outputs) {
        const og = grads.get(output)
        if (og === undefined || output.requiresGrad) continue
        grads.delete(output)
        drop(og)
      }
    }
    // One castAll per pair of dtypes (in practice bf16 to f32).
    const pairs = new Map<string, Array<CastBack>>()
    for (const cast of castsBack) {
      const key = `${cast.g.dtype}>${cast.parameter.dtype}`
      const group = pairs.get(key) ?? []
      group.push(cast)
      pairs.set(key, group)
    }
    for (const casts of pairs.values()) {
      const copies = casts.map((c) => c.g)
      const back = yield* k.castAll(copies, (casts[0] as CastBack).parameter.dtype)
      // The copies' gradients are spent once castAll is enqueued: freed in one call (192 a DiT-S step, which cost
      // the addon more as 192 calls), before the adds below allocate.
      Tensor.releaseAll(copies.filter(letGo))
      for (const [n, { parameter }] of casts.entries()) {
        const ig = back[n] as Tensor
        if (!take(parameter, ig, false)) yield* add(parameter, ig, false)
      }
    }
    return new Map([...grads].filter(([t]) => t.requiresGrad))
  })
