/**
 * npm run bench:gpu — selfe's CUDA backend against PyTorch on the same card in the same run (PyTorch's half
 * is bench/gpu_torch.py): GEMMs at DiT shapes (65536 tokens, widths 384/768/1152), attention forward and
 * forward+backward at L = 256/1024/4096 with head dims 64/128 (PyTorch's flash and cuDNN SDPA), LayerNorm +
 * adaLN modulate, and AdamW over 130M parameters, alone and fused with the EMA update (against
 * torch.optim.AdamW(fused=True), alone and followed by a foreach EMA). Inputs are random (never zeros) and
 * rotate through more memory than the L2 cache. Each row is prepared on every side at once (PyTorch's worker
 * process and selfe's devices: the table's, and the variant devices the row concerns), warmed up, then timed in
 * rounds of back-to-back calls between two synchronizes, the sides taking turns round by round in an order that
 * reverses every round; a side's time is its median round. The table comes last, then the GEMM rows on every
 * GEMM device (gemmAlgorithms "timed"; a 1 MiB cuBLASLt workspace, as PyTorch's), the attention rows on every
 * attention device ("mma.sync", determinism "run-to-run") beside PyTorch's, the optimizer's bandwidth, a whole
 * Self-E training step of DiT-S in f32 and in bf16-mixed (bench/trainStep.ts) beside its JS host path alone, and
 * issue 5's targets. `--only gemm,attention,layernorm,optimizer,step` runs some families of rows only.
 */
import { fileURLToPath } from "node:url"
import { liftBackend } from "../src/kernels/lift.ts"
import { type NativeStats, loadAddon } from "../src/kernels/native/binding.ts"
import { NativeBackend } from "../src/kernels/native/NativeBackend.ts"
import type { Tensor } from "../src/tensor/Tensor.ts"
import type { DType, Shape } from "../src/tensor/dtype.ts"
import { type GemmCase, gemmCases, gemmDevices, gemmInputs, randomTensor, smallWorkspaceDevice, timedGemmDevice } from "./gemmCases.ts"
import { noopAddon } from "./noopAddon.ts"
import { startTorchWorker } from "./torchWorker.ts"
import { secondsPerStep, stepBenchConfig, stepSchedules } from "./trainStep.ts"

const addon = loadAddon()
if (!addon.build.backends.split(",").includes("cuda") || addon.cudaDeviceCount() === 0) {
  console.error(
    `bench:gpu needs the CUDA backend and a GPU: build.backends is "${addon.build.backends}", ${addon.cudaDeviceCount()} CUDA device(s) usable`
  )
  process.exit(1)
}
const backend = new NativeBackend(addon, gemmDevices["selfe"])
// The GEMM rows run again on a device that times cuBLASLt's candidates per problem, and on one whose cuBLASLt
// workspace is PyTorch's 1 MiB against the table device's 32 MiB.
const timedGemmBackend = new NativeBackend(addon, gemmDevices[timedGemmDevice])
const smallWorkspaceBackend = new NativeBackend(addon, gemmDevices[smallWorkspaceDevice])
// The attention fwd+bwd rows run again on a device whose determinism is "run-to-run" (dq without atomics).
const runToRunBackend = new NativeBackend(addon, { backend: "cuda", determinism: "run-to-run" })
// The attention rows run again on a device whose attentionKernels is "mma.sync" (the FlashAttention-2-style
// tensor-core kernels, which "auto" replaces with warpgroup ones where the GPU is sm_90).
const mmaSyncBackend = new NativeBackend(addon, { backend: "cuda", attentionKernels: "mma.sync" })
// The attention rows (bf16, head dims 64 and 128) run on the kernels the device was created with (its option
// attentionKernels, by default SELFE_CUDA_ATTENTION).
const attentionKernels = {
  simt: 'CUDA cores (SIMT), attentionKernels "simt"',
  "mma.sync": 'tensor cores through mma.sync (FlashAttention-2 style), attentionKernels "mma.sync"',
  auto: 'attentionKernels "auto": warpgroup tensor cores (wgmma) where the GPU is sm_90, else mma.sync'
}[(backend.stats() as NativeStats).attentionKernels ?? "auto"]
console.log(`attention kernels: ${attentionKernels}`)

