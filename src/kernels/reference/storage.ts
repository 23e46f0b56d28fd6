import type { DType } from "../../tensor/dtype.ts"
import type { MemoryStats } from "../ops.ts"

/** Element arrays of the reference backend: f32 tensors in Float32Array or Float64Array, i32 in Int32Array. */
export type Floats = Float32Array | Float64Array
export type Words = Floats | Int32Array

/** One allocation. Views share it; it is freed when the last tensor on it is released. */
export class Storage {
  refs = 1
  constructor(
    readonly data: Words,
    readonly dtype: DType,
    /** Logical size (numel x dtype bytes), so stats match Tensor.bytes in either precision. */
    readonly bytes: number
  ) {}
}

/** What a Tensor's handle holds: its storage, until the tensor (or the whole backend) is released. */
export class ReferenceHandle {
  live = true
  constructor(readonly storage: Storage) {}
}

/** Live tensors and bytes, counted like the native allocator (which has no cache here). */
export class MemoryLedger {
  #liveTensors = 0
  #liveBytes = 0
  #peakBytes = 0
  #systemAllocs = 0

  allocated(storage: Storage): void {
    this.#systemAllocs++
    this.#liveBytes += storage.bytes
    this.#peakBytes = Math.max(this.#peakBytes, this.#liveBytes)
  }

  tensorCreated(): void {
    this.#liveTensors++
  }

  /** A tensor let go of its storage; the bytes go when no tensor holds it any more. */
  tensorReleased(storage: Storage): void {
    this.#liveTensors--
    storage.refs--
    if (storage.refs === 0) this.#liveBytes -= storage.bytes
  }

  stats(): MemoryStats {
    return {
      liveTensors: this.#liveTensors,
      liveBytes: this.#liveBytes,
      cachedBytes: 0,
      peakBytes: this.#peakBytes,
      systemAllocs: this.#systemAllocs
    }
  }
}
