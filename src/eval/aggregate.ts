/**
 * GenEval's aggregation: per tag, the fraction of correct images; overall, the unweighted mean over
 * the tags present (all six for the evaluation set), so small tags weigh as much as large ones.
 */
import { type Tag, TAGS } from "../data/world.ts"

export interface TagScore {
  readonly tag: Tag
  readonly correct: number
  readonly total: number
  readonly accuracy: number
}

export interface Summary {
  readonly overall: number
  /** In GenEval's tag order, only tags with at least one image. */
  readonly tags: ReadonlyArray<TagScore>
}

export const summarise = (verdicts: Iterable<{ readonly tag: Tag; readonly correct: boolean }>): Summary => {
  const counts = new Map<Tag, { correct: number; total: number }>()
  for (const verdict of verdicts) {
    const count = counts.get(verdict.tag) ?? { correct: 0, total: 0 }
    count.total++
    if (verdict.correct) count.correct++
    counts.set(verdict.tag, count)
  }
  const tags = TAGS.flatMap((tag) => {
    const count = counts.get(tag)
    return count === undefined ? [] : [{ tag, ...count, accuracy: count.correct / count.total }]
  })
  const overall = tags.length === 0 ? 0 : tags.reduce((sum, score) => sum + score.accuracy, 0) / tags.length
  return { overall, tags }
}

/** The per-tag table the CLI prints. */
export const formatSummary = (summary: Summary): string => {
  const rows = summary.tags.map(
    (score) => `${score.tag.padEnd(14)} ${score.accuracy.toFixed(4)}  (${score.correct} / ${score.total})`
  )
  return [...rows, `${"overall".padEnd(14)} ${summary.overall.toFixed(4)}`].join("\n")
}
