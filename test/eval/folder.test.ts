import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { defaultShapeEvalConfig } from "../../src/data/config.ts"
import { groundTruthScene, heldOutPrompts } from "../../src/data/eval-sets.ts"
import { heldOut } from "../../src/data/held-out.ts"
import { renderScene } from "../../src/data/render.ts"
import { writeEvaluationFolder } from "../../src/eval/export-folder.ts"
import { EvaluationReport, evaluateFolder, PROMPTS_FILE } from "../../src/eval/folder.ts"
import { writePng } from "../../src/io/png.ts"
import { rgbFromChw } from "../../src/io/rgb-image.ts"

const held = heldOut(defaultShapeEvalConfig.heldOutPairs)
const records = heldOutPrompts(held).slice(0, 30)

/** A temporary evaluation folder of ground-truth images (2 per prompt); removed when the test's scope closes. */
const groundTruthFolder = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped()
  yield* writeEvaluationFolder(dir, records, 2, (promptIndex, sample) =>
    rgbFromChw(renderScene(groundTruthScene(records[promptIndex], 32, held, 5, promptIndex, sample)), 32, 32)
  )
  return dir
})

const failureOf = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.flip(effect)

describe("evaluation folders", () => {
  it.scoped("score exported ground truth near 1 and report every image", () =>
    Effect.gen(function* () {
      const dir = yield* groundTruthFolder
      const report = yield* evaluateFolder(dir)
      expect(report.images).toHaveLength(60)
      expect(report.overall).toBeGreaterThanOrEqual(0.98)
      expect(report.images[3]).toMatchObject({ promptIndex: 1, tag: records[1].tag, prompt: records[1].prompt })
      expect(report.images[3].file).toMatch(/00001[/\\]0001\.png$/)
      expect(Schema.decodeUnknownSync(EvaluationReport)(Schema.encodeSync(EvaluationReport)(report))).toEqual(report)
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.effect("fail on a missing folder, naming it", () =>
    Effect.gen(function* () {
      const error = yield* failureOf(evaluateFolder("/nonexistent/selfe-images"))
      expect(error._tag).toBe("ImagesFolderNotFound")
      expect(error.message).toContain("/nonexistent/selfe-images")
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("fail on a corrupt PNG, naming the file", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const dir = yield* groundTruthFolder
      const corrupt = path.join(dir, "00002", "0001.png")
      yield* fs.writeFileString(corrupt, "not a png")
      const error = yield* failureOf(evaluateFolder(dir))
      expect(error._tag).toBe("PngReadError")
      expect(error.message).toContain(corrupt)
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("fail on an image of the wrong size, naming the file", () =>
    Effect.gen(function* () {
      const path = yield* Path.Path
      const dir = yield* groundTruthFolder
      const odd = path.join(dir, "00004", "0000.png")
      yield* writePng(odd, { width: 40, height: 32, data: new Uint8Array(40 * 32 * 3) })
      const error = yield* failureOf(evaluateFolder(dir))
      expect(error).toMatchObject({ _tag: "ImageSizeMismatch", path: odd, expected: "32x32", actual: "40x32" })
      const required = yield* failureOf(evaluateFolder(dir, { size: 64 }))
      expect(required).toMatchObject({ _tag: "ImageSizeMismatch", expected: "64x64", actual: "32x32" })
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("fail on a malformed prompt line, naming file and line", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const dir = yield* groundTruthFolder
      const prompts = path.join(dir, PROMPTS_FILE)
      const lines = (yield* fs.readFileString(prompts)).split("\n")
      yield* fs.writeFileString(prompts, [lines[0], lines[1], '{"tag": "colors", "prompt": "a photo of a hexagon"', ...lines.slice(3)].join("\n"))
      const notJson = yield* failureOf(evaluateFolder(dir))
      expect(notJson).toMatchObject({ _tag: "MalformedJsonlLine", path: prompts, line: 3 })
      expect(notJson.message).toMatch(/^.*prompts\.jsonl:3: not JSON/)
      yield* fs.writeFileString(prompts, [lines[0], '{"tag":"colors","prompt":"x","include":[{"class":"hexagon","count":1}]}', ...lines.slice(2)].join("\n"))
      const badClass = yield* failureOf(evaluateFolder(dir))
      expect(badClass).toMatchObject({ _tag: "MalformedJsonlLine", line: 2 })
      expect(badClass.message).toContain("include.0.class: expected one of circle, square, triangle, diamond, oval")
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("fail when a prompt has no images or the prompt file is missing", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const dir = yield* groundTruthFolder
      yield* fs.remove(path.join(dir, "00007"), { recursive: true })
      const missing = yield* failureOf(evaluateFolder(dir))
      expect(missing).toMatchObject({ _tag: "MissingSamples", path: path.join(dir, "00007"), prompt: records[7].prompt })
      const noPrompts = yield* failureOf(evaluateFolder(dir, { promptsPath: path.join(dir, "absent.jsonl") }))
      expect(noPrompts._tag).toBe("FileReadError")
      expect(noPrompts.message).toContain("absent.jsonl")
    }).pipe(Effect.provide(NodeContext.layer))
  )
})
