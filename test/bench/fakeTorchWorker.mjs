// A stand-in for bench/gpu_torch.py in torchWorker.test.ts, run by node. argv[2] picks its behaviour:
//   answer: prepare answers {"variants": ["torch", "torch cuDNN"]} ("fail" in the case's id: {"error"}); a round
//           times the prepared case as {"torch": reps / 1000, "torch cuDNN": 2 reps / 1000} (no case: {"error"});
//           release answers {}; library answers the cuBLASLt at FAKE_CUBLASLT (version 130100), or given a
//           path that path (version 130000); each answer after a line that is not JSON; at the end of its
//           input, before it exits, it writes "exited" to FAKE_EXIT_FILE where that is set
//   refuse: its first line is an error (no CUDA device)
//   die:    answers the first request, then exits on the second without answering
import { writeFileSync } from "node:fs"
import { createInterface } from "node:readline"

const mode = process.argv[2]
const say = (message) => process.stdout.write(`${JSON.stringify(message)}\n`)
if (mode === "refuse") {
  say({ error: "torch 0.0 sees no CUDA device" })
  process.exit(1)
}
say({ device: "Fake GPU", torch: "0.0" })
let answered = 0
let prepared
const answer = (request) => {
  switch (request.op) {
    case "prepare":
      if (request.case.id.includes("fail")) return { error: `ValueError: ${request.case.id}` }
      prepared = request.case
      return { variants: ["torch", "torch cuDNN"] }
    case "round":
      return prepared === undefined ? { error: "ValueError: no row is prepared" } : { torch: prepared.reps / 1000, "torch cuDNN": (2 * prepared.reps) / 1000 }
    case "release":
      prepared = undefined
      return {}
    case "library":
      return request.path === undefined ? { path: process.env.FAKE_CUBLASLT ?? null, version: process.env.FAKE_CUBLASLT ? 130100 : null } : { path: request.path, version: 130000 }
  }
  return { error: `ValueError: unknown op ${request.op}` }
}
for await (const line of createInterface({ input: process.stdin })) {
  if (mode === "die" && answered === 1) process.exit(3)
  process.stdout.write("a warning that is not JSON\n")
  say(answer(JSON.parse(line)))
  answered++
}
if (process.env.FAKE_EXIT_FILE) writeFileSync(process.env.FAKE_EXIT_FILE, "exited")
