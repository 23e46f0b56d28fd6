import { createHash } from "node:crypto"
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, relative } from "node:path"
import { compileUnits, emulatorIncludes, emulatorWarnings, kernelFiles, link, root, writeHostKernels } from "./cudaEmulatorBuild.ts"

/**
 * The native addon with its CUDA backend on the CPU emulator: the N-API layer exactly as a CUDA build compiles
 * it (SELFE_WITH_CUDA), the CPU backend, and native/cuda's kernel files rewritten for the host, linked against
 * the emulator's CUDA runtime and cuBLASLt stand-ins (test/native/cuda_emu) instead of the real ones. The
 * vitest project "gpu-emulated" (vitest.config.ts) builds it here before its tests (global setup) and points
 * SELFE_NATIVE_ADDON at it, so the GPU suite's files run their CUDA cases on it: the N-API glue, the kernels'
 * launchers and the TypeScript above them end to end, without a GPU. One emulated device: each CUDA device's
 * launch thread runs its kernels as it launches them, one launch at a time across devices. Rebuilt only when a source, the emulator or the flags change.
 */

export const emulatedAddonFolder = join(root, "build-emu")
export const emulatedAddonPath = join(emulatedAddonFolder, "selfe_native.node")

const require = createRequire(import.meta.url)
const nodeApiHeaders = join(dirname(require.resolve("node-api-headers/package.json")), "include")
const nodeAddonApi = dirname(require.resolve("node-addon-api/package.json"))

const flags = [
  "-std=c++17",
  "-O2",
  "-fPIC",
  "-fexceptions",
  ...emulatorWarnings,
  "-DNAPI_VERSION=8",
  "-DNAPI_CPP_EXCEPTIONS",
  "-DNODE_ADDON_API_DISABLE_DEPRECATED",
  "-DSELFE_WITH_CUDA",
  '-DSELFE_BUILT_BACKENDS="cpu,cuda"'
]

const filesUnder = (folder: string): Array<string> =>
  readdirSync(join(root, folder), { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? filesUnder(join(folder, entry.name)) : [join(folder, entry.name)]))
    .sort()

/** What the addon is built from: every native source and header, the emulator, and the flags. */
const fingerprint = (): string => {
  const hash = createHash("sha256").update(JSON.stringify([flags, nodeApiHeaders, nodeAddonApi]))
  const builders = ["test/helpers/cudaLaunchRewrite.ts", "test/helpers/cudaEmulatorBuild.ts"]
  for (const file of [...filesUnder("native"), ...filesUnder("test/native/cuda_emu"), ...builders])
    hash.update(file).update(readFileSync(join(root, file)))
  return hash.digest("hex")
}

/** Builds the emulated addon unless the one in build-emu/ was built from the same sources; says whether it built. */
export const buildEmulatedAddon = async (): Promise<boolean> => {
  const stamp = join(emulatedAddonFolder, "fingerprint")
  const wanted = fingerprint()
  if (existsSync(emulatedAddonPath) && existsSync(stamp) && readFileSync(stamp, "utf8") === wanted) return false
  const work = join(emulatedAddonFolder, "objects")
  rmSync(work, { recursive: true, force: true })
  mkdirSync(work, { recursive: true })
  const kernels = writeHostKernels(work)
  const unit = (source: string, cu: boolean) => ({ source, object: join(work, `${source.replace(/[/.]/g, "_")}.o`), cu })
  const units = [
    ...filesUnder("native/napi").filter((f) => f.endsWith(".cpp")).map((f) => unit(f, false)),
    ...filesUnder("native/cpu").filter((f) => f.endsWith(".cpp")).map((f) => unit(f, false)),
    ...kernelFiles().filter((f) => f.endsWith(".cu")).map((f) => unit(relative(root, join(kernels, f)), true)),
    unit("test/native/cuda_emu/cublaslt_emu.cpp", false),
    unit("test/native/cuda_emu/mma_fragments_emu.cpp", false),
    unit("test/native/cuda_emu/wgmma_emu.cpp", false)
  ]
  const warnings = await compileUnits(units, [...flags, ...emulatorIncludes(work), "-I", nodeApiHeaders, "-I", nodeAddonApi])
  if (warnings.length > 0) throw new Error(`the emulated addon compiled with warnings:\n${warnings.join("\n")}`)
  // Linked beside the old one, then moved over it: a failed build never leaves half an addon behind.
  const fresh = join(work, "selfe_native.node")
  await link(fresh, units.map((u) => u.object), ["-shared", "-lopenblas", "-lpthread"])
  renameSync(fresh, emulatedAddonPath)
  writeFileSync(stamp, wanted)
  rmSync(work, { recursive: true, force: true })
  return true
}

/** Vitest global setup of the "gpu-emulated" project. */
export default async function setup(): Promise<void> {
  const started = Date.now()
  if (await buildEmulatedAddon())
    console.log(`[gpu-emulated] built ${relative(root, emulatedAddonPath)} in ${((Date.now() - started) / 1000).toFixed(0)} s`)
}
