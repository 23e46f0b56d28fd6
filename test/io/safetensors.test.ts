import { describe, expect, it } from "vitest"
import { SafetensorsError, decodeSafetensors, encodeSafetensors } from "../../src/io/safetensors.ts"

const file = {
  tensors: [
    { name: "w", dtype: "F32" as const, shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6.5]) },
    { name: "ids", dtype: "I32" as const, shape: [3], data: Int32Array.from([-1, 0, 7]) },
    { name: "scalar", dtype: "F64" as const, shape: [], data: Float64Array.from([Math.PI]) }
  ],
  metadata: { step: "12", note: "ünïcode" }
}

describe("safetensors", () => {
  it("round-trips tensors and metadata, with an 8-byte aligned data section", () => {
    const bytes = encodeSafetensors(file)
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true))
    expect(headerLength % 8).toBe(0)
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)))
    expect(header.w).toEqual({ dtype: "F32", shape: [2, 3], data_offsets: [0, 24] })
    expect(header.__metadata__).toEqual(file.metadata)
    const decoded = decodeSafetensors(bytes)
    expect(decoded.metadata).toEqual(file.metadata)
    expect(decoded.tensors.map((t) => [t.name, t.dtype, t.shape, Array.from(t.data)])).toEqual(
      file.tensors.map((t) => [t.name, t.dtype, t.shape, Array.from(t.data)])
    )
  })

  it("reads a file whose data sits at an odd offset inside a larger buffer", () => {
    const bytes = encodeSafetensors(file)
    const padded = new Uint8Array(bytes.length + 3)
    padded.set(bytes, 3)
    expect(Array.from(decodeSafetensors(padded.subarray(3)).tensors[0]!.data)).toEqual([1, 2, 3, 4, 5, 6.5])
  })

  it("names what is wrong with a corrupt file", () => {
    const bytes = encodeSafetensors(file)
    const reason = (b: Uint8Array) => {
      try {
        decodeSafetensors(b)
        return "decoded"
      } catch (error) {
        expect(error).toBeInstanceOf(SafetensorsError)
        return (error as SafetensorsError).reason
      }
    }
    expect(reason(bytes.subarray(0, 5))).toMatch(/fewer than the 8-byte header/)
    expect(reason(bytes.subarray(0, 40))).toMatch(/header length .* exceeds/)
    expect(reason(bytes.subarray(0, bytes.length - 4))).toMatch(/scalar: byte range .* outside/)
    const garbled = bytes.slice()
    garbled[9] = 0x7b
    garbled[10] = 0x7b
    expect(reason(garbled)).toMatch(/header is not JSON/)
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))))
    const overlapping = text.replace('"data_offsets":[24,36]', '"data_offsets":[20,32]')
    const forged = new Uint8Array(bytes)
    forged.set(new TextEncoder().encode(overlapping), 8)
    expect(reason(forged)).toMatch(/overlaps/)
  })

  it("refuses to write inconsistent tensors", () => {
    expect(() => encodeSafetensors({ tensors: [{ name: "x", dtype: "F32", shape: [4], data: new Float32Array(3) }], metadata: {} })).toThrow(/3 values for shape \[4\]/)
    expect(() => encodeSafetensors({ tensors: [{ name: "x", dtype: "I32", shape: [1], data: new Float32Array(1) }], metadata: {} })).toThrow(/not I32/)
  })
})
