import { evaluationPrompts } from "../data/eval-sets.ts"
import { heldOut } from "../data/held-out.ts"
import type { PromptRecord } from "../data/prompts.ts"
import type { ShapeEvalConfig } from "../data/config.ts"

/**
 * `count` evaluation prompts spread over the six tags (every k-th of the evaluation set), for sample
 * grids and quick evaluations; the same prompts every time for the same data config.
 */
export const spreadPrompts = (data: ShapeEvalConfig, count: number): ReadonlyArray<PromptRecord> => {
  const all = evaluationPrompts(heldOut(data.heldOutPairs))
  const stride = all.length / Math.min(count, all.length)
  return Array.from({ length: Math.min(count, all.length) }, (_, i) => all[Math.floor(i * stride)] as PromptRecord)
}
