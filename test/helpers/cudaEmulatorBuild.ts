import { execFile, spawnSync } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { availableParallelism } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { rewriteDynamicShared, rewriteLaunches } from "./cudaLaunchRewrite.ts"

/**
 * Building the CUDA kernel files for the CPU emulator (test/native/cuda_emu): the repository's native/cuda
 * sources with their launches rewritten for the host, compiled by the host compiler against the emulator's
 * stand-ins for cuda_runtime.h, cuda_bf16.h and cublasLt.h. Shared by the kernel driver
 * (test/kernels/cudaEmulated.test.ts) and the emulated addon the GPU suite runs on (emulatedCudaAddon.ts).
 */

export const root = fileURLToPath(new URL("../..", import.meta.url))
export const compiler = process.env["CXX"] ?? "c++"

/** Why the emulator cannot be built and run here, or undefined where it can. */
export const emulatorUnavailable = (): string | undefined => {
  if (process.platform !== "linux") return "the emulator's shared-memory section and ucontext need Linux"
  const probe = spawnSync(compiler, ["--version"], { encoding: "utf8" })
  return probe.error === undefined && probe.status === 0 ? undefined : `no C++ compiler (${compiler}) can be run`
}

/** native/cuda's kernel files, in the order the build lists them. */
export const kernelFiles = (): Array<string> => readdirSync(join(root, "native/cuda")).filter((name) => /\.(cu|cuh)$/.test(name)).sort()

/** Writes native/cuda/*.cu{,h} into `folder`/cuda with launches and dynamic shared memory rewritten for the host. */
export const writeHostKernels = (folder: string): string => {
  const sources = join(folder, "cuda")
  mkdirSync(sources, { recursive: true })
  for (const name of kernelFiles())
    writeFileSync(join(sources, name), rewriteDynamicShared(rewriteLaunches(readFileSync(join(root, "native/cuda", name), "utf8"))))
  return sources
}

/** The include path of an emulated build: the stand-ins first, the rewritten kernels (as "cuda/..."), then the repository. */
export const emulatorIncludes = (folder: string): Array<string> => [
  "-I",
  "test/native/cuda_emu/include",
  "-I",
  "native/include",
  "-I",
  folder,
  "-I",
  "native",
  "-I",
  "native/cuda"
]

// -Wno-psabi: GCC notes the ABI of the CPU attention's 32-byte vectors without AVX, whatever its pragma says.
export const emulatorWarnings = ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-unknown-pragmas", "-Wno-psabi"]

/** Runs the jobs, at most `limit` at a time. */
export const pooled = async (jobs: ReadonlyArray<() => Promise<void>>, limit: number): Promise<void> => {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < jobs.length) await jobs[next++]!()
  }
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker))
}

export interface Unit {
  readonly source: string
  readonly object: string
  /** A .cu file, compiled as C++. */
  readonly cu: boolean
}

const run = promisify(execFile)

/**
 * Compiles the units with `args` (flags and include path), one per core, from the repository root. Throws
 * with the compiler's output on an error; returns the warnings, one entry per unit that had any.
 */
export const compileUnits = async (units: ReadonlyArray<Unit>, args: ReadonlyArray<string>): Promise<Array<string>> => {
  const warnings: Array<string> = []
  await pooled(
    units.map((unit) => async () => {
      const language = unit.cu ? ["-x", "c++"] : []
      const { stderr } = await run(compiler, [...args, "-c", ...language, unit.source, "-o", unit.object], { cwd: root, maxBuffer: 16 << 20 }).catch(
        (error: { stderr?: string }) => {
          throw new Error(`compiling ${unit.source}:\n${error.stderr ?? String(error)}`)
        }
      )
      if (stderr !== "") warnings.push(`${unit.source}:\n${stderr}`)
    }),
    Math.max(1, availableParallelism())
  )
  return warnings
}

/** Links `objects` into `output` with the extra arguments (libraries, -shared). */
export const link = async (output: string, objects: ReadonlyArray<string>, extra: ReadonlyArray<string>): Promise<void> => {
  await run(compiler, ["-o", output, ...objects, ...extra], { cwd: root, maxBuffer: 16 << 20 }).catch((error: { stderr?: string }) => {
    throw new Error(`linking ${output}:\n${error.stderr ?? String(error)}`)
  })
}
