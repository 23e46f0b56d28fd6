import { describe, expect, it } from "vitest"
import { compareKernels, lastProduct, logTags, parseTrace, parseTraceLine, shortAlgorithm } from "../../bench/cublasLtTrace.ts"

// Lines in cuBLASLt's Trace format (CUBLASLT_LOG_LEVEL=2), for F.linear's y [65536, 384] = x [65536, 1536] W^T:
// column-major D is 384 x 65536, A (W, transposed) is 1536 x 384.
const bf16Bias =
  "[2026-11-27 10:00:00][cublasLt][4242][Trace][cublasLtMatmul] A=0X7F0000000000 Adesc=[type=R_16BF rows=1536 cols=384 ld=1536] " +
  "B=0X7F1000000000 Bdesc=[type=R_16BF rows=1536 cols=65536 ld=1536] C=0X7F2000000000 Cdesc=[type=R_16BF rows=384 cols=65536 ld=384] " +
  "D=0X7F2000000000 Ddesc=[type=R_16BF rows=384 cols=65536 ld=384] computeDesc=[computeType=COMPUTE_32F scaleType=R_32F transa=OP_T " +
  "epilogue=EPILOGUE_BIAS biasPointer=0x7f3000000000] algo=[algoId=66 tile=MATMUL_TILE_128x128 stages=MATMUL_STAGES_64x4 customOption=0 " +
  "clusterShape=CLUSTER_SHAPE_1x2x1] workSpace=0X7F4000000000 workSpaceSizeInBytes=1048576 beta=0 outOfPlace=0 stream=0X0"
// The same product without transposes or an epilogue (the line then names neither), f32, another algorithm.
const f32Plain =
  "[2026-11-27 10:00:01][cublasLt][4242][Trace][cublasLtMatmul] A=0X1 Adesc=[type=R_32F rows=384 cols=1536 ld=384] " +
  "B=0X2 Bdesc=[type=R_32F rows=1536 cols=65536 ld=1536] C=0X3 Cdesc=[type=R_32F rows=384 cols=65536 ld=384] " +
  "D=0X3 Ddesc=[type=R_32F rows=384 cols=65536 ld=384] computeDesc=[computeType=COMPUTE_32F scaleType=R_32F] " +
  "algo=[algoId=21 tile=MATMUL_TILE_256x128 stages=MATMUL_STAGES_32x3] workSpace=0X0 workSpaceSizeInBytes=0 beta=1 outOfPlace=0 stream=0X0"

