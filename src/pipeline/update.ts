import { Effect } from "effect"
import { backward } from "../autograd/backward.ts"
import type { Tape } from "../autograd/tape.ts"
import { Kernels } from "../kernels/Kernels.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import type { RunContext } from "./context.ts"
import { emaDecayAt, learningRateAt } from "./schedules.ts"
import type { TrainState } from "./state.ts"

export interface Update {
  /** [] global gradient norm before clipping */
  readonly gradNorm: Tensor
  readonly learningRate: number
  readonly emaDecay: number
}

/**
 * Stage "update": gradients of the loss, global-norm clipping, AdamW at the scheduled learning rate, then
 * the EMA, all in place on the state's tensors. `step` is the 1-based number of this update.
 */
export const update = (ctx: RunContext, state: TrainState, loss: Tensor, tape: Tape, step: number) =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const config = ctx.config.optimizer
    const grads = yield* backward(loss, tape)
    // A parameter the loss did not reach (e.g. the fake flag's weight before its switch) gets a zero gradient.
    const gradients = yield* Effect.forEach(state.params.tensors, (p) => {
      const g = grads.get(p)
      return g === undefined ? k.zeros(p.shape) : Effect.succeed(g)
    })
    const gradNorm = yield* k.globalNorm(gradients)
    yield* k.clipByNorm(gradients, gradNorm, config.gradClip)
    const learningRate = learningRateAt(config, step, ctx.config.steps)
    const emaDecay = emaDecayAt(config, step)
    // AdamW, then the EMA toward the updated weights, in one pass over the parameters (adamwEma: the same
    // numbers as adamw followed by emaUpdate).
    yield* k.adamwEma(
      { params: state.params.tensors, grads: gradients, m: state.m.tensors, v: state.v.tensors, ema: state.ema.tensors },
      { lr: learningRate, beta1: config.beta1, beta2: config.beta2, eps: config.eps, weightDecay: config.weightDecay, step },
      emaDecay
    )
    return { gradNorm, learningRate, emaDecay } satisfies Update
  }).pipe(Effect.withSpan("update"))
