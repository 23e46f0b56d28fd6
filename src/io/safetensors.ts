import { Schema } from "effect"

/**
 * The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a JSON header
 * naming each tensor's dtype, shape and byte range, optional string metadata under "__metadata__", then
 * the raw little-endian data. No npm package reads it, so this is the project's own, small and strict.
 */

export type SafetensorDType = "F32" | "I32" | "F64"

export interface NamedTensor {
  readonly name: string
  readonly dtype: SafetensorDType
  readonly shape: ReadonlyArray<number>
  readonly data: Float32Array | Int32Array | Float64Array
}

export interface SafetensorsFile {
  readonly tensors: ReadonlyArray<NamedTensor>
  readonly metadata: Readonly<Record<string, string>>
}

/** A file that is not valid safetensors, with what is wrong. */
export class SafetensorsError extends Schema.TaggedError<SafetensorsError>()("SafetensorsError", { reason: Schema.String }) {
  override get message(): string {
    return `invalid safetensors: ${this.reason}`
  }
}

const elementBytes: Record<SafetensorDType, number> = { F32: 4, I32: 4, F64: 8 }
const arrayOf: Record<SafetensorDType, new (buffer: ArrayBuffer) => Float32Array | Int32Array | Float64Array> = {
  F32: Float32Array,
  I32: Int32Array,
  F64: Float64Array
}
const dtypeOf = (data: NamedTensor["data"]): SafetensorDType =>
  data instanceof Float32Array ? "F32" : data instanceof Int32Array ? "I32" : "F64"

const numel = (shape: ReadonlyArray<number>) => shape.reduce((n, d) => n * d, 1)

export const encodeSafetensors = (file: SafetensorsFile): Uint8Array => {
  const header: Record<string, unknown> = {}
  if (Object.keys(file.metadata).length > 0) header["__metadata__"] = file.metadata
  let offset = 0
  for (const tensor of file.tensors) {
    if (tensor.name === "__metadata__" || tensor.name in header) throw new SafetensorsError({ reason: `duplicate or reserved tensor name ${tensor.name}` })
    if (dtypeOf(tensor.data) !== tensor.dtype) throw new SafetensorsError({ reason: `${tensor.name}: data is not ${tensor.dtype}` })
    if (tensor.data.length !== numel(tensor.shape))
      throw new SafetensorsError({ reason: `${tensor.name}: ${tensor.data.length} values for shape [${tensor.shape.join(", ")}]` })
    const bytes = tensor.data.length * elementBytes[tensor.dtype]
    header[tensor.name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + bytes] }
    offset += bytes
  }
  const json = new TextEncoder().encode(JSON.stringify(header))
  // Pad the header with spaces so the data starts 8-byte aligned (readers may map it as typed arrays).
  const headerLength = Math.ceil(json.length / 8) * 8
  const out = new Uint8Array(8 + headerLength + offset)
  const view = new DataView(out.buffer)
  view.setBigUint64(0, BigInt(headerLength), true)
  out.set(json, 8)
  out.fill(0x20, 8 + json.length, 8 + headerLength)
  let position = 8 + headerLength
  for (const tensor of file.tensors) {
    const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength)
    out.set(bytes, position)
    position += bytes.length
  }
  return out
}

const HeaderEntry = Schema.Struct({
  dtype: Schema.Literal("F32", "I32", "F64"),
  shape: Schema.Array(Schema.NonNegativeInt),
  data_offsets: Schema.Tuple(Schema.NonNegativeInt, Schema.NonNegativeInt)
})
const Metadata = Schema.Record({ key: Schema.String, value: Schema.String })

export const decodeSafetensors = (bytes: Uint8Array): SafetensorsFile => {
  if (bytes.length < 8) throw new SafetensorsError({ reason: `file has ${bytes.length} bytes, fewer than the 8-byte header length` })
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true))
  if (headerLength > bytes.length - 8) throw new SafetensorsError({ reason: `header length ${headerLength} exceeds the file` })
  let header: unknown
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)))
  } catch (cause) {
    throw new SafetensorsError({ reason: `header is not JSON: ${String(cause)}` })
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw new SafetensorsError({ reason: "header is not an object" })
  const dataStart = 8 + headerLength
  const dataLength = bytes.length - dataStart
  let metadata: Record<string, string> = {}
  const tensors: Array<NamedTensor> = []
  const ranges: Array<[number, number, string]> = []
  for (const [name, value] of Object.entries(header)) {
    if (name === "__metadata__") {
      const decoded = Schema.decodeUnknownEither(Metadata)(value)
      if (decoded._tag === "Left") throw new SafetensorsError({ reason: "__metadata__ must map strings to strings" })
      metadata = { ...decoded.right }
      continue
    }
    const entry = Schema.decodeUnknownEither(HeaderEntry)(value)
    if (entry._tag === "Left") throw new SafetensorsError({ reason: `${name}: malformed entry (dtype F32/I32/F64, shape, data_offsets)` })
    const { dtype, shape, data_offsets: [begin, end] } = entry.right
    if (end < begin || end > dataLength) throw new SafetensorsError({ reason: `${name}: byte range [${begin}, ${end}) is outside the ${dataLength} data bytes` })
    if (end - begin !== numel(shape) * elementBytes[dtype])
      throw new SafetensorsError({ reason: `${name}: ${end - begin} bytes do not hold ${dtype}[${shape.join(", ")}]` })
    // Copy into a fresh, aligned buffer: the data section need not be aligned in files from elsewhere, and a
    // Node Buffer's slice would share (and expose) the whole file's memory.
    const copy = new Uint8Array(end - begin)
    copy.set(bytes.subarray(dataStart + begin, dataStart + end))
    tensors.push({ name, dtype, shape, data: new arrayOf[dtype](copy.buffer) })
    ranges.push([begin, end, name])
  }
  ranges.sort((a, b) => a[0] - b[0])
  for (let i = 1; i < ranges.length; i++)
    if ((ranges[i] as [number, number, string])[0] < (ranges[i - 1] as [number, number, string])[1])
      throw new SafetensorsError({ reason: `${ranges[i]![2]} overlaps ${ranges[i - 1]![2]}` })
  return { tensors, metadata }
}
