/**
 * npm run bench:gemm-kernels — which cuBLASLt kernel each side runs for bench:gpu's plain GEMM rows, and from
 * which cuBLASLt library. PyTorch (F.linear, as bench:gpu calls it) and each selfe GEMM device run every problem
 * under cuBLASLt's own log (CUBLASLT_LOG_LEVEL=2: a line per product with the algorithm that ran), each side in a
 * process of its own since the library reads its log variables when it starts; the table then sets each side's
 * algorithm for a problem (its last product of it: a timed device times candidates first) beside PyTorch's.
 * PyTorch's wheel may carry its own cuBLASLt: where PyTorch's library is another file than selfe's, selfe also
 * runs on PyTorch's (LD_LIBRARY_PATH), to tell a different library from a different request. Nothing is timed
 * here (bench:gpu times). Raw logs stay in SELFE_GEMM_KERNELS_LOGS (default: a fresh folder under the temp dir).
 * --smoke: toy sizes, to check the script end to end (on the CUDA emulator's addon, whose cuBLASLt stand-in logs
 * the same lines; PyTorch on the CPU then logs none).
 *
 * Internally the same file is each selfe side's process: `--side NAME` runs the problems on that side's device
 * and prints {"library"}, the cuBLASLt file the process loaded.
 */
import { spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { loadAddon } from "../src/kernels/native/binding.ts"
import { NativeBackend } from "../src/kernels/native/NativeBackend.ts"
import { compareKernels, logTags, parseTrace, shortAlgorithm, type TracedProduct } from "./cublasLtTrace.ts"
import { gemmCases, gemmDevices, gemmInputs, smallWorkspaceDevice } from "./gemmCases.ts"
import { startTorchWorker } from "./torchWorker.ts"

const smoke = process.argv.includes("--smoke")
// The plain rows: the GEMM target counts them, and PyTorch's GELU row is the same product then a second op.
const cases = gemmCases(smoke ? 256 : 65536, () => 1).filter((c) => c.gelu !== true)

/** The cuBLASLt file this process has loaded (its memory map names it), or null. */
const loadedCublasLt = (): string | null => {
  if (!existsSync("/proc/self/maps")) return null
  const line = readFileSync("/proc/self/maps", "utf8").split("\n").find((l) => l.includes("libcublasLt.so"))
  return line === undefined ? null : realpathSync(line.trim().split(/\s+/).at(-1)!)
}

/** A selfe side's process: every problem twice on the device (the first call plans it), then the library. */
const runSide = async (name: string) => {
  const options = gemmDevices[name]
  if (options === undefined) throw new Error(`bench:gemm-kernels: no side named ${JSON.stringify(name)} (${Object.keys(gemmDevices).join(", ")})`)
  const on = new NativeBackend(loadAddon(), options)
  let seed = 1
  for (const c of cases) {
    const { x, w, b } = gemmInputs(on, c, () => seed++)
    for (let call = 0; call < 2; call++) on.linear(x, w, b).release()
    await on.sync()
    for (const t of [x, w, b]) t.release()
  }
  console.log(JSON.stringify({ library: loadedCublasLt() }))
}

const sideAt = process.argv.indexOf("--side")
if (sideAt >= 0) {
  await runSide(process.argv[sideAt + 1] ?? "")
  process.exit(0)
}

const addon = loadAddon()
if (!addon.build.backends.split(",").includes("cuda") || addon.cudaDeviceCount() === 0) {
  console.error(`bench:gemm-kernels needs the CUDA backend and a GPU: build.backends is "${addon.build.backends}", ${addon.cudaDeviceCount()} CUDA device(s) usable`)
  process.exit(1)
}
const logs = process.env["SELFE_GEMM_KERNELS_LOGS"] ?? mkdtempSync(join(tmpdir(), "selfe-gemm-kernels-"))
mkdirSync(logs, { recursive: true })
const fileOf = (side: string) => join(logs, `${side.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "")}.log`)
/** This process's environment with cuBLASLt's Trace log going to the side's file (a mask would override the level). */
const loggedEnv = (side: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
  const { CUBLASLT_LOG_MASK: _mask, ...env } = process.env
  return { ...env, ...extra, CUBLASLT_LOG_LEVEL: "2", CUBLASLT_LOG_FILE: fileOf(side) }
}

/** What a side ran: its library and its products, or why it did not run. */
interface Ran {
  readonly library: string | null
  readonly products: ReadonlyArray<TracedProduct>
}
const traced = (side: string) => (existsSync(fileOf(side)) ? parseTrace(readFileSync(fileOf(side), "utf8")) : [])

/** Runs a selfe side in its own process (this file with --side); resolves to what it ran, or why not. */
const selfeSide = (device: string, side: string, extra: NodeJS.ProcessEnv = {}) =>
  new Promise<Ran | string>((resolve) => {
    const script = fileURLToPath(import.meta.url)
    const child = spawn(process.execPath, [...process.execArgv, script, "--side", device, ...(smoke ? ["--smoke"] : [])], {
      env: loggedEnv(side, extra),
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()))
    child.on("error", (error) => resolve(`did not start: ${error.message}`))
    child.on("close", (code, signal) => {
      const last = out.trim().split("\n").at(-1) ?? ""
      if (code !== 0) return resolve(`exited (${signal ?? `status ${code}`})`)
      try {
        resolve({ library: (JSON.parse(last) as { library: string | null }).library, products: traced(side) })
      } catch {
        resolve(`printed no library line (last line: ${last.slice(0, 200)})`)
      }
    })
  })

// PyTorch first: bench:gpu's worker, each row prepared (its warm-up calls run the product) and released.
const ran = new Map<string, Ran | string>([["torch", "PyTorch's worker did not finish"]])
const torchWorker = await startTorchWorker(fileURLToPath(new URL("./gpu_torch.py", import.meta.url)), smoke ? ["--smoke"] : [], undefined, loggedEnv("torch"))
// The cuBLASLt file PyTorch loaded; null where it loaded none or cannot say.
let torchPath: string | null = null
if (typeof torchWorker === "string") ran.set("torch", torchWorker)
else {
  console.log(`PyTorch: torch ${torchWorker.version} on ${torchWorker.device}`)
  for (const c of cases) {
    const variants = await torchWorker.prepare(c)
    if (typeof variants === "string") console.error(`PyTorch could not run ${c.label}: ${variants}`)
    await torchWorker.release()
  }
  const library = await torchWorker.library()
  if (typeof library === "string") console.error(`PyTorch's worker could not say which cuBLASLt it loaded: ${library}`)
  else torchPath = library.path
}

for (const device of Object.keys(gemmDevices)) ran.set(device, await selfeSide(device, device))
// selfe again on PyTorch's cuBLASLt, where that is another file (a wheel's copy rather than the toolkit's).
const selfeRan = ran.get("selfe")
const onTorchLibrary = ["selfe", smallWorkspaceDevice]
if (torchPath !== null && typeof selfeRan !== "string" && selfeRan !== undefined && selfeRan.library !== torchPath)
  for (const device of onTorchLibrary) {
    const ldPath = [dirname(torchPath), process.env["LD_LIBRARY_PATH"]].filter(Boolean).join(":")
    ran.set(`${device} on PyTorch's cuBLASLt`, await selfeSide(device, `${device} on PyTorch's cuBLASLt`, { LD_LIBRARY_PATH: ldPath }))
  }

// Each library file's version, asked of PyTorch's worker (Python's ctypes loads a file by its path).
const versionOf = new Map<string, string>()
if (typeof torchWorker !== "string") {
  const paths = new Set([...ran.values()].flatMap((r) => (typeof r === "string" || r.library === null ? [] : [r.library])))
  if (torchPath !== null) paths.add(torchPath)
  for (const path of paths) {
    const answer = await torchWorker.library(path)
    const v = typeof answer === "string" ? null : answer.version
    versionOf.set(path, v === null ? "version unknown" : `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`)
  }
  await torchWorker.close()
  ran.set("torch", { library: torchPath, products: traced("torch") })
}

const pad = (s: string, width: number) => (s.length >= width ? `${s} ` : s + " ".repeat(width - s.length))
const mib = (bytes: number) => (bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(0)} MiB` : `${bytes} B`)
console.log(`\ncuBLASLt libraries (raw logs in ${logs}):`)
const libraryLine = (side: string, r: Ran | string) => {
  if (typeof r === "string") return `did not run: ${r}`
  if (r.library === null) return "no cuBLASLt file loaded (the emulator's stand-in, or PyTorch on the CPU)"
  // LD_LIBRARY_PATH loses to an RPATH (not a RUNPATH) the addon was linked with.
  const missed = side.endsWith("on PyTorch's cuBLASLt") && r.library !== torchPath ? "; not PyTorch's: the addon's RPATH won over LD_LIBRARY_PATH" : ""
  return `${r.library} (${versionOf.get(r.library) ?? "version unknown"})${missed}`
}
for (const [side, r] of ran) console.log(`  ${pad(side, 48)}${libraryLine(side, r)}`)
// What each side's log holds by tag: a side with no product shows whether its log was empty or held other calls.
console.log("\ncuBLASLt logs: lines by [level][function] tag (the most frequent 6)")
for (const side of ran.keys()) {
  const text = existsSync(fileOf(side)) ? readFileSync(fileOf(side), "utf8") : undefined
  if (text === undefined) {
    console.log(`  ${pad(side, 48)}no log file`)
    continue
  }
  const { lines, tags, untagged } = logTags(text)
  const top = [...tags].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([tag, n]) => `${tag} ${n}`)
  console.log(`  ${pad(side, 48)}${lines} lines${untagged > 0 ? ` (${untagged} untagged)` : ""}${top.length > 0 ? `: ${top.join(", ")}` : ""}`)
}

const comparison = compareKernels(cases, new Map([...ran].map(([side, r]) => [side, typeof r === "string" ? undefined : r.products])), "torch")
console.log("\nGEMM kernels: each side's last product of the problem in cuBLASLt's Trace log: its workspace, epilogue and algorithm")
for (const row of comparison.rows) {
  console.log(row.problem.label)
  for (const { side, product: p, sameAsReference } of row.sides) {
    const verdict = sameAsReference === undefined ? "" : sameAsReference ? "same as PyTorch" : "differs from PyTorch"
    const line = p === undefined ? "no product in its log" : `${pad(mib(p.workspaceBytes), 8)}${pad(p.epilogue, 9)}${pad(shortAlgorithm(p.algorithm), 84)}${verdict}`
    console.log(`  ${pad(side, 48)}${line}`.trimEnd())
  }
}
console.log(
  `\nPyTorch's kernel on ${comparison.traced} of ${cases.length} plain GEMM problems traced in its log; ` +
    [...comparison.same].map(([side, count]) => `${side}: ${count} of ${comparison.traced} the same`).join("; ")
)