// --smoke: every row at a toy size and two reps, on both sides, to check the script end to end (on the CUDA
// emulator's addon, say); its times mean nothing.
const smoke = process.argv.includes("--smoke")
if (smoke) console.log("bench:gpu --smoke: toy sizes, the times mean nothing")

// --only FAMILY[,FAMILY]: only those families of rows (gemm, attention, layernorm, optimizer, step: the training
// steps), for a device call with time for some only; default all. Tables and targets of the others show "—".
const familyOf = { gemm: "gemm", attention: "attention", layerNormModulate: "layernorm", adamw: "optimizer", adamwEma: "optimizer" } as const
const allFamilies = ["gemm", "attention", "layernorm", "optimizer", "step"]
const onlyAt = process.argv.indexOf("--only")
const families = new Set(onlyAt < 0 ? allFamilies : (process.argv[onlyAt + 1] ?? "").split(","))
const unknownFamilies = [...families].filter((f) => !allFamilies.includes(f))
if (unknownFamilies.length > 0 || families.size === 0) {
  console.error(`bench:gpu: --only takes families of rows separated by commas (${allFamilies.join(", ")}); got ${JSON.stringify(process.argv[onlyAt + 1] ?? "")}`)
  process.exit(2)
}
if (onlyAt >= 0) console.log(`bench:gpu --only ${[...families].join(",")}: the other rows are not run`)

const L2_BYTES = 64 << 20
const TOKENS = smoke ? 256 : 65536

interface Case {
  readonly id: string
  readonly kind: "gemm" | "attention" | "layerNormModulate" | "adamw" | "adamwEma"
  readonly label: string
  readonly flops?: number
  readonly reps: number
  readonly [field: string]: unknown
}

/** How many input sets to rotate through so that together they exceed the L2 cache twice over. */
const setsFor = (bytesPerSet: number) => Math.max(2, Math.min(16, Math.ceil((2 * L2_BYTES) / Math.max(1, bytesPerSet))))
const repsFor = (flops: number, budget: number) => (smoke ? 2 : Math.max(2, Math.min(200, Math.round(budget / flops))))
let seed = 1
const random = (shape: Shape, dtype: DType, scale = 1, on: NativeBackend = backend): Tensor => randomTensor(on, shape, dtype, scale, seed++)

const allCases: Array<Case> = [...gemmCases(TOKENS, repsFor)]
for (const length of smoke ? [64, 128] : [256, 1024, 4096])
  for (const headDim of [64, 128])
    for (const withBackward of [false, true]) {
      const heads = smoke ? 2 : 1024 / headDim
      const batch = smoke ? 1 : 32768 / length
      const flops = 4 * batch * heads * length * length * headDim * (withBackward ? 3.5 : 1)
      allCases.push({
        id: `attention-${length}-${headDim}-${withBackward ? "fwdbwd" : "fwd"}`,
        kind: "attention",
        label: `attention ${withBackward ? "fwd+bwd" : "fwd"} L=${length} d=${headDim} B=${batch} H=${heads} bf16`,
        batch,
        length,
        heads,
        headDim,
        backward: withBackward,
        dtype: "bf16",
        flops,
        reps: repsFor(flops, 2e12)
      })
    }
// The fused op; f32 is what the model's residual stream runs in under bf16-mixed.
for (const dtype of ["bf16", "f32"] as const)
  allCases.push({ id: `layernorm-modulate-${dtype}`, kind: "layerNormModulate", label: `LayerNorm + modulate (fused) [${smoke ? "2x64" : "64x1024"}x1152] ${dtype}`, batch: smoke ? 2 : 64, length: smoke ? 64 : 1024, dim: 1152, dtype, reps: smoke ? 2 : 50 })
// A DiT-B-sized parameter list: 12 blocks of qkv, proj, MLP and adaLN weights with their biases (~130M).
const adamwShapes: Array<Shape> = []
for (let block = 0; block < (smoke ? 1 : 12); block++)
  adamwShapes.push([2304, 768], [2304], [768, 768], [768], [3072, 768], [3072], [768, 3072], [768], [4608, 768], [4608], [768], [768])