describe("cuBLASLt's Trace log read back (bench/cublasLtTrace.ts)", () => {
  it("reads a product as the row-major [m, n] = [m, k] W^T it computes, with its epilogue, algorithm and workspace", () => {
    expect(parseTraceLine(bf16Bias)).toEqual({
      m: 65536,
      n: 384,
      k: 1536,
      dtype: "bf16",
      epilogue: "BIAS",
      algorithm: "algoId=66 tile=MATMUL_TILE_128x128 stages=MATMUL_STAGES_64x4 customOption=0 clusterShape=CLUSTER_SHAPE_1x2x1",
      workspaceBytes: 1 << 20
    })
    // Untransposed A is n x k: k from its columns; no epilogue named is the default one.
    expect(parseTraceLine(f32Plain)).toMatchObject({ m: 65536, n: 384, k: 1536, dtype: "f32", epilogue: "DEFAULT", workspaceBytes: 0 })
  })

  it("reads hipBLASLt's spelling of the transpose (transA) too", () => {
    expect(parseTraceLine(bf16Bias.replace("transa=OP_T", "transA=OP_T"))).toMatchObject({ k: 1536, n: 384 })
  })

  it("counts a log's lines by [level][function] tag, and the lines without one", () => {
    const create = "[2026-11-27 10:00:00][cublasLt][4242][Api][cublasLtCreate] handle=0X1"
    const summary = logTags([create, bf16Bias, "", f32Plain, "cuBLASLt log opened", create].join("\n"))
    expect(summary.lines).toBe(5)
    expect(summary.untagged).toBe(1)
    expect([...summary.tags]).toEqual([
      ["Api cublasLtCreate", 2],
      ["Trace cublasLtMatmul", 2]
    ])
    expect(logTags("")).toEqual({ lines: 0, tags: new Map(), untagged: 0 })
  })

  it("skips what is not a product's trace: other levels and functions, lines that lack a part or a number", () => {
    expect(parseTraceLine(bf16Bias.replace("[Trace][cublasLtMatmul]", "[Api][cublasLtMatmulDescCreate]"))).toBeUndefined()
    expect(parseTraceLine(bf16Bias.replace(/algo=\[[^\]]*\]/, ""))).toBeUndefined()
    expect(parseTraceLine(bf16Bias.replace("rows=384 cols=65536 ld=384] computeDesc", "rows=? cols=65536 ld=384] computeDesc"))).toBeUndefined()
    expect(parseTraceLine(bf16Bias.replace("workSpaceSizeInBytes=1048576", ""))).toBeUndefined()
    expect(parseTrace(["selfe: a line of its own", bf16Bias, "", f32Plain, "[cublasLt][1][Info] heuristic"].join("\n"))).toHaveLength(2)
  })

  it("finds the last product of a problem, which a timed choice runs after its candidates", () => {
    const timedFirst = bf16Bias.replace("algoId=66", "algoId=31")
    const products = parseTrace([timedFirst, bf16Bias, f32Plain].join("\n"))
    expect(lastProduct(products, { m: 65536, n: 384, k: 1536, dtype: "bf16" })?.algorithm).toMatch(/^algoId=66 /)
    expect(lastProduct(products, { m: 65536, n: 384, k: 1536, dtype: "f32" })?.algorithm).toMatch(/^algoId=21 /)
    expect(lastProduct(products, { m: 65536, n: 768, k: 1536, dtype: "bf16" })).toBeUndefined()
  })

  it("sets each side's kernel for a problem beside the reference side's, and counts the problems that match", () => {
    const down = { label: "down", m: 65536, n: 384, k: 1536, dtype: "bf16" }
    const downF32 = { label: "down f32", m: 65536, n: 384, k: 1536, dtype: "f32" }
    const untraced = { label: "qkv", m: 65536, n: 1152, k: 384, dtype: "bf16" }
    const other = bf16Bias.replace("algoId=66", "algoId=31")
    const { rows, traced, same } = compareKernels(
      [down, downF32, untraced],
      new Map([
        ["torch", parseTrace([bf16Bias, f32Plain].join("\n"))],
        ["selfe", parseTrace([other, bf16Bias, f32Plain.replace("algoId=21", "algoId=20")].join("\n"))],
        ["selfe 1 MiB", parseTrace(other)],
        ["selfe timed", undefined]
      ]),
      "torch"
    )
    expect(traced).toBe(2)
    expect(Object.fromEntries(same)).toEqual({ selfe: 1, "selfe 1 MiB": 0, "selfe timed": 0 })
    const verdicts = rows.map((row) => row.sides.map((s) => [s.side, s.product?.algorithm.split(" ")[0], s.sameAsReference]))
    expect(verdicts).toEqual([
      [["torch", "algoId=66", undefined], ["selfe", "algoId=66", true], ["selfe 1 MiB", "algoId=31", false], ["selfe timed", undefined, undefined]],
      [["torch", "algoId=21", undefined], ["selfe", "algoId=20", false], ["selfe 1 MiB", undefined, undefined], ["selfe timed", undefined, undefined]],
      [["torch", undefined, undefined], ["selfe", undefined, undefined], ["selfe 1 MiB", undefined, undefined], ["selfe timed", undefined, undefined]]
    ])
  })

  it("shortens the algorithm's enum names for the table", () => {
    expect(shortAlgorithm(parseTraceLine(bf16Bias)!.algorithm)).toBe("algoId=66 tile=128x128 stages=64x4 customOption=0 clusterShape=1x2x1")
    expect(shortAlgorithm("clusterShape=MATMUL_CLUSTER_SHAPE_2x1x1")).toBe("clusterShape=2x1x1")
  })
})
