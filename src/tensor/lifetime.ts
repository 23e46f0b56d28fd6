import { Effect, Scope } from "effect"
import { Tensor } from "./Tensor.ts"

/**
 * Tensors belong to the Effect Scope they were created in: a training step's activations to the step's
 * scope, parameters to the run's. Each scope gets one arena (a Set) and one finalizer that releases what
 * is left in it, so registering a tensor costs a Set insertion, not a finalizer per tensor.
 */
const arenas = new WeakMap<Scope.Scope, Set<Tensor>>()

const releaseArena = (arena: Set<Tensor>) =>
  Effect.sync(() => {
    // Newest first, the reverse of creation, as a stack of activations unwinds; one addon call for them all.
    const tensors = [...arena].reverse()
    arena.clear()
    Tensor.releaseAll(tensors)
  })

const arenaOf = (scope: Scope.Scope): Effect.Effect<Set<Tensor>> => {
  const existing = arenas.get(scope)
  if (existing !== undefined) return Effect.succeed(existing)
  const arena = new Set<Tensor>()
  arenas.set(scope, arena)
  return Effect.as(Scope.addFinalizer(scope, releaseArena(arena)), arena)
}

const place = (arena: Set<Tensor>, tensor: Tensor) => {
  tensor.arena?.delete(tensor)
  tensor.arena = arena
  arena.add(tensor)
}

/** Hands tensors to `scope`: they are released when it closes. Succeeds with `value` (the op's result). */
export const adopt = <A = void>(scope: Scope.Scope, tensors: Iterable<Tensor>, value?: A): Effect.Effect<A> => {
  const existing = arenas.get(scope)
  if (existing !== undefined) {
    for (const tensor of tensors) place(existing, tensor)
    return Effect.succeed(value as A)
  }
  return Effect.map(arenaOf(scope), (arena) => {
    for (const tensor of tensors) place(arena, tensor)
    return value as A
  })
}

/** Moves a tensor to an outer scope, e.g. the sample a sampling step produced, out of the step's scope. */
export const keepIn = (scope: Scope.Scope, tensor: Tensor): Effect.Effect<Tensor> =>
  adopt(scope, [tensor], tensor)
