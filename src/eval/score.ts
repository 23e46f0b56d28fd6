/**
 * GenEval's per-image rule, ported from its `evaluate_images.py`: every include clause must find
 * `count` objects of its class (the most confident ones are checked for colour and position), and
 * every exclude clause must find fewer than `count`. The image is correct only if all clauses hold.
 */
import { relationsBetween } from "../data/geometry.ts"
import type { PromptRecord } from "../data/prompts.ts"
import type { DetectedObject } from "./detect.ts"

export interface ImageVerdict {
  readonly correct: boolean
  /** Why it failed, one line per failed clause (empty when correct). */
  readonly reasons: ReadonlyArray<string>
}

export const scoreImage = (record: PromptRecord, detected: ReadonlyArray<DetectedObject>): ImageVerdict => {
  const reasons: Array<string> = []
  // Objects each include clause matched, by clause index; undefined when the clause failed.
  const matched: Array<ReadonlyArray<DetectedObject> | undefined> = []
  for (const clause of record.include) {
    const ofClass = detected.filter((object) => object.shape === clause.class)
    const found = ofClass.slice(0, clause.count)
    let holds = true
    if (found.length < clause.count) {
      holds = false
      reasons.push(`expected ${clause.class}>=${clause.count}, found ${ofClass.length}`)
    } else {
      if (clause.color !== undefined) {
        const colors = found.map((object) => object.color)
        if (colors.filter((color) => color === clause.color).length < clause.count) {
          holds = false
          reasons.push(`expected ${clause.color} ${clause.class}>=${clause.count}, found ${colors.join(", ")}`)
        }
      }
      if (clause.position !== undefined && holds) {
        const [relation, target] = clause.position
        const references = matched[target]
        if (references === undefined) {
          holds = false
          reasons.push(`no target for ${clause.class} to be ${relation}`)
        } else {
          const misplaced = found.some((object) =>
            references.some((reference) => !relationsBetween(object.box, reference.box).has(relation))
          )
          if (misplaced) {
            holds = false
            reasons.push(`expected ${clause.class} ${relation} target`)
          }
        }
      }
    }
    matched.push(holds ? found : undefined)
  }
  for (const clause of record.exclude ?? []) {
    const count = detected.filter((object) => object.shape === clause.class).length
    if (count >= clause.count) reasons.push(`expected ${clause.class}<${clause.count}, found ${count}`)
  }
  return { correct: reasons.length === 0, reasons }
}
