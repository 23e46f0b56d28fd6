/**
 * PyTorch's side of bench:gpu as one long-lived worker process (bench/gpu_torch.py): a request goes out as a
 * line of JSON and its answer comes back as one. The worker holds one row at a time (prepare, rounds, release),
 * so bench/gpu.ts can alternate PyTorch's rounds with selfe's round by round.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"

/** Seconds per call for each of PyTorch's variants of a row in one round. */
export type TorchTimes = Readonly<Record<string, number>>

/** A cuBLASLt library file and its version (cublasLtGetVersion: major * 10000 + minor * 100 + patch); null: none. */
export interface CublasLtLibrary {
  readonly path: string | null
  readonly version: number | null
}

export interface TorchWorker {
  readonly device: string
  readonly version: string
  /** Builds a row's inputs and warms its variants up: the variants that run here, or why the row cannot. */
  readonly prepare: (c: object) => Promise<ReadonlyArray<string> | string>
  /** One round of each variant of the prepared row, or why not (the row failed, or the worker is gone). */
  readonly round: () => Promise<TorchTimes | string>
  /** Drops the prepared row's inputs; resolves to why not where the worker is gone. */
  readonly release: () => Promise<string | undefined>
  /** The cuBLASLt the worker loaded, or (given a path) that file's version; why not where it cannot say. */
  readonly library: (path?: string) => Promise<CublasLtLibrary | string>
  /** Ends the worker; resolves once its process has exited (files it writes at exit are complete then). */
  readonly close: () => Promise<void>
}

type Answer = Record<string, unknown>

/**
 * Starts the worker (`python`, default python3 or SELFE_BENCH_PYTHON) in the environment `env` (default this
 * process's); resolves to why not where it cannot run.
 */
export const startTorchWorker = (
  script: string,
  args: ReadonlyArray<string>,
  python = process.env["SELFE_BENCH_PYTHON"] ?? "python3",
  env: NodeJS.ProcessEnv = process.env
) =>
  new Promise<TorchWorker | string>((resolveStart) => {
    const child: ChildProcess = spawn(python, [script, ...args], { stdio: ["pipe", "pipe", "inherit"], env })
    const exited = new Promise<void>((resolve) => child.on("close", () => resolve()))
    // Answers arrive in request order; each waiting request is one entry here.
    const waiting: Array<(answer: Answer | string) => void> = []
    let gone: string | undefined
    let started = false
    const finish = (why: string) => {
      gone ??= why
      if (!started) resolveStart(why)
      for (const reply of waiting.splice(0)) reply(gone)
    }
    /** The answer to a request, or why there is none (its error, or the worker's end). */
    const request = (message: object) =>
      new Promise<Answer | string>((resolve) => {
        if (gone !== undefined) return resolve(gone)
        waiting.push((answer) => resolve(typeof answer === "string" ? answer : typeof answer["error"] === "string" ? answer["error"] : answer))
        child.stdin!.write(`${JSON.stringify(message)}\n`)
      })
    child.on("error", (error) => finish(`${python} did not start: ${error.message}`))
    child.on("close", (code, signal) => finish(`PyTorch's worker exited (${signal ?? `status ${code}`})`))
    child.stdin?.on("error", (error) => finish(`PyTorch's worker stopped reading: ${error.message}`))
    const lines = createInterface({ input: child.stdout! })
    lines.on("line", (line) => {
      let message: Answer
      try {
        message = JSON.parse(line) as Answer
      } catch {
        console.error(`PyTorch's worker printed a line that is not JSON, ignored: ${line.slice(0, 200)}`)
        return
      }
      if (!started) {
        started = true
        if (typeof message["error"] === "string") {
          resolveStart(message["error"])
          child.kill()
          return
        }
        resolveStart({
          device: String(message["device"]),
          version: String(message["torch"]),
          prepare: async (c) => {
            const answer = await request({ op: "prepare", case: c })
            return typeof answer === "string" ? answer : (answer["variants"] as ReadonlyArray<string>)
          },
          round: async () => (await request({ op: "round" })) as TorchTimes | string,
          release: async () => {
            const answer = await request({ op: "release" })
            return typeof answer === "string" ? answer : undefined
          },
          library: async (path) => {
            const answer = await request(path === undefined ? { op: "library" } : { op: "library", path })
            return typeof answer === "string" ? answer : { path: (answer["path"] as string | null) ?? null, version: (answer["version"] as number | null) ?? null }
          },
          close: () => {
            gone ??= "closed"
            child.stdin?.end()
            return exited
          }
        })
        return
      }
      waiting.shift()?.(message)
    })
  })
