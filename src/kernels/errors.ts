import { Schema } from "effect"

const fields = {
  /** The op that refused or failed, e.g. "linear" or "stream". */
  op: Schema.String,
  /** What was wrong, naming the argument. */
  reason: Schema.String
}

/** A tensor's shape does not fit the op. */
export class ShapeError extends Schema.TaggedError<ShapeError>()("ShapeError", fields) {
  override get message() {
    return `${this.op}: ${this.reason}`
  }
}

/** A tensor has the wrong element type for the op or backend. */
export class DTypeError extends Schema.TaggedError<DTypeError>()("DTypeError", fields) {
  override get message() {
    return `${this.op}: ${this.reason}`
  }
}

/** A tensor (or the device) was used after it was released. */
export class DisposedTensorError extends Schema.TaggedError<DisposedTensorError>()("DisposedTensorError", fields) {
  override get message() {
    return `${this.op}: ${this.reason}`
  }
}

/** A scalar or option is out of range, not finite, or of the wrong type. */
export class InvalidArgumentError extends Schema.TaggedError<InvalidArgumentError>()("InvalidArgumentError", fields) {
  override get message() {
    return `${this.op}: ${this.reason}`
  }
}

/** The device could not allocate an op's output. */
export class OutOfMemoryError extends Schema.TaggedError<OutOfMemoryError>()("OutOfMemoryError", fields) {
  override get message() {
    return `${this.op}: ${this.reason}`
  }
}

/** Work failed on the device (sticky, like a CUDA error): later reads and syncs report it too. */
export class DeviceError extends Schema.TaggedError<DeviceError>()("DeviceError", fields) {
  override get message() {
    return `${this.op}: ${this.reason}`
  }
}

/** A mock kernel layer was asked for an op the test did not stub. */
export class UnstubbedOpError extends Schema.TaggedError<UnstubbedOpError>()("UnstubbedOpError", fields) {
  override get message() {
    return `${this.op}: ${this.reason}`
  }
}

export type KernelError =
  | ShapeError
  | DTypeError
  | DisposedTensorError
  | InvalidArgumentError
  | OutOfMemoryError
  | DeviceError
  | UnstubbedOpError

const kernelErrorTags = new Set([
  "ShapeError",
  "DTypeError",
  "DisposedTensorError",
  "InvalidArgumentError",
  "OutOfMemoryError",
  "DeviceError",
  "UnstubbedOpError"
])

export const isKernelError = (u: unknown): u is KernelError =>
  typeof u === "object" && u !== null && "_tag" in u && kernelErrorTags.has((u as { _tag: string })._tag)

const byNativeCode = {
  SELFE_INVALID_ARGUMENT: InvalidArgumentError,
  SELFE_SHAPE: ShapeError,
  SELFE_DTYPE: DTypeError,
  SELFE_DISPOSED: DisposedTensorError,
  SELFE_OUT_OF_MEMORY: OutOfMemoryError,
  SELFE_DEVICE: DeviceError
} as const

/** The one place where anything a backend throws becomes a typed KernelError. */
export const toKernelError = (op: string, cause: unknown): KernelError => {
  if (isKernelError(cause)) return cause
  if (cause instanceof Error) {
    const native = cause as Error & { code?: string; op?: string; reason?: string }
    const ErrorClass = native.code !== undefined ? byNativeCode[native.code as keyof typeof byNativeCode] : undefined
    if (ErrorClass !== undefined) return new ErrorClass({ op: native.op ?? op, reason: native.reason ?? native.message })
    if (cause instanceof TypeError || cause instanceof RangeError)
      return new InvalidArgumentError({ op, reason: cause.message })
    return new DeviceError({ op, reason: cause.message })
  }
  return new DeviceError({ op, reason: String(cause) })
}
