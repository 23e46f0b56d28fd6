import { execFile, spawnSync } from "node:child_process"
import { root } from "./cudaEmulatorBuild.ts"

/** The nvcc the compile-only checks run (NVCC overrides it), and why they are skipped where it cannot run. */
export const nvcc = process.env["NVCC"] ?? "nvcc"
const probe = spawnSync(nvcc, ["--version"], { encoding: "utf8" })
export const nvccUnavailable = probe.error === undefined && probe.status === 0 ? undefined : `no nvcc (${nvcc}) can be run`

/** One nvcc run from the project root: whether it failed, and everything it printed. */
export const runNvcc = (args: ReadonlyArray<string>) =>
  new Promise<{ failed: boolean; log: string }>((resolve) =>
    execFile(nvcc, args, { cwd: root, encoding: "utf8", maxBuffer: 64 << 20 }, (error, stdout, stderr) =>
      resolve({ failed: error !== null, log: stdout + stderr })
    )
  )