const adamwParams = adamwShapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0)
allCases.push({ id: "adamw", kind: "adamw", label: `AdamW ${(adamwParams / 1e6).toFixed(0)}M params in ${adamwShapes.length} tensors f32`, shapes: adamwShapes, reps: 20 })
// The training update's fused AdamW + EMA (adamwEma). PyTorch's side times fused AdamW alone (the issue's
// reference: target <= 0.8x) and fused AdamW followed by a _foreach_lerp_ EMA (the same work).
const emaDecay = 0.999
allCases.push({ id: "adamw-ema", kind: "adamwEma", label: `AdamW + EMA fused ${(adamwParams / 1e6).toFixed(0)}M params f32`, shapes: adamwShapes, emaDecay, reps: 20 })
const cases = allCases.filter((c) => families.has(familyOf[c.kind]))

/** A row's work on one selfe device: run(i) on input set i (of `sets`), and the release of its inputs. */
interface Work {
  readonly run: (set: number) => void
  readonly sets: number
  readonly release: () => void
}

/** A GEMM row (the first call builds the problem's plan, during the warm-up). */
const gemmWork = (c: Case, on: NativeBackend): Work => {
  const gemm = c as unknown as GemmCase
  const sets = setsFor((gemm.m * gemm.k + gemm.n * gemm.k) * (gemm.dtype === "bf16" ? 2 : 4))
  const inputs = Array.from({ length: sets }, () => gemmInputs(on, gemm, () => seed++))
  const run = gemm.gelu
    ? (i: number) => {
        const { x, w, b } = inputs[i]!
        const { y, pre } = on.linearGelu(x, w, b)
        y.release()
        pre.release()
      }
    : (i: number) => on.linear(inputs[i]!.x, inputs[i]!.w, inputs[i]!.b).release()
  return { run, sets, release: () => inputs.forEach(({ x, w, b }) => [x, w, b].forEach((t) => t.release())) }
}

/** An attention row: the forward, or the forward and the backward. */
const attentionWork = (c: Case, on: NativeBackend): Work => {
  const { batch, length, heads, headDim, backward } = c as unknown as { batch: number; length: number; heads: number; headDim: number; backward: boolean }
  const shape = [batch, length, heads, headDim]
  const sets = setsFor(4 * batch * length * heads * headDim * 2)
  const [qs, ks, vs, dos] = [0, 1, 2, 3].map(() => Array.from({ length: sets }, () => random(shape, "bf16", 1, on))) as [Tensor[], Tensor[], Tensor[], Tensor[]]
  const run = (i: number) => {
    const saved = on.attention(qs[i]!, ks[i]!, vs[i]!, {})
    if (backward) {
      const grads = on.attentionBackward(dos[i]!, qs[i]!, ks[i]!, vs[i]!, saved, {})
      for (const g of [grads.dq, grads.dk, grads.dv]) g.release()
    }
    saved.out.release()
    saved.lse.release()
  }
  return { run, sets, release: () => [...qs, ...ks, ...vs, ...dos].forEach((t) => t.release()) }
}

/** A LayerNorm + modulate row. */
const layerNormWork = (c: Case, on: NativeBackend): Work => {
  const { batch, length, dim, dtype } = c as unknown as { batch: number; length: number; dim: number; dtype: DType }
  const sets = setsFor(batch * length * dim * (dtype === "bf16" ? 2 : 4))
  const xs = Array.from({ length: sets }, () => random([batch, length, dim], dtype, 1, on))
  const shifts = Array.from({ length: sets }, () => random([batch, dim], dtype, 1, on))
  const scales = Array.from({ length: sets }, () => random([batch, dim], dtype, 1, on))
  const run = (i: number) => {
    const out = on.layerNormModulate(xs[i]!, shifts[i]!, scales[i]!, 1e-6)
    for (const t of [out.y, out.mean, out.rstd]) t.release()
  }
  return { run, sets, release: () => [...xs, ...shifts, ...scales].forEach((t) => t.release()) }
}

