import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { afterAll, beforeAll, it } from "vitest"
import { Kernels, type KernelsService } from "../../src/kernels/Kernels.ts"
import { liftBackend } from "../../src/kernels/lift.ts"
import { loadAddon } from "../../src/kernels/native/binding.ts"
import { NativeBackend } from "../../src/kernels/native/NativeBackend.ts"
import type { DType, Shape } from "../../src/tensor/dtype.ts"
import type { Tensor } from "../../src/tensor/Tensor.ts"
import { type Tolerance, expectClose } from "../helpers/compare.ts"
import { Gen } from "../helpers/gen.ts"
import { type Availability, cudaAvailability, describeWhen, rms, roundToBf16, runOn, torchAvailability } from "./cuda.ts"

/**
 * Attention and LayerNorm, forward and backward, on the CUDA backend against PyTorch (F.scaled_dot_product_
 * attention, F.layer_norm and autograd, in float64) on the same inputs, exchanged as raw files with
 * torch_reference.py. f32 storage must agree to ~1e-4; bf16 storage (inputs rounded to bf16 for both sides)
 * to ~1e-2 relative.
 */

const script = fileURLToPath(new URL("./torch_reference.py", import.meta.url))
const both = (): Availability => {
  const cuda = cudaAvailability()
  return cuda.available ? torchAvailability() : cuda
}

type HostTensor = { readonly shape: Shape; readonly data: Float32Array | Int32Array }
type TorchCase = { readonly name: string; readonly op: "attention" | "layerNorm"; readonly params: Record<string, number>; readonly inputs: Record<string, HostTensor> }

/** Runs torch_reference.py over the cases; returns each case's outputs by name. */
const torchReference = (cases: ReadonlyArray<TorchCase>) => {
  const folder = mkdtempSync(join(tmpdir(), "selfe-torch-"))
  try {
    const manifest = {
      cases: cases.map((c) => ({
        name: c.name,
        op: c.op,
        params: c.params,
        inputs: Object.fromEntries(
          Object.entries(c.inputs).map(([name, t]) => {
            const file = `${c.name}.${name}.in`
            writeFileSync(join(folder, file), new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))
            return [name, { shape: t.shape, dtype: t.data instanceof Int32Array ? "i32" : "f32", file }]
          })
        )
      }))
    }
    writeFileSync(join(folder, "manifest.json"), JSON.stringify(manifest))
    const run = spawnSync("python3", [script, folder], { encoding: "utf8", timeout: 300_000 })
    if (run.status !== 0) throw new Error(`torch_reference.py failed: ${run.stderr || run.error?.message}`)
    const outputs = JSON.parse(readFileSync(join(folder, "outputs.json"), "utf8")) as {
      cases: Record<string, Record<string, { shape: Array<number>; file: string }>>
    }
    return Object.fromEntries(
      Object.entries(outputs.cases).map(([name, outs]) => [
        name,
        Object.fromEntries(
          Object.entries(outs).map(([out, spec]) => {
            const bytes = readFileSync(join(folder, spec.file))
            return [out, new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))]
          })
        )
      ])
    ) as Record<string, Record<string, Float32Array>>
  } finally {
    rmSync(folder, { recursive: true, force: true })
  }
}

const numel = (shape: Shape) => shape.reduce((a, b) => a * b, 1)
const host = (g: Gen, shape: Shape, bf16: boolean, scale = 1): HostTensor => {
  const values = g.normals(numel(shape), scale)
  return { shape, data: Float32Array.from(bf16 ? values.map(roundToBf16) : values) }
}

const F32_TOL: Tolerance = { atol: 2e-4, rtol: 2e-4 }
const bf16Tol = (expected: Float32Array): Tolerance => ({ atol: 2e-2 * Math.max(rms(expected), 1e-3), rtol: 2e-2 })

let kernels: KernelsService
let backend: NativeBackend

const upload = (k: KernelsService, t: HostTensor, dtype: DType) =>
  t.data instanceof Int32Array ? k.fromArray(t.data, t.shape, "i32") : k.fromArray(t.data, t.shape, dtype)

const readAll = (k: KernelsService, named: Record<string, Tensor>) =>
  Effect.forEach(Object.entries(named), ([name, t]) => Effect.map(k.read(t), (data) => [name, Float32Array.from(data)] as const)).pipe(
    Effect.map((entries) => Object.fromEntries(entries))
  )

