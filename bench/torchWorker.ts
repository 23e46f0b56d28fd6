/**
 * PyTorch's side of bench:gpu as one long-lived worker process (bench/gpu_torch.py): a case goes out as a line of
 * JSON and its times come back as one, so bench/gpu.ts can time PyTorch and selfe on a row back to back.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"

/** Seconds per call for each of PyTorch's variants of a row (null: that variant is unavailable there). */
export type TorchTimes = Readonly<Record<string, number | null>>

export interface TorchWorker {
  readonly device: string
  readonly version: string
  /** The case's times, or why there are none (the case failed, or the worker is gone). */
  readonly time: (c: object) => Promise<TorchTimes | string>
  readonly close: () => void
}

/** Starts the worker (`python`, default python3 or SELFE_BENCH_PYTHON); resolves to why not where it cannot run. */
export const startTorchWorker = (script: string, args: ReadonlyArray<string>, python = process.env["SELFE_BENCH_PYTHON"] ?? "python3") =>
  new Promise<TorchWorker | string>((resolveStart) => {
    const child: ChildProcess = spawn(python, [script, ...args], { stdio: ["pipe", "pipe", "inherit"] })
    // Answers arrive in request order; each waiting request is one entry here.
    const waiting: Array<(answer: Record<string, unknown> | string) => void> = []
    let gone: string | undefined
    let started = false
    const finish = (why: string) => {
      gone ??= why
      if (!started) resolveStart(why)
      for (const reply of waiting.splice(0)) reply(gone)
    }
    child.on("error", (error) => finish(`${python} did not start: ${error.message}`))
    child.on("close", (code, signal) => finish(`PyTorch's worker exited (${signal ?? `status ${code}`})`))
    child.stdin?.on("error", (error) => finish(`PyTorch's worker stopped reading: ${error.message}`))
    const lines = createInterface({ input: child.stdout! })
    lines.on("line", (line) => {
      let message: Record<string, unknown>
      try {
        message = JSON.parse(line) as Record<string, unknown>
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
          time: (c) =>
            new Promise((resolve) => {
              if (gone !== undefined) return resolve(gone)
              waiting.push((answer) =>
                resolve(typeof answer === "string" ? answer : typeof answer["error"] === "string" ? answer["error"] : (answer as TorchTimes))
              )
              child.stdin!.write(`${JSON.stringify(c)}\n`)
            }),
          close: () => {
            gone ??= "closed"
            child.stdin?.end()
          }
        })
        return
      }
      waiting.shift()?.(message)
    })
  })
