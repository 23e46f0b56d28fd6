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

/** The arena of a scope that has none yet, with the finalizer that releases it. */
const newArena = (scope: Scope.Scope): Effect.Effect<Set<Tensor>> => {
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
  if (adoptNow(scope, tensors)) return Effect.succeed(value as A)
  return Effect.map(newArena(scope), (arena) => {
    for (const tensor of tensors) place(arena, tensor)
    return value as A
  })
}

/** Whether `scope` owns tensors already, so that adoptNow can hand it more. */
export const ownsTensors = (scope: Scope.Scope): boolean => arenas.has(scope)

/**
 * adopt without an Effect, for a scope that owns tensors already (its finalizer is in place): true when the
 * tensors are now the scope's, false (nothing done) for a scope's first tensors, which need adopt.
 */
export const adoptNow = (scope: Scope.Scope, tensors: Iterable<Tensor>): boolean => {
  const arena = arenas.get(scope)
  if (arena === undefined) return false
  for (const tensor of tensors) place(arena, tensor)
  return true
}

/** Moves a tensor to an outer scope, e.g. the sample a sampling step produced, out of the step's scope. */
export const keepIn = (scope: Scope.Scope, tensor: Tensor): Effect.Effect<Tensor> =>
  adopt(scope, [tensor], tensor)
