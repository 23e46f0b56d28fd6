import { Effect } from "effect"
import * as F from "../../src/autograd/functional.ts"
import { backward } from "../../src/autograd/backward.ts"
import { withTape } from "../../src/autograd/tape.ts"
import { batchRenderer } from "../../src/data/stream.ts"
import { Kernels } from "../../src/kernels/Kernels.ts"
import { makeModel } from "../../src/model/model.ts"
import type { Precision } from "../../src/model/precision.ts"
import { initializeParams, type ParamSet } from "../../src/nn/params.ts"
import { prepareBatch } from "../../src/pipeline/prepare.ts"
import { modelSpecFor } from "../../src/pipeline/train.ts"
import type { Tensor } from "../../src/tensor/Tensor.ts"
import { tinyConfig } from "./tinyRun.ts"

/** The tiny model and batch the mixed-precision tests compare f32 and bf16-mixed on (CPU and GPU suites). */

const config = tinyConfig()
export const spec = modelSpecFor(config)

/** Every weight random (adaLN-Zero's zero gates would leave the bf16 branches silent); Philox, so the same on every backend. */
export const randomParams = Effect.gen(function* () {
  const model = yield* makeModel(spec)
  return yield* initializeParams(model.paramSpecs.map((p) => ({ ...p, init: { kind: "normal" as const, std: 0.3 } })), 11)
})

export const modelInputs = Effect.gen(function* () {
  const prepared = yield* prepareBatch(spec, config.objective, config.seed, batchRenderer(config.data).render(0), 1)
  return { x: prepared.x0, t: prepared.t, gap: prepared.gap, text: prepared.cond, fake: prepared.fakeOff }
})

/** The velocity and the gradient of mse(V, 0) for every parameter, as host arrays with their dtypes. */
export const forwardBackward = (params: ParamSet, precision: Precision) =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const model = yield* makeModel(spec, precision)
    const inputs = yield* modelInputs
    const [[velocity, loss], tape] = yield* withTape(
      Effect.gen(function* () {
        const v = yield* model.velocity(params, inputs)
        return [v, yield* F.mse(v, yield* k.zeros(v.shape))] as const
      })
    )
    const grads = yield* backward(loss, tape)
    const host = (t: Tensor) => Effect.map(k.read(t), (d) => ({ dtype: t.dtype, values: Array.from(d) }))
    return {
      velocity: yield* host(velocity),
      grads: yield* Effect.forEach(params.tensors, (p) => host(grads.get(p) as Tensor))
    }
  })

/** ||actual - expected|| / ||expected|| over all elements. */
export const relativeError = (actual: ReadonlyArray<number>, expected: ReadonlyArray<number>) => {
  let diff = 0
  let norm = 0
  expected.forEach((e, i) => {
    diff += ((actual[i] as number) - e) ** 2
    norm += e ** 2
  })
  return Math.sqrt(diff / norm)
}
