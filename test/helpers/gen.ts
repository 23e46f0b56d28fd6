import type { Shape } from "../../src/tensor/dtype.ts"

/** A seeded generator (mulberry32) so one case builds identical inputs on every backend. */
export class Gen {
  #state: number

  constructor(seed: number) {
    this.#state = seed >>> 0
  }

  uniform(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0
    let t = this.#state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo + 1))
  }

  normal(): number {
    const u = Math.max(this.uniform(), 1e-12)
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform())
  }

  normals(n: number, scale = 1): Array<number> {
    return Array.from({ length: n }, () => this.normal() * scale)
  }

  uniforms(n: number, lo: number, hi: number): Array<number> {
    return Array.from({ length: n }, () => lo + (hi - lo) * this.uniform())
  }

  /** A shape of the given rank with dims in [lo, hi]. */
  shape(rank: number, lo = 1, hi = 6): Shape {
    return Array.from({ length: rank }, () => this.int(lo, hi))
  }

  pick<T>(items: ReadonlyArray<T>): T {
    return items[this.int(0, items.length - 1)] as T
  }
}
