import { execFile } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { availableParallelism, tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { compileUnits, emulatorIncludes, emulatorUnavailable, emulatorWarnings, link, pooled, writeHostKernels } from "../helpers/cudaEmulatorBuild.ts"
import { rewriteDynamicShared, rewriteLaunches } from "../helpers/cudaLaunchRewrite.ts"

/**
 * The CUDA backend's kernel files run on the CPU. The repository's own native/cuda/*.cu and *.cuh, with only
 * their `<<<...>>>` launches and `extern __shared__` declarations rewritten into host calls
 * (test/helpers/cudaLaunchRewrite.ts), are compiled with the host compiler against the emulator of
 * test/native/cuda_emu/include (cuda_runtime.h / cuda_bf16.h stand-ins; every CUDA thread a coroutine, barriers
 * and warp shuffles exchanged between them, warps drifting apart between barriers on a seeded schedule, shared
 * memory NaN-filled per block, deadlocks and bad launch configurations reported) and mma_fragments_emu.cpp
 * (ldmatrix and mma.sync from the PTX ISA, for attention's tensor-core kernels), linked with the CPU backend's
 * kernels, and test/native/cuda_emu/driver.cpp checks each launcher against its CPU twin on ragged shapes (random
 * numbers, data movement and casts bit for bit, f32 ~1e-5, bf16 ~1e-2), the tensor-core attention kernels
 * against float64 attention ("attention-float64"), and matmul.cu on cublaslt_emu.cpp's cuBLASLt against float64
 * ("matmul"). What it cannot catch is listed in docs/cuda.md (Tests).
 */

const reason = emulatorUnavailable()

const families = ["layernorm", "adaln", "optim", "activation", "elementwise", "reduce", "random", "score", "layout", "embedding", "attention"] as const
// matmul.cu runs on cublaslt_emu.cpp's cuBLASLt and is checked against float64 (the CPU backend's GEMM needs
// OpenBLAS's headers), so it has no CPU twin to link.
const cudaFiles = [...families, "matmul"] as const
// The driver's runs: one per family, attention's tensor-core kernels against float64, and attention again on a
// device whose attentionKernels is "simt" (CUDA cores only), on one whose is "auto" on an sm_90 GPU (wgmma) and
// on one whose determinism is "run-to-run". The longest first: they run two or more at a time.
const cpuTwin = "matches the CPU backend (f32 and bf16, ragged shapes)"
const runs = [
  { name: "attention", check: cpuTwin },
  { name: "attention-float64", check: "(wgmma products alone; tensor-core kernels, atomic and run-to-run dq) matches float64 (masked, ragged, sliced grids)" },
  ...families.filter((family) => family !== "attention").map((family) => ({ name: family, check: cpuTwin })),
  { name: "matmul", check: "(on the cuBLASLt emulator) matches float64 products, fused epilogues and their fallbacks, workspace as the device says" },
  { name: "attention-simt", check: cpuTwin },
  { name: "attention-wgmma", check: cpuTwin },
  { name: "attention-run-to-run", check: cpuTwin }
] as const

interface Outcome {
  status: number | null
  stdout: string
  stderr: string
}
// Runs the program to its end, whatever its exit status.
const outcome = (program: string, args: ReadonlyArray<string>): Promise<Outcome> =>
  new Promise((resolve) => {
    execFile(program, args, { encoding: "utf8", timeout: 120_000, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      const code = (error as { code?: unknown } | null)?.code
      resolve({ status: error === null ? 0 : typeof code === "number" ? code : null, stdout, stderr: error !== null && stderr === "" ? String(error) : stderr })
    })
  })

describe("rewriting CUDA launches for the host", () => {
  it("turns <<<...>>> launches into ::emu::launch calls and leaves the rest alone", () => {
    expect(rewriteLaunches("  k<<<g, 256, 0, stream>>>(a, b);\n")).toBe("  ::emu::launch([&]() { k(a, b); }, g, 256, 0, stream);\n")
    expect(rewriteLaunches("if (x) columnPartials<kSums><<<dim3(a, b), block>>>(p.as<float>(), f(1, 2));")).toBe(
      "if (x) ::emu::launch([&]() { columnPartials<kSums>(p.as<float>(), f(1, 2)); }, dim3(a, b), block);"
    )
    expect(rewriteLaunches("{ ns::kernel<T, kD><<<gridFor(s, std::max<int64_t>(n, 1), 8), 32 * 4, bytes, s>>>(\n  x,\n  (y));")).toBe(
      "{ ::emu::launch([&]() { ns::kernel<T, kD>(\n  x,\n  (y)); }, gridFor(s, std::max<int64_t>(n, 1), 8), 32 * 4, bytes, s);"
    )
    expect(rewriteLaunches("a << b; c <<= 2;")).toBe("a << b; c <<= 2;")
    expect(() => rewriteLaunches("k<<<1, 1>>>;")).toThrow(/argument list/)
    expect(() => rewriteLaunches("k<<<1, 1")).toThrow(/unterminated/)
    expect(() => rewriteLaunches("k<<<1>>>(x);")).toThrow(/block size/)
  })

  it("turns extern __shared__ arrays into the emulator's dynamic shared memory", () => {
    expect(rewriteDynamicShared("  extern __shared__ float shared[];\n  x;")).toBe(
      "  float* const shared = static_cast<float*>(::emu::dynamicShared());\n  x;"
    )
    expect(rewriteDynamicShared("extern __shared__ __align__(16) unsigned char s[ ];")).toBe(
      "unsigned char* const s = static_cast<unsigned char*>(::emu::dynamicShared());"
    )
    // A macro's body without a semicolon on its line is left alone.
    const macro = "#define M(n) extern __shared__ __align__(16) unsigned char n[]\nint a;"
    expect(rewriteDynamicShared(macro)).toBe(macro)
    expect(() => rewriteDynamicShared("extern __shared__ float s[8];")).toThrow(/cannot rewrite/)
  })
})

describe.skipIf(reason !== undefined)("CUDA kernel files, emulated on the CPU, against the CPU backend", () => {
  let folder = ""
  let program = ""
  const outcomes = new Map<string, Promise<Outcome>>()
  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), "selfe-cuda-emu-"))
    const sources = writeHostKernels(folder)
    const units = [
      ...cudaFiles.map((family) => ({ source: join(sources, `${family}.cu`), object: join(folder, `cuda_${family}.o`), cu: true })),
      ...[...families, "pool"].map((family) => ({ source: `native/cpu/${family}.cpp`, object: join(folder, `cpu_${family}.o`), cu: false })),
      { source: "test/native/cuda_emu/mma_fragments_emu.cpp", object: join(folder, "mma_fragments_emu.o"), cu: false },
      { source: "test/native/cuda_emu/wgmma_emu.cpp", object: join(folder, "wgmma_emu.o"), cu: false },
      { source: "test/native/cuda_emu/cublaslt_emu.cpp", object: join(folder, "cublaslt_emu.o"), cu: false },
      { source: "test/native/cuda_emu/driver.cpp", object: join(folder, "driver.o"), cu: false }
    ]
    const warnings = await compileUnits(units, ["-std=c++17", "-O1", ...emulatorWarnings, ...emulatorIncludes(folder)])
    expect(warnings.join("\n"), "compiler warnings").toBe("")
    program = join(folder, "cuda_emulated")
    await link(program, units.map((unit) => unit.object), ["-lopenblas", "-lpthread"])
    // Every run starts now, as many at a time as there are cores; each test waits for its own.
    const jobs = runs.map(({ name }) => {
      let settle: (value: Outcome) => void = () => undefined
      outcomes.set(name, new Promise<Outcome>((resolve) => (settle = resolve)))
      return async () => settle(await outcome(program, [name]))
    })
    void pooled(jobs, Math.max(2, availableParallelism()))
  }, 240_000)
  afterAll(() => {
    if (folder !== "") rmSync(folder, { recursive: true, force: true })
  })

  it.each(runs)("$name $check", async ({ name }) => {
    const result = await outcomes.get(name)!
    const failures = result.stdout.split("\n").filter((line) => !line.startsWith("ok "))
    expect(result.status, `${failures.join("\n")}\n${result.stderr}`).toBe(0)
    expect(result.stdout).toMatch(/all \d+ checks passed/)
  }, 180_000)
})

if (reason !== undefined) {
  console.warn(`[test/kernels] CUDA kernel emulation skipped: ${reason}`)
  describe("CUDA kernel files, emulated on the CPU, against the CPU backend", () => it.skip(`skipped: ${reason}`, () => undefined))
}
