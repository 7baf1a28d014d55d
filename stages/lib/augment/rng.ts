/**
 * Deterministic random draws for augmentation. Each (seed, image sha256, copy
 * index) gets its own xoshiro128** stream, keyed by a sha256 of the three, so
 * a variant's draws never depend on which other images exist, their order, or
 * which worker computes it.
 *
 * `RandomSource` is the seam between Keras' draw order (random-transform.ts)
 * and the generator: tests inject scripted draws through it.
 *
 * This module does not reproduce NumPy's Mersenne Twister stream: Keras with a
 * given integer seed and this module with the same seed draw different numbers
 * (the *order and use* of the draws is what matches Keras).
 */
import { createHash } from 'node:crypto';

/** The two primitive draws `get_random_transform` needs (NumPy legacy `RandomState` equivalents). */
export interface RandomSource {
  /** Uniform double in [0, 1) (NumPy `random_sample()`); `uniform(lo, hi)` is `lo + (hi - lo) * random()`. */
  random(): number;
  /** Uniform integer in [0, n) for n >= 1 (NumPy `randint(0, n)`, used by `choice`). */
  randint(n: number): number;
}

/** xoshiro128** (Blackman & Vigna): 128-bit state, 32-bit outputs, all-integer so bit-identical on every platform. */
export class Xoshiro128 implements RandomSource {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** `state` must hold 4 words, not all zero. */
  constructor(state: readonly [number, number, number, number]) {
    [this.s0, this.s1, this.s2, this.s3] = state.map((v) => v >>> 0) as [number, number, number, number];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 0x9e3779b9;
  }

  /** Next 32-bit unsigned output. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** 53-bit double in [0, 1), built from two outputs like NumPy's `random_sample` (27 + 26 bits). */
  random(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Unbiased integer in [0, n) by masked rejection (as NumPy's legacy bounded integers). */
  randint(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 0x100000000) throw new RangeError(`randint bound must be an integer in [1, 2^32], got ${n}`);
    const max = n - 1;
    if (max === 0) return 0;
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    for (;;) {
      const v = (this.nextUint32() & mask) >>> 0;
      if (v <= max) return v;
    }
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * The random stream of one augmented variant: keyed by the run seed, the
 * source image's sha256 and the copy index `k`.
 */
export function variantRandom(seed: number, sourceSha256: string, k: number): Xoshiro128 {
  const digest = createHash('sha256').update(JSON.stringify(['pipeline.augment.rng/v1', seed, sourceSha256, k])).digest();
  return new Xoshiro128([digest.readUInt32LE(0), digest.readUInt32LE(4), digest.readUInt32LE(8), digest.readUInt32LE(12)]);
}
