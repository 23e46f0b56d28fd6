/**
 * cuBLASLt's own log of the products it ran, read back: with CUBLASLT_LOG_LEVEL=2 (Trace) the library writes
 * one line per cublasLtMatmul to CUBLASLT_LOG_FILE, holding the operands' layouts, the operation and the
 * algorithm it ran, e.g. (one line, wrapped here)
 *   [2026-11-27 10:00:00][cublasLt][4242][Trace][cublasLtMatmul] A=0X7F00 Adesc=[type=R_16BF rows=384 cols=1152
 *   ld=384] B=... Bdesc=[...] C=... Cdesc=[...] D=... Ddesc=[type=R_16BF rows=1152 cols=65536 ld=1152]
 *   computeDesc=[computeType=COMPUTE_32F scaleType=R_32F transa=OP_T epilogue=EPILOGUE_BIAS biasPointer=0x..]
 *   algo=[algoId=66 tile=MATMUL_TILE_128x256 stages=MATMUL_STAGES_64x4 customOption=0 clusterShape=CLUSTER_SHAPE_1x2x1]
 *   workSpace=0X7E00 workSpaceSizeInBytes=1048576 beta=0 outOfPlace=1 stream=0X0
 * bench/gemmKernels.ts runs PyTorch and selfe under it to see whether both run the same kernel for a problem.
 */

/** One cublasLtMatmul of the log, as the row-major product y [m, n] = x [m, k] W^T that both sides compute. */
export interface TracedProduct {
  readonly m: number
  readonly n: number
  readonly k: number
  /** D's type: "bf16", "f32", or cuBLASLt's name of another. */
  readonly dtype: string
  /** The epilogue's name without the EPILOGUE_ prefix; "DEFAULT" where the line names none. */
  readonly epilogue: string
  /** The algorithm as the line gives it (algoId, tile, stages, ...), the identity of the kernel that ran. */
  readonly algorithm: string
  readonly workspaceBytes: number
}

const TRACE_TAG = "[Trace][cublasLtMatmul]"

/** The `key=value` words of a bracket group or a line, keys lower-cased (hipBLASLt writes transA, cuBLASLt transa). */
const fieldsOf = (text: string): Map<string, string> => {
  const fields = new Map<string, string>()
  for (const word of text.split(/\s+/)) {
    const at = word.indexOf("=")
    if (at > 0) fields.set(word.slice(0, at).toLowerCase(), word.slice(at + 1))
  }
  return fields
}

const dtypeOf = (type: string | undefined) => (type === "R_16BF" ? "bf16" : type === "R_32F" ? "f32" : (type ?? "?"))

/** The product a trace line describes, or undefined where the line is not a cublasLtMatmul trace or lacks a part. */
export const parseTraceLine = (line: string): TracedProduct | undefined => {
  const tag = line.indexOf(TRACE_TAG)
  if (tag < 0) return undefined
  const body = line.slice(tag + TRACE_TAG.length)
  const groups = new Map<string, string>()
  for (const [, name, content] of body.matchAll(/(\w+)=\[([^\]]*)\]/g)) groups.set(name!.toLowerCase(), content!)
  const a = groups.get("adesc"), d = groups.get("ddesc"), operation = groups.get("computedesc"), algorithm = groups.get("algo")
  if (a === undefined || d === undefined || operation === undefined || algorithm === undefined) return undefined
  const aFields = fieldsOf(a), dFields = fieldsOf(d), opFields = fieldsOf(operation)
  const outside = fieldsOf(body.replace(/\w+=\[[^\]]*\]/g, " "))
  // cuBLASLt is column-major: D is n x m for the row-major [m, n]; op(A) is n x k, so A is k x n when transposed.
  const transposedA = opFields.get("transa") === "OP_T"
  const numbers = [Number(dFields.get("cols")), Number(dFields.get("rows")), Number(aFields.get(transposedA ? "rows" : "cols"))]
  const workspaceBytes = Number(outside.get("workspacesizeinbytes"))
  if (numbers.some((x) => !Number.isInteger(x)) || !Number.isInteger(workspaceBytes)) return undefined
  const [m, n, k] = numbers as [number, number, number]
  return {
    m,
    n,
    k,
    dtype: dtypeOf(dFields.get("type")),
    epilogue: (opFields.get("epilogue") ?? "DEFAULT").replace(/^CUBLASLT_/, "").replace(/^EPILOGUE_/, ""),
    algorithm: algorithm.trim().replace(/\s+/g, " "),
    workspaceBytes
  }
}

