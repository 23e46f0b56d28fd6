import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { startTorchWorker } from "../../bench/torchWorker.ts"

// The fake worker is a node script (test/bench/fakeTorchWorker.mjs) speaking gpu_torch.py's protocol.
const fake = fileURLToPath(new URL("./fakeTorchWorker.mjs", import.meta.url))
const start = (mode: string) => startTorchWorker(fake, [mode], process.execPath)

describe("bench:gpu's PyTorch worker (bench/torchWorker.ts)", () => {
  it("prepares a row, times its rounds and releases it, answers in request order, lines that are not JSON skipped", async () => {
    const worker = await start("answer")
    if (typeof worker === "string") throw new Error(worker)
    expect([worker.device, worker.version]).toEqual(["Fake GPU", "0.0"])
    const answers = await Promise.all([worker.prepare({ id: "a", reps: 5 }), worker.round(), worker.round(), worker.release()])
    expect(answers).toEqual([["torch", "torch cuDNN"], { torch: 0.005, "torch cuDNN": 0.01 }, { torch: 0.005, "torch cuDNN": 0.01 }, undefined])
    expect(await worker.round()).toBe("ValueError: no row is prepared")
    worker.close()
    expect(await worker.prepare({ id: "d", reps: 1 })).toBe("closed")
    expect(await worker.round()).toBe("closed")
  })

  it("gives a row the worker cannot prepare its reason, and the next row still runs", async () => {
    const worker = await start("answer")
    if (typeof worker === "string") throw new Error(worker)
    expect(await worker.prepare({ id: "fail-b", reps: 6 })).toBe("ValueError: fail-b")
    expect(await worker.prepare({ id: "c", reps: 7 })).toEqual(["torch", "torch cuDNN"])
    expect(await worker.round()).toEqual({ torch: 0.007, "torch cuDNN": 0.014 })
    worker.close()
  })

  it("runs in the environment it is given, says which cuBLASLt it loaded and a file's version, and closes once exited", async () => {
    const exitFile = join(mkdtempSync(join(tmpdir(), "selfe-worker-")), "exit")
    const env = { ...process.env, FAKE_CUBLASLT: "/wheel/libcublasLt.so.13", FAKE_EXIT_FILE: exitFile }
    const worker = await startTorchWorker(fake, ["answer"], process.execPath, env)
    if (typeof worker === "string") throw new Error(worker)
    expect(await worker.library()).toEqual({ path: "/wheel/libcublasLt.so.13", version: 130100 })
    expect(await worker.library("/toolkit/libcublasLt.so.13")).toEqual({ path: "/toolkit/libcublasLt.so.13", version: 130000 })
    await worker.close()
    expect(existsSync(exitFile) && readFileSync(exitFile, "utf8")).toBe("exited")
    expect(await worker.library()).toBe("closed")
  })

  it("answers no library where the worker loaded none", async () => {
    const { FAKE_CUBLASLT: _, ...env } = process.env
    const worker = await startTorchWorker(fake, ["answer"], process.execPath, env)
    if (typeof worker === "string") throw new Error(worker)
    expect(await worker.library()).toEqual({ path: null, version: null })
    await worker.close()
  })

  it("says why where the worker refuses to start or its interpreter is missing", async () => {
    expect(await start("refuse")).toBe("torch 0.0 sees no CUDA device")
    expect(await startTorchWorker(fake, [], "/nonexistent/python3")).toMatch(/^\/nonexistent\/python3 did not start: .*ENOENT/)
  })

  it("answers a request the worker died on, and every later one, with its exit", async () => {
    const worker = await start("die")
    if (typeof worker === "string") throw new Error(worker)
    expect(await worker.prepare({ id: "a", reps: 2 })).toEqual(["torch", "torch cuDNN"])
    expect(await worker.round()).toBe("PyTorch's worker exited (status 3)")
    expect(await worker.release()).toBe("PyTorch's worker exited (status 3)")
  })
})
