import { NodeContext } from "@effect/platform-node"
import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import { afterAll, beforeAll, expect, it } from "vitest"
import { Kernels, type KernelsService } from "../../src/kernels/Kernels.ts"
import { train } from "../../src/pipeline/train.ts"
import { forwardBackward, randomParams, relativeError } from "../helpers/mixedPrecision.ts"
import { recordingObserver } from "../helpers/observer.ts"
import { tinyConfig } from "../helpers/tinyRun.ts"
import { describeCuda, makeCudaAndCpu, runOn } from "./cuda.ts"

/**
 * The model and the Self-E training pipeline in mixed precision on the GPU: bf16-mixed velocities and
 * gradients of a random model against the CPU's f32 ones, and `precision: auto` (bf16-mixed on CUDA)
 * training with the losses of the CPU's f32 run of the same config.
 */

/** The losses and the start message of a short run of the tiny model on `kernels`. */
const run = (kernels: KernelsService, precision: "auto" | "f32") =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const outDir = yield* fs.makeTempDirectoryScoped()
        const { losses, messages, layer: observer } = recordingObserver()
        const config = tinyConfig({ outDir, steps: 4, precision, model: { preset: "tiny", dim: 128, depth: 2, heads: 2, patch: 4 } })
        yield* train(config).pipe(Effect.provide(observer), Effect.provideService(Kernels, kernels))
        return { losses, start: messages[0] ?? "" }
      }).pipe(Effect.provide(NodeContext.layer))
    )
  )

let backends: ReturnType<typeof makeCudaAndCpu>

describeCuda("Self-E training in mixed precision on CUDA", () => {
  beforeAll(() => {
    backends = makeCudaAndCpu()
  })
  afterAll(() => backends?.dispose())

  it("gives a random model's f32 velocity and gradients to bf16 accuracy, with f32 master gradients", async () => {
    const pass = (kernels: KernelsService, precision: "f32" | "bf16-mixed") => runOn(kernels, Effect.flatMap(randomParams, (params) => forwardBackward(params, precision)))
    const cpu = await pass(backends.cpu, "f32")
    const cudaF32 = await pass(backends.cuda, "f32")
    const mixed = await pass(backends.cuda, "bf16-mixed")
    expect(relativeError(cudaF32.velocity.values, cpu.velocity.values)).toBeLessThan(1e-4)
    const velocityError = relativeError(mixed.velocity.values, cpu.velocity.values)
    expect(velocityError).toBeGreaterThan(1e-4) // bf16 did run
    expect(velocityError).toBeLessThan(3e-2)
    expect(mixed.grads.every((g) => g.dtype === "f32")).toBe(true)
    const all = (grads: typeof cpu.grads) => grads.flatMap((g) => g.values)
    expect(relativeError(all(mixed.grads), all(cpu.grads))).toBeLessThan(3e-2)
  })

  it("defaults to bf16-mixed on CUDA and follows the CPU's f32 losses to ~3e-2", async () => {
    const f32 = await run(backends.cpu, "auto")
    const mixed = await run(backends.cuda, "auto")
    expect(f32.start).toMatch(/, f32$/)
    expect(mixed.start).toMatch(/, bf16-mixed$/)
    mixed.losses.forEach((loss, i) => expect(Math.abs(loss - f32.losses[i]!) / f32.losses[i]!, `loss of step ${i + 1}`).toBeLessThan(3e-2))
  })

  it("in f32 on CUDA gives the CPU's losses to 1e-3", async () => {
    const cpu = await run(backends.cpu, "f32")
    const cuda = await run(backends.cuda, "f32")
    cuda.losses.forEach((loss, i) => expect(Math.abs(loss - cpu.losses[i]!) / cpu.losses[i]!, `loss of step ${i + 1}`).toBeLessThan(1e-3))
  })
})