/**
 * What a log holds, by cuBLASLt's [level][function] tag (e.g. "Trace cublasLtMatmul", "Api cublasLtCreate"), with
 * how many lines carry none: where a side's log shows no product, this tells an empty log (the library never
 * read the variables) from one whose products went through another function or level.
 */
export const logTags = (log: string): { readonly lines: number; readonly tags: ReadonlyMap<string, number>; readonly untagged: number } => {
  const tags = new Map<string, number>()
  let lines = 0
  let untagged = 0
  for (const line of log.split("\n")) {
    if (line.trim() === "") continue
    lines++
    const tag = /\[cublasLt\]\[\d+\]\[(\w+)\]\[(\w+)\]/.exec(line)
    if (tag === null) untagged++
    else tags.set(`${tag[1]} ${tag[2]}`, (tags.get(`${tag[1]} ${tag[2]}`) ?? 0) + 1)
  }
  return { lines, tags, untagged }
}

/** Every product of a log, in the order they ran. */
export const parseTrace = (log: string): Array<TracedProduct> =>
  log.split("\n").flatMap((line) => {
    const product = parseTraceLine(line)
    return product === undefined ? [] : [product]
  })

/**
 * The last product of the log with these sizes and dtype: what a side settled on for the problem, after any
 * candidates it timed first (gemmAlgorithms "timed" runs each before choosing).
 */
export const lastProduct = (
  products: ReadonlyArray<TracedProduct>,
  problem: { readonly m: number; readonly n: number; readonly k: number; readonly dtype: string }
): TracedProduct | undefined => {
  for (let i = products.length - 1; i >= 0; i--) {
    const p = products[i]!
    if (p.m === problem.m && p.n === problem.n && p.k === problem.k && p.dtype === problem.dtype) return p
  }
  return undefined
}

/** A problem as the benchmark names it: the row-major sizes and dtype, and its label. */
export interface TracedProblem {
  readonly label: string
  readonly m: number
  readonly n: number
  readonly k: number
  readonly dtype: string
}

/** One side's product of a problem, and whether its algorithm is the reference side's (undefined: not compared). */
export interface SideProduct {
  readonly side: string
  readonly product: TracedProduct | undefined
  readonly sameAsReference: boolean | undefined
}

/**
 * Every side's last product of each problem beside the reference side's (PyTorch's in bench:gemm-kernels): per
 * problem the sides in the map's order, how many problems the reference traced, and per other side how many of
 * those ran the reference's algorithm. A side without a log (it did not run) has no product anywhere.
 */
export const compareKernels = (
  problems: ReadonlyArray<TracedProblem>,
  productsBySide: ReadonlyMap<string, ReadonlyArray<TracedProduct> | undefined>,
  reference: string
) => {
  const rows = problems.map((problem) => {
    const theirs = lastProduct(productsBySide.get(reference) ?? [], problem)
    const sides: Array<SideProduct> = [...productsBySide.keys()].map((side) => {
      const product = lastProduct(productsBySide.get(side) ?? [], problem)
      const compared = side !== reference && product !== undefined && theirs !== undefined
      return { side, product, sameAsReference: compared ? product.algorithm === theirs.algorithm : undefined }
    })
    return { problem, traced: theirs !== undefined, sides }
  })
  const same = new Map<string, number>()
  for (const side of productsBySide.keys())
    if (side !== reference) same.set(side, rows.filter((row) => row.sides.some((s) => s.side === side && s.sameAsReference === true)).length)
  return { rows, traced: rows.filter((row) => row.traced).length, same }
}

/** An algorithm as the table shows it: cuBLASLt's enum prefixes dropped (MATMUL_TILE_128x256 reads 128x256). */
export const shortAlgorithm = (algorithm: string) => algorithm.replace(/MATMUL_TILE_|MATMUL_STAGES_|MATMUL_CLUSTER_SHAPE_|CLUSTER_SHAPE_/g, "")
