import { Effect, FiberRef } from "effect"
import { GradEnabled } from "../tensor/gradMode.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import type { DiffOp, Node, OpRecord } from "./records.ts"

/**
 * The reverse-mode tape: differentiable ops (functional.ts) append a node when a tape is active, grad
 * mode is on and an input needs a gradient. Execution order is a topological order, so the backward pass
 * walks the nodes in reverse.
 */
export class Tape {
  readonly nodes: Array<Node> = []
  readonly #tracked = new WeakSet<Tensor>()

  /** True for parameters and for anything this tape derived from them. */
  requiresGrad(t: Tensor | undefined): boolean {
    return t !== undefined && (t.requiresGrad || this.#tracked.has(t))
  }

  push<K extends DiffOp>(op: K, record: OpRecord<K>, output: Tensor): void {
    this.nodes.push({ op, output, ...record } as unknown as Node)
    this.#tracked.add(output)
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

/** Appends a node for `output` when recording applies. */
export const record = <K extends DiffOp>(op: K, rec: OpRecord<K>, output: Tensor): Effect.Effect<void> =>
  FiberRef.getWith(CurrentTape, (tape) =>
    tape === undefined
      ? Effect.void
      : FiberRef.getWith(GradEnabled, (enabled) => {
          if (enabled && (rec.inputs as ReadonlyArray<Tensor | undefined>).some((t) => tape.requiresGrad(t)))
            tape.push(op, rec, output)
          return Effect.void
        })
  )