/** An optimizer row: AdamW, or AdamW fused with the EMA update, over the whole parameter list a call. */
const optimizerWork = (c: Case, on: NativeBackend): Work => {
  const params = adamwShapes.map((s) => random(s, "f32", 1, on))
  const grads = adamwShapes.map((s) => random(s, "f32", 1, on))
  const m = adamwShapes.map((s) => on.zeros(s))
  const v = adamwShapes.map((s) => on.zeros(s))
  const ema = c.kind === "adamwEma" ? adamwShapes.map((s) => random(s, "f32", 1, on)) : []
  let step = 0
  const hyper = () => ({ lr: 1e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01, step: ++step })
  const run = c.kind === "adamwEma" ? () => on.adamwEma({ params, grads, m, v, ema }, hyper(), emaDecay) : () => on.adamw({ params, grads, m, v }, hyper())
  return { run, sets: 1, release: () => [...params, ...grads, ...m, ...v, ...ema].forEach((t) => t.release()) }
}

const workFor = (c: Case, on: NativeBackend): Work => {
  switch (c.kind) {
    case "gemm":
      return gemmWork(c, on)
    case "attention":
      return attentionWork(c, on)
    case "layerNormModulate":
      return layerNormWork(c, on)
    case "adamw":
    case "adamwEma":
      return optimizerWork(c, on)
  }
}

/** A side of a row, prepared: each round answers seconds per call for each of the side's variants. */
interface Prepared {
  readonly round: () => Promise<Readonly<Record<string, number>>>
  readonly release: () => Promise<void>
}
/** One side of the comparison: PyTorch's worker, or a selfe device; prepare answers why not where it cannot. */
interface Side {
  readonly name: string
  readonly applies: (c: Case) => boolean
  readonly prepare: (c: Case) => Promise<Prepared | string>
}

const WARMUP_CALLS = 3
const reason = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** A selfe device as a side with one variant, `name` (the first call of a row, in the warm-up, builds its plans). */
const selfeSide = (name: string, on: NativeBackend, applies: (c: Case) => boolean = () => true): Side => ({
  name,
  applies,
  prepare: async (c) => {
    const work = workFor(c, on)
    let calls = 0
    const callsOf = async (count: number) => {
      for (let i = 0; i < count; i++) work.run(calls++ % work.sets)
      await on.sync()
    }
    try {
      await callsOf(WARMUP_CALLS)
    } catch (cause) {
      work.release()
      return reason(cause)
    }
    return {
      round: async () => {
        const start = performance.now()
        await callsOf(c.reps)
        return { [name]: (performance.now() - start) / 1000 / c.reps }
      },
      release: async () => work.release()
    }
  }
})

const torchWorker = await startTorchWorker(fileURLToPath(new URL("./gpu_torch.py", import.meta.url)), smoke ? ["--smoke"] : [])
if (typeof torchWorker === "string") console.error(`PyTorch's side did not run (${torchWorker}); the tables show selfe alone`)
else console.log(`PyTorch's side: torch ${torchWorker.version} on ${torchWorker.device}`)
/** PyTorch's worker as a side: its variants are the row's (flash and cuDNN for attention, say). */
const torchSide = (worker: Exclude<typeof torchWorker, string>): Side => ({
  name: "torch",
  applies: () => true,
  prepare: async (c) => {
    const variants = await worker.prepare(c)
    if (typeof variants === "string") return variants
    return {
      round: async () => {
        const times = await worker.round()
        if (typeof times === "string") throw new Error(times)
        return times
      },
      release: async () => void (await worker.release())
    }
  }
})
const isBackward = (c: Case) => c.kind === "attention" && (c as unknown as { backward: boolean }).backward
const sides: ReadonlyArray<Side> = [
  ...(typeof torchWorker === "string" ? [] : [torchSide(torchWorker)]),
  selfeSide("selfe", backend),
  selfeSide(timedGemmDevice, timedGemmBackend, (c) => c.kind === "gemm"),
  selfeSide(smallWorkspaceDevice, smallWorkspaceBackend, (c) => c.kind === "gemm"),
  selfeSide('selfe attentionKernels "mma.sync"', mmaSyncBackend, (c) => c.kind === "attention"),
  selfeSide('selfe determinism "run-to-run"', runToRunBackend, isBackward)
]

