/**
 * Writes item-cache entries in the background with bounded memory. A cache
 * `put` is an atomic write with fsync (milliseconds on a real disk, more than
 * decoding a small image); awaiting it inside the decode loop would serialise
 * the stage on fsync latency. Many fsyncs in flight cost about as much as one,
 * so puts run beside the decodes, at most `maxPending` at once; `add` waits
 * only when that many are already pending, and `drain` awaits them all.
 *
 * Does not retry, and does not decide what to cache.
 */
import type { ItemCache } from '../types.js';

/** A bounded queue of background cache writes. */
export class PutQueue {
  private readonly pending = new Set<Promise<void>>();
  private failure: unknown;

  constructor(private readonly cache: ItemCache, private readonly maxPending = 32) {}

  /** Starts `put(key, value)`; resolves once there is room for another. */
  async add(key: string, value: Buffer): Promise<void> {
    while (this.pending.size >= this.maxPending) await Promise.race(this.pending);
    const p: Promise<void> = this.cache.put(key, value).then(
      () => void this.pending.delete(p),
      (e: unknown) => {
        this.failure ??= e;
        this.pending.delete(p);
      },
    );
    this.pending.add(p);
  }

  /** Waits for every started put; rethrows the first failure (a cache write error is a bug or a full disk). */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.race(this.pending);
    if (this.failure !== undefined) throw this.failure;
  }
}
