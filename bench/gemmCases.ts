/**
 * The GEMM rows of bench:gpu (bench/gpu.ts) at DiT shapes, shared with bench/gemmKernels.ts so that both time and
 * trace the same problems: for widths D = 384/768/1152, the block's qkv, proj, MLP up and MLP down products of
 * `tokens` rows (y = x W^T + b, W stored [out, in], as PyTorch's F.linear), bf16, the MLP up also in f32 and with
 * its GELU fused.
 */
import type { NativeBackend, NativeOptions } from "../src/kernels/native/NativeBackend.ts"
import type { Tensor } from "../src/tensor/Tensor.ts"
import type { DType, Shape } from "../src/tensor/dtype.ts"

export type GemmCase = {
  readonly id: string
  readonly kind: "gemm"
  readonly label: string
  readonly m: number
  readonly k: number
  readonly n: number
  readonly dtype: DType
  readonly gelu?: boolean
  readonly flops: number
  readonly reps: number
}

/** The rows for `tokens` rows of x; `repsFor(flops, budget)` is how many calls a round makes. */
export const gemmCases = (tokens: number, repsFor: (flops: number, budget: number) => number): Array<GemmCase> => {
  const cases: Array<GemmCase> = []
  for (const dim of [384, 768, 1152])
    for (const [name, k, n] of [
      ["qkv", dim, 3 * dim],
      ["proj", dim, dim],
      ["mlp up", dim, 4 * dim],
      ["mlp down", 4 * dim, dim]
    ] as const)
      for (const dtype of name === "mlp up" ? (["bf16", "f32"] as const) : (["bf16"] as const)) {
        const flops = 2 * tokens * k * n
        const shape = { kind: "gemm", m: tokens, k, n, dtype, flops } as const
        cases.push({ id: `gemm-${dim}-${name}-${dtype}`, label: `linear ${name} D=${dim} ${dtype} [${tokens}x${k}]x[${k}x${n}]`, ...shape, reps: repsFor(flops, dtype === "bf16" ? 2e13 : 2e12) })
        // The MLP's first layer as the model runs it: GEMM + bias + GELU (cuBLASLt epilogue) vs torch's two ops.
        if (name === "mlp up" && dtype === "bf16")
          cases.push({ id: `gemm-${dim}-${name}-gelu`, label: `linear + GELU ${name} D=${dim} bf16`, ...shape, gelu: true, reps: repsFor(flops, 2e13) })
      }
  return cases
}

// selfe's GEMM devices, by the names both scripts give them: the table's (cuBLASLt's heuristic first choice within
// the default 32 MiB workspace), one that times cuBLASLt's candidates per problem, and one with the 1 MiB
// workspace PyTorch's cuBLASLt path asks with (by its source).
export const timedGemmDevice = 'selfe gemmAlgorithms "timed"'
export const smallWorkspaceDevice = "selfe gemmWorkspaceBytes 1 MiB"
export const gemmDevices: Readonly<Record<string, NativeOptions>> = {
  selfe: { backend: "cuda", gemmAlgorithms: "heuristic" },
  [timedGemmDevice]: { backend: "cuda", gemmAlgorithms: "timed" },
  [smallWorkspaceDevice]: { backend: "cuda", gemmWorkspaceBytes: 1 << 20 }
}

/** A random normal tensor (never zeros) of the dtype, times `scale`, from the seed. */
export const randomTensor = (on: NativeBackend, shape: Shape, dtype: DType, scale: number, seed: number): Tensor => {
  const x = on.randomNormal(shape, { seed, offset: 0 })
  const scaled = scale === 1 ? x : on.scale(x, scale)
  if (scaled !== x) x.release()
  if (dtype === "f32") return scaled
  const cast = on.cast(scaled, dtype)
  scaled.release()
  return cast
}

/** A GEMM row's inputs on a device: x [m, k], W [n, k] scaled by 1/sqrt(k), b [n], each from the next seed. */
export const gemmInputs = (on: NativeBackend, c: GemmCase, nextSeed: () => number) => ({
  x: randomTensor(on, [c.m, c.k], c.dtype, 1, nextSeed()),
  w: randomTensor(on, [c.n, c.k], c.dtype, 1 / Math.sqrt(c.k), nextSeed()),
  b: randomTensor(on, [c.n], c.dtype, 1, nextSeed())
})