// Rounds a side times of each row. The sides take turns round by round, in an order that reverses every round
// (A B, B A, A B, ...), so a drift of the card's clocks over a row falls on every side alike. When each side timed
// its rounds in one block, the MLP down projections' ratio swung with the order within one run (1.34 with
// PyTorch's block first, 1.00 with selfe's; BENCHMARKS.md, seventh session).
const ROUNDS = smoke ? 2 : 6
const median = (xs: ReadonlyArray<number>) => {
  const sorted = [...xs].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
// Local time to the millisecond, as nvidia-smi stamps the clock samples scripts/gpu-check.sh takes beside the run.
const timeOfDay = () => {
  const now = new Date()
  return `${now.toTimeString().slice(0, 8)}.${String(now.getMilliseconds()).padStart(3, "0")}`
}
const ms = (s: number | undefined) => (s === undefined ? "—" : (s * 1e3).toFixed(3))

/** A row's timings: each variant's seconds per call in every round it ran, and why a side did not run. */
interface RowTimes {
  readonly rounds: ReadonlyMap<string, ReadonlyArray<number>>
  readonly failures: ReadonlyMap<string, string>
}
/** Times a row on every side it concerns, printing each variant's median and best as the row ends. */
const timeRow = async (c: Case): Promise<RowTimes> => {
  console.log(`${timeOfDay()} ${c.label}`)
  const rounds = new Map<string, Array<number>>()
  const failures = new Map<string, string>()
  const prepared: Array<{ readonly side: Side; readonly row: Prepared }> = []
  for (const side of sides.filter((s) => s.applies(c))) {
    const row = await side.prepare(c).catch(reason)
    if (typeof row === "string") failures.set(side.name, row)
    else prepared.push({ side, row })
  }
  for (let round = 0; round < ROUNDS; round++)
    for (const { side, row } of round % 2 === 0 ? prepared : [...prepared].reverse()) {
      if (failures.has(side.name)) continue
      try {
        for (const [variant, seconds] of Object.entries(await row.round())) rounds.set(variant, [...(rounds.get(variant) ?? []), seconds])
      } catch (cause) {
        failures.set(side.name, reason(cause))
      }
    }
  for (const { side, row } of prepared)
    await row.release().catch((cause) => console.log(`${side.name} could not release ${c.label}: ${reason(cause)}`))
  for (const [variant, times] of rounds)
    console.log(`${variant}  ${c.label}: median ${ms(median(times))} ms, best ${ms(Math.min(...times))} ms over ${times.length} rounds`)
  for (const [side, why] of failures) console.log(`${side}  ${c.label}: failed: ${why}`)
  return { rounds, failures }
}

const rows = new Map<string, RowTimes>()
for (const c of cases) rows.set(c.id, await timeRow(c))
/** A variant's median (or best) seconds per call on a row; undefined where it did not run. */
const timeOf = (id: string, variant: string, statistic: "median" | "best" = "median") => {
  const times = rows.get(id)?.rounds.get(variant)
  if (times === undefined || times.length === 0) return undefined
  return statistic === "median" ? median(times) : Math.min(...times)
}
const torchVariants = (id: string) => [...(rows.get(id)?.rounds.keys() ?? [])].filter((variant) => variant.startsWith("torch"))
/** A variant's time over PyTorch's quickest variant of the row (above 1: PyTorch is quicker), by the statistic. */
const ratioToTorch = (id: string, variant: string, statistic: "median" | "best" = "median") => {
  const theirs = torchVariants(id)
    .map((v) => timeOf(id, v, statistic))
    .filter((s): s is number => s !== undefined)
  const mine = timeOf(id, variant, statistic)
  return theirs.length === 0 || mine === undefined ? undefined : mine / Math.min(...theirs)
}
const fixed = (x: number | undefined, digits = 2) => (x === undefined ? "—" : x.toFixed(digits))

// Whole Self-E training steps of DiT-S, f32 against bf16-mixed (the GPU default), side by side, bf16-mixed again
// with attention on "mma.sync" (its bf16 attention is the one part of the step that kernel choice moves), and
// bf16-mixed on ops that do nothing (bench/noopAddon.ts): the JS host path alone on this machine's CPU, a floor
// under the step (a step near it is bound by the host; the host part alone cannot tell, as launches block once
// the GPU's queue is full).
const stepConfig = smoke
  ? stepBenchConfig({ data: { resolution: 32, batchSize: 2, prefetch: 0 }, model: { preset: "tiny" } })
  : stepBenchConfig()
// Steps, rounds and warm-up steps of each timing; 10 warm-up steps let the render workers start and warm up.
const stepRuns = smoke ? ([1, 1, 1] as const) : ([5, 3, 10] as const)
const stepKernels = liftBackend(backend)
const stepColumns = [
  { title: "f32", kernels: stepKernels, precision: "f32" },
  { title: "bf16-mixed", kernels: stepKernels, precision: "bf16-mixed" },
  { title: "bf16-mixed, mma.sync", kernels: liftBackend(mmaSyncBackend), precision: "bf16-mixed" },
  { title: "bf16-mixed, JS alone", kernels: liftBackend(new NativeBackend(noopAddon, { backend: "cuda" })), precision: "bf16-mixed" }
] as const
// A failure here (a kernel error in a whole step) is reported with the table, not instead of it.
const stepSeconds = await (async () => {
  if (!families.has("step")) return "not run (--only)"
  try {
    const times = []
    for (const column of stepColumns) {
      // Stamped like a row, so that scripts/gpu-clocks-summary.sh gives the step its clocks and the GPU's busy time.
      console.log(`${timeOfDay()} Self-E training step, ${column.title}`)
      times.push(await secondsPerStep(column.kernels, stepConfig, column.precision, ...stepRuns))
    }
    return times
  } catch (cause) {
    return reason(cause)
  }
})()
if (typeof torchWorker !== "string") await torchWorker.close()
// A device broken by a failed kernel may refuse to close; the tables below are what this run is for.
for (const device of [backend, timedGemmBackend, smallWorkspaceBackend, runToRunBackend, mmaSyncBackend])
  try {
    device.dispose()
  } catch (cause) {
    console.log(`closing a device failed: ${reason(cause)}`)
  }

const pad = (s: string, w: number) => s.padEnd(w)
const device = typeof torchWorker === "string" ? "CUDA device" : torchWorker.device
const version = typeof torchWorker === "string" ? "not run" : torchWorker.version
/** The rows' failures, each side's once, under the table they belong to. */
const failuresOf = (ofCases: ReadonlyArray<Case>, sideNames: ReadonlyArray<string>) => {
  for (const c of ofCases)
    for (const [side, why] of rows.get(c.id)?.failures ?? [])
      if (sideNames.includes(side)) console.log(`  ${side} failed on ${c.label}: ${why}`)
}
console.log(`\nselfe bench:gpu — ${device}, torch ${version}, ${new Date().toISOString().slice(0, 10)}`)
console.log(
  `ms per call, each side's median of ${ROUNDS} rounds, the sides taking turns round by round; ratio = selfe / quickest PyTorch ` +
    "(above 1: selfe is slower), of the medians and of the best rounds; TFLOP/s for selfe"
)
console.log(`attention rows: selfe on ${attentionKernels}`)
console.log(`${pad("case", 62)}${pad("selfe", 11)}${pad("TFLOP/s", 9)}${pad("torch", 11)}${pad("flash", 11)}${pad("cuDNN", 11)}${pad("ratio", 7)}of bests`)
for (const c of cases) {
  const mine = timeOf(c.id, "selfe")
  console.log(
    `${pad(c.label, 62)}${pad(ms(mine), 11)}${pad(c.flops === undefined || mine === undefined ? "" : (c.flops / mine / 1e12).toFixed(1), 9)}` +
      `${pad(ms(timeOf(c.id, "torch") ?? timeOf(c.id, "torch fused")), 11)}${pad(ms(timeOf(c.id, "torch flash")), 11)}${pad(ms(timeOf(c.id, "torch cuDNN")), 11)}` +
      `${pad(fixed(ratioToTorch(c.id, "selfe")), 7)}${fixed(ratioToTorch(c.id, "selfe", "best"))}`
  )
}
failuresOf(cases, ["selfe", "torch"])

// The GEMM rows on each GEMM device: cuBLASLt's heuristic first choice with a 32 MiB workspace (the table above),
// the quickest of its candidates, timed per problem (gemmAlgorithms "timed"), and its first choice within 1 MiB.
console.log(
  `\nGEMM rows: cuBLASLt's heuristic first choice (the table, 32 MiB workspace), the quickest of its candidates ` +
    `(gemmAlgorithms "timed"), and its first choice within PyTorch's 1 MiB workspace`
)
console.log(`${pad("case", 62)}${pad("heuristic", 11)}${pad("timed", 11)}${pad("1 MiB", 11)}${pad("torch", 11)}${pad("ratio", 8)}${pad("timed", 8)}1 MiB`)
const gemms = cases.filter((c) => c.kind === "gemm")
for (const c of gemms)
  console.log(
    `${pad(c.label, 62)}${pad(ms(timeOf(c.id, "selfe")), 11)}${pad(ms(timeOf(c.id, timedGemmDevice)), 11)}${pad(ms(timeOf(c.id, smallWorkspaceDevice)), 11)}` +
      `${pad(ms(timeOf(c.id, "torch")), 11)}${pad(fixed(ratioToTorch(c.id, "selfe")), 8)}${pad(fixed(ratioToTorch(c.id, timedGemmDevice)), 8)}` +
      `${fixed(ratioToTorch(c.id, smallWorkspaceDevice))}`
  )
failuresOf(gemms, [timedGemmDevice, smallWorkspaceDevice])

// The attention rows on each attention device beside PyTorch's backends: the table's kernels, mma.sync, and (for
// fwd+bwd) the run-to-run device, whose dq comes from a kernel of its own instead of atomics.
const mmaSync = 'selfe attentionKernels "mma.sync"'
const runToRun = 'selfe determinism "run-to-run"'
const over = (id: string, a: string, b: string) => {
  const [x, y] = [timeOf(id, a), timeOf(id, b)]
  return x === undefined || y === undefined ? undefined : x / y
}
console.log(`\nattention on the table's kernels (${attentionKernels}), on "mma.sync" and with determinism "run-to-run", against PyTorch's cuDNN backend`)
console.log(
  `${pad("case", 62)}${pad("selfe", 11)}${pad("mma.sync", 11)}${pad("run-to-run", 12)}${pad("cuDNN", 11)}` +
    `${pad("selfe / cuDNN", 15)}${pad("mma.sync / cuDNN", 18)}run-to-run / selfe`
)
const attentions = cases.filter((c) => c.kind === "attention")
for (const c of attentions)
  console.log(
    `${pad(c.label, 62)}${pad(ms(timeOf(c.id, "selfe")), 11)}${pad(ms(timeOf(c.id, mmaSync)), 11)}${pad(ms(timeOf(c.id, runToRun)), 12)}` +
      `${pad(ms(timeOf(c.id, "torch cuDNN")), 11)}${pad(fixed(over(c.id, "selfe", "torch cuDNN")), 15)}${pad(fixed(over(c.id, mmaSync, "torch cuDNN")), 18)}` +
      `${fixed(over(c.id, runToRun, "selfe"))}`
  )
failuresOf(attentions, [mmaSync, runToRun])

// The optimizer rows as memory traffic: AdamW reads p, g, m, v and writes p, m, v (7 fp32 words per
// parameter); AdamW + EMA also reads and writes the EMA (9). If both sides ran at the same bandwidth, the
// fused op would take 9/7 = 1.29x torch's fused AdamW, so the issue's <= 0.8x needs torch far from bandwidth.
const bandwidth = (words: number, seconds: number | undefined) =>
  seconds === undefined ? "—" : `${((words * 4 * adamwParams) / seconds / 1e9).toFixed(0)} GB/s`
const fusedEma = timeOf("adamw-ema", "selfe")
const torchAdamW = timeOf("adamw-ema", "torch fused") ?? timeOf("adamw", "torch fused")
const torchAdamWEma = timeOf("adamw-ema", "torch fused + foreach EMA")
console.log(
  `\noptimizer, ${(adamwParams / 1e6).toFixed(0)}M fp32 params: selfe AdamW ${bandwidth(7, timeOf("adamw", "selfe"))} (7 words/param), ` +
    `selfe AdamW+EMA ${bandwidth(9, fusedEma)} (9), torch fused AdamW ${bandwidth(7, torchAdamW)} (7), ` +
    `torch fused AdamW + _foreach_lerp_ EMA ${bandwidth(9, torchAdamWEma)} (9, as two passes move 11)`
)
const optimizerRatio = fusedEma === undefined || torchAdamW === undefined ? undefined : fusedEma / torchAdamW
if (optimizerRatio !== undefined)
  console.log(
    `AdamW+EMA fused / torch fused AdamW alone = ${optimizerRatio.toFixed(2)}` +
      (torchAdamWEma === undefined ? "" : `; / torch fused AdamW + EMA = ${(fusedEma! / torchAdamWEma).toFixed(2)}`)
  )

const images = stepConfig.data.batchSize
const stepTitle = `Self-E training step, ${stepConfig.model.preset === "tiny" ? "the tiny DiT" : `DiT-${stepConfig.model.preset}`} on ${stepConfig.data.resolution}x${stepConfig.data.resolution} images, batch ${images}, fake score on`
if (typeof stepSeconds === "string") console.log(`\n${stepTitle}: ${families.has("step") ? "failed: " : ""}${stepSeconds}`)
else {
  console.log(
    `\n${stepTitle} (ms per step, best of ${stepRuns[1]} rounds of ${stepRuns[0]}, the schedules interleaved; ` +
      'the third column with attentionKernels "mma.sync", the last on ops that do nothing)'
  )
  console.log(`${pad("schedule", 34)}${stepColumns.map((column) => pad(column.title, 22)).join("")}bf16-mixed / f32`)
  const cell = (seconds: number) => pad(`${(seconds * 1e3).toFixed(1)} (${(images / seconds).toFixed(0)} img/s)`, 22)
  for (const schedule of stepSchedules) {
    const seconds = stepSeconds.map((times) => times.seconds.get(schedule) as number)
    console.log(`${pad(schedule, 34)}${seconds.map(cell).join("")}${((seconds[1] as number) / (seconds[0] as number)).toFixed(2)}`)
  }
  // Close to the step time: the step waits on the host (JS, rendering, or launches the GPU's queue holds back).
  console.log(`${pad("host part (render + enqueue)", 34)}${stepSeconds.map((times) => pad((times.hostSeconds * 1e3).toFixed(1), 22)).join("")}`)
}

// Issue 5's targets, last, from the rows above. Throughput against PyTorch is the inverse of the time ratio, so
// GEMM's >= 0.98x is a time ratio <= 1 / 0.98; the count by best rounds shows how much of the verdict is noise.
const withinGemm = (ratio: number | undefined) => ratio !== undefined && ratio <= 1 / 0.98
const plainGemms = gemms.filter((c) => c.gelu !== true)
const gemmMet = (statistic: "median" | "best", variant = "selfe") =>
  plainGemms.filter((c) => withinGemm(ratioToTorch(c.id, variant, statistic))).length
/** cuDNN's time over a variant's (its throughput as a fraction of cuDNN's). */
const ofCudnn = (id: string, variant: string) => {
  const fraction = over(id, variant, "torch cuDNN")
  return fraction === undefined ? undefined : 1 / fraction
}
const verdict = (met: boolean) => (met ? "met" : "missed")
console.log(`\nissue 5's targets on this card (selfe's throughput against PyTorch's, medians, from the tables above)`)
console.log(
  `GEMM >= 0.98x PyTorch at the DiT shapes: ${gemmMet("median")} of ${plainGemms.length} plain GEMM rows ` +
    `(by best rounds: ${gemmMet("best")}; gemmAlgorithms "timed": ${gemmMet("median", timedGemmDevice)}; ` +
    `gemmWorkspaceBytes 1 MiB: ${gemmMet("median", smallWorkspaceDevice)})`
)
for (const length of [256, 1024]) {
  const id = `attention-${length}-64-fwdbwd`
  const parts = [
    ["the table's kernels", "selfe"],
    ["mma.sync", mmaSync]
  ].map(([title, variant]) => {
    const fraction = ofCudnn(id, variant!)
    return `${title} ${fraction === undefined ? "—" : `${fraction.toFixed(3)}x (${verdict(fraction >= 0.7)})`}`
  })
  console.log(`attention fwd+bwd L=${length} d=64 >= 0.7x cuDNN: ${parts.join(", ")}`)
}
console.log(
  `AdamW+EMA fused <= 0.8x torch fused AdamW's time: ${optimizerRatio === undefined ? "—" : `${optimizerRatio.toFixed(2)}x (${verdict(optimizerRatio <= 0.8)})`}`
)