describeWhen(both(), "CUDA attention and LayerNorm against PyTorch (float64) on the same inputs", () => {
  beforeAll(() => {
    backend = new NativeBackend(loadAddon(), { backend: "cuda" })
    kernels = liftBackend(backend)
  })
  afterAll(() => backend?.dispose())

  const attentionConfigs = [
    { batch: 2, lq: 128, lk: 128, heads: 4, headDim: 64, masked: false },
    { batch: 2, lq: 257, lk: 100, heads: 2, headDim: 128, masked: true },
    { batch: 1, lq: 33, lk: 70, heads: 3, headDim: 80, masked: true }
  ]

  it("attention forward (out, lse) and backward (dq, dk, dv), f32 and bf16", async () => {
    const cases: Array<TorchCase & { dtype: DType }> = []
    attentionConfigs.forEach((c, i) => {
      for (const dtype of ["f32", "bf16"] as const) {
        const g = new Gen(100 + i)
        const bf16 = dtype === "bf16"
        const inputs: Record<string, HostTensor> = {
          q: host(g, [c.batch, c.lq, c.heads, c.headDim], bf16),
          k: host(g, [c.batch, c.lk, c.heads, c.headDim], bf16),
          v: host(g, [c.batch, c.lk, c.heads, c.headDim], bf16),
          dout: host(g, [c.batch, c.lq, c.heads, c.headDim], bf16)
        }
        // Every batch keeps at least its first key: PyTorch gives NaN for a row with none (selfe gives 0).
        if (c.masked)
          inputs["key_mask"] = { shape: [c.batch, c.lk], data: Int32Array.from({ length: c.batch * c.lk }, (_, j) => (j % c.lk === 0 || g.int(0, 2) > 0 ? 1 : 0)) }
        cases.push({ name: `attention${i}${dtype}`, op: "attention", params: { scale: 1 / Math.sqrt(c.headDim) }, inputs, dtype })
      }
    })
    const reference = torchReference(cases)
    for (const c of cases) {
      const ours = await runOn(
        kernels,
        Effect.gen(function* () {
          const k = yield* Kernels
          const [q, kk, v, dout] = yield* Effect.forEach(["q", "k", "v", "dout"], (n) => upload(k, c.inputs[n]!, c.dtype))
          const keyMask = c.inputs["key_mask"] === undefined ? undefined : yield* upload(k, c.inputs["key_mask"], "i32")
          const options = { keyMask, scale: c.params["scale"] }
          const saved = yield* k.attention(q!, kk!, v!, options)
          const grads = yield* k.attentionBackward(dout!, q!, kk!, v!, saved, options)
          return yield* readAll(k, { out: saved.out, lse: saved.lse, dq: grads.dq, dk: grads.dk, dv: grads.dv })
        })
      )
      for (const name of ["out", "lse", "dq", "dk", "dv"]) {
        const expected = reference[c.name]![name]!
        expectClose(ours[name]!, expected, c.dtype === "f32" ? F32_TOL : bf16Tol(expected), `${c.name} ${name}`)
      }
    }
  })

  it("LayerNorm forward (y, mean, rstd) and backward (dx, dweight, dbias), f32 and bf16", async () => {
    const cases: Array<TorchCase & { dtype: DType }> = []
    for (const [i, dim] of [384, 1152, 77].entries())
      for (const dtype of ["f32", "bf16"] as const) {
        const g = new Gen(200 + i)
        const bf16 = dtype === "bf16"
        cases.push({
          name: `layerNorm${i}${dtype}`,
          op: "layerNorm",
          params: { eps: 1e-6 },
          inputs: { x: host(g, [4, 129, dim], bf16, 3), weight: host(g, [dim], bf16), bias: host(g, [dim], bf16), dy: host(g, [4, 129, dim], bf16) },
          dtype
        })
      }
    const reference = torchReference(cases)
    for (const c of cases) {
      const ours = await runOn(
        kernels,
        Effect.gen(function* () {
          const k = yield* Kernels
          const [x, weight, bias, dy] = yield* Effect.forEach(["x", "weight", "bias", "dy"], (n) => upload(k, c.inputs[n]!, c.dtype))
          const saved = yield* k.layerNorm(x!, { weight, bias, eps: c.params["eps"]! })
          const grads = yield* k.layerNormBackward(dy!, x!, saved, { weight, withBias: true })
          return yield* readAll(k, { y: saved.y, mean: saved.mean, rstd: saved.rstd, dx: grads.dx, dweight: grads.dweight!, dbias: grads.dbias! })
        })
      )
      for (const name of ["y", "mean", "rstd", "dx", "dweight", "dbias"]) {
        const expected = reference[c.name]![name]!
        // Column sums over 516 rows: an absolute floor scaled by their size.
        const tol = c.dtype === "f32" ? { atol: name.startsWith("d") ? 2e-3 : 2e-4, rtol: 2e-4 } : bf16Tol(expected)
        expectClose(ours[name]!, expected, tol, `${c.name} ${name}`)
      }
    }
  })
})
