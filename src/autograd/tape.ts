import { Effect, FiberRef } from "effect"
import { GradEnabled } from "../tensor/gradMode.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import { type DiffOp, type Node, type OpRecord, nodeOutputs } from "./records.ts"

/**
 * The reverse-mode tape: differentiable ops (functional.ts) append a node when a tape is active, grad
 * mode is on and an input needs a gradient. Execution order is a topological order, so the backward pass
 * walks the nodes in reverse.
 */
export class Tape {
  readonly nodes: Array<Node> = []
  // A Set, not a WeakSet: the nodes hold these tensors for the tape's life anyway, so a Set keeps nothing alive
  // longer, and the collector need not treat thousands of entries a step as weak.
  readonly #tracked = new Set<Tensor>()

  /** True for parameters and for anything this tape derived from them. */
  requiresGrad(t: Tensor | undefined): boolean {
    return t !== undefined && (t.requiresGrad || this.#tracked.has(t))
  }

  /** Appends a node when an input needs a gradient (one function per tape, not one per op call). */
  readonly note: Note = (op, rec, output) => {
    if ((rec.inputs as ReadonlyArray<Tensor | undefined>).some((t) => this.requiresGrad(t))) this.push(op, rec, output)
    return output
  }

  push<K extends DiffOp>(op: K, record: OpRecord<K>, output: Tensor): void {
    const node = { op, output, ...record } as unknown as Node
    this.nodes.push(node)
    for (const produced of nodeOutputs(node)) this.#tracked.add(produced)
  }
}

export const CurrentTape: FiberRef.FiberRef<Tape | undefined> = FiberRef.unsafeMake<Tape | undefined>(undefined)

/** Runs an effect with a fresh tape and returns the tape with the result. */
export const withTape = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<readonly [A, Tape], E, R> =>
  Effect.suspend(() => {
    const tape = new Tape()
    return Effect.map(Effect.locally(effect, CurrentTape, tape), (a) => [a, tape] as const)
  })

/** Runs an effect without recording gradients (the critique's evaluation passes, sampling, EMA). */
export const noGrad = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.locally(effect, GradEnabled, false)

/** Appends a node for `output` to the tape it was made for when recording applies, and returns `output`. */
export type Note = <K extends DiffOp>(op: K, rec: OpRecord<K>, output: Tensor) => Tensor

const skip: Note = (_op, _rec, output) => output

/** The Note for a fiber's tape and grad mode: a node when a tape records and an input needs a gradient. */
export const noteOn = (tape: Tape | undefined, enabled: boolean): Note => (tape === undefined || !enabled ? skip : tape.note)

/**
 * Appends a node for `output` when recording applies, at most one per output on a tape: a value several uses
 * share (a weight's bf16 copy, see src/model/weightCopies.ts) gets one node, and the backward pass sums the
 * uses' gradients before it.
 */
export const recordOnce = <K extends DiffOp>(op: K, rec: OpRecord<K>, output: Tensor): Effect.Effect<void> =>
  FiberRef.getWith(CurrentTape, (tape) =>
    tape === undefined || tape.requiresGrad(output)
      ? Effect.void
      : FiberRef.getWith(GradEnabled, (enabled) => Effect.sync(() => void noteOn(tape, enabled)(op, rec, output)))
  )
