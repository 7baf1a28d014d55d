/**
 * Image shards: the packed pixel format that `resize` and `augment` write and
 * the model stages read, so no stage decodes an image twice.
 *
 * Layout of a shard directory:
 *   index.json         ShardIndex (below)
 *   shard-00000.bin    items back to back, each `height*width*channels` bytes,
 *   shard-00001.bin    uint8, row-major NHWC (row, column, channel), no header
 *   ...
 * Item `i` of `items` lives in `shards[items[i].shard]` at byte offset
 * `items[i].index * itemBytes`.
 *
 * Per-image packs (`resize` since issue 3's incremental work): a shard entry
 * may instead name a pack file holding ONE item, laid out as
 *   px/<key[0:2]>/<key>.px   itemBytes of pixels, then a 32-byte trailer:
 *                            the raw sha256 of those pixels
 * and marked `{ count: 1, trailer: 'sha256' }` in `shards`. This is exactly
 * the on-disk form of an item-cache entry (src/cache/item-cache.ts), so
 * `resize` hard-links its cached entries into its output: adding 1% new
 * images writes 1% new bytes, and the engine's store recognises the linked
 * inodes instead of re-hashing them. Pack files are immutable: nobody writes
 * into one (a new value is a new file renamed into place). The item offset
 * rule above still holds (index 0, offset 0), so a reader that ignores
 * `trailer` and reads the first `itemBytes` bytes gets the right pixels.
 *
 * This module reads and writes that layout; it does not resize, label or split.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';

/** Bytes of the sha256 trailer after a pack's pixels. */
export const PACK_TRAILER_BYTES = 32;

/** Format tag written into every index. */
export const SHARD_FORMAT = 'pipeline.image-shards/v1';

/** One image in a shard directory. */
export interface ShardItem {
  /** Unique id within the directory: the source image's sha256, or `<sha256>#<copy>` for augmented variants. */
  readonly id: string;
  /** sha256 of the source image file's bytes. */
  readonly source: string;
  /** Index into `ShardIndex.classes`. */
  readonly label: number;
  /** Which shard file holds the pixels. */
  readonly shard: number;
  /** Position of the item inside its shard. */
  readonly index: number;
}

/** The `index.json` of a shard directory. */
export interface ShardIndex {
  readonly format: typeof SHARD_FORMAT;
  readonly height: number;
  readonly width: number;
  readonly channels: 1 | 3;
  /** Sorted class names; `label` indexes into this. */
  readonly classes: readonly string[];
  /** Bytes per item: height * width * channels. */
  readonly itemBytes: number;
  readonly shards: readonly ShardFile[];
  readonly items: readonly ShardItem[];
  /**
   * How source images were turned into these pixels, beyond height/width/channels (written by `resize` since
   * the model stages record it so `predict` resizes new images identically; absent in older directories and in
   * shards not made from image files).
   */
  readonly resize?: ShardResizeInfo;
}

/** The resize settings a shard directory was made with (lib/image-io.ts `ResizeOptions` minus size/channels). */
export interface ShardResizeInfo {
  /** `cover` | `contain` | `fill` (image-io.ts `Fit`). */
  readonly fit: string;
  /** sharp kernel name (image-io.ts `Kernel`). */
  readonly kernel: string;
  /** `#rgb` / `#rrggbb` the alpha channel was flattened onto and `contain` padded with. */
  readonly background: string;
}

/** One file of a shard directory. */
export interface ShardFile {
  /** Path relative to the shard directory (`/`-separated). */
  readonly file: string;
  /** Items in the file. */
  readonly count: number;
  /** `sha256`: a per-image pack whose pixels are followed by their 32-byte sha256 (see module doc). Absent: plain shard. */
  readonly trailer?: 'sha256';
}

/** The file of a per-image pack for a key (hex): `px/<key[0:2]>/<key>.px`. */
export function packFileOf(key: string): string {
  return `px/${key.slice(0, 2)}/${key}.px`;
}

/** Where the key starts in `packFileOf(key)` (added for resize: the key back from a pack file without a map). */
export const PACK_KEY_AT = 'px/ab/'.length;

/** Characters `packFileOf` adds around the key: `packFileOf(key).length === key.length + PACK_FILE_EXTRA`. */
export const PACK_FILE_EXTRA = 'px/ab/.px'.length;

/** The bytes of a pack file for `pixels`: the pixels then their sha256. */
export function packBytes(pixels: Uint8Array): Buffer {
  return Buffer.concat([pixels, createHash('sha256').update(pixels).digest()]);
}

/** Geometry and labels of a shard directory being written. */
export interface ShardSpec {
  readonly height: number;
  readonly width: number;
  readonly channels: 1 | 3;
  readonly classes: readonly string[];
  /** Items per shard file (default 4096). */
  readonly itemsPerShard?: number;
  /**
   * fsync the last shard on `close()` (default true). A stage whose output the
   * engine's store ingests may pass false: the store re-hashes and fsyncs what
   * it keeps, and the fsync was most of an incremental resize run (added by the data stages).
   */
  readonly fsync?: boolean;
  /** Recorded as `ShardIndex.resize` (see there). */
  readonly resize?: ShardResizeInfo;
}

/** Writes a shard directory item by item. Call `close()` to write `index.json` (last, so a crash leaves no index). */
export class ShardWriter {
  private readonly items: ShardItem[] = [];
  private readonly shards: { file: string; count: number; trailer?: 'sha256' }[] = [];
  private fd: number | undefined;
  private readonly itemBytes: number;
  private readonly perShard: number;

  constructor(private readonly dir: string, private readonly spec: ShardSpec) {
    this.itemBytes = spec.height * spec.width * spec.channels;
    this.perShard = spec.itemsPerShard ?? 4096;
    fs.mkdirSync(dir, { recursive: true });
  }

  /** Appends one item's pixels (exactly `itemBytes` bytes). */
  add(id: string, source: string, label: number, pixels: Uint8Array): void {
    if (pixels.length !== this.itemBytes) {
      throw new Error(`shard item ${id}: expected ${this.itemBytes} bytes, got ${pixels.length}`);
    }
    let current = this.shards[this.shards.length - 1];
    if (current === undefined || this.fd === undefined || current.count >= this.perShard) {
      if (this.fd !== undefined) fs.closeSync(this.fd);
      current = { file: `shard-${String(this.shards.length).padStart(5, '0')}.bin`, count: 0 };
      this.shards.push(current);
      this.fd = fs.openSync(path.join(this.dir, current.file), 'w');
    }
    fs.writeSync(this.fd!, pixels);
    this.items.push({ id, source, label, shard: this.shards.length - 1, index: current.count });
    current.count++;
  }

  /**
   * Appends one item held in its own pack file `file` (relative to the
   * directory, see `packFileOf`), already written or linked there by the
   * caller (its size is checked unless `opts.sizeChecked` says the caller
   * just did). A later `add` starts a new plain shard.
   */
  addPack(id: string, source: string, label: number, file: string, opts: { readonly sizeChecked?: boolean } = {}): void {
    const size = opts.sizeChecked === true ? this.itemBytes + PACK_TRAILER_BYTES : fs.statSync(path.join(this.dir, file)).size;
    if (size !== this.itemBytes + PACK_TRAILER_BYTES) {
      throw new Error(`shard item ${id}: pack ${file} has ${size} bytes, expected ${this.itemBytes + PACK_TRAILER_BYTES}`);
    }
    if (this.fd !== undefined) {
      if (this.spec.fsync ?? true) fs.fsyncSync(this.fd);
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
    this.shards.push({ file, count: 1, trailer: 'sha256' });
    this.items.push({ id, source, label, shard: this.shards.length - 1, index: 0 });
  }

  /** Number of items added so far. */
  get count(): number {
    return this.items.length;
  }

  /** Flushes, writes `index.json` and returns the index. */
  close(): ShardIndex {
    if (this.fd !== undefined) {
      if (this.spec.fsync ?? true) fs.fsyncSync(this.fd);
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
    const index: ShardIndex = {
      format: SHARD_FORMAT,
      height: this.spec.height,
      width: this.spec.width,
      channels: this.spec.channels,
      classes: [...this.spec.classes],
      itemBytes: this.itemBytes,
      shards: this.shards,
      items: this.items,
      ...(this.spec.resize !== undefined ? { resize: { fit: this.spec.resize.fit, kernel: this.spec.resize.kernel, background: this.spec.resize.background } } : {}),
    };
    fs.writeFileSync(path.join(this.dir, 'index.json'), JSON.stringify(index));
    return index;
  }
}

/** Random access to a shard directory's pixels. Shards are loaded whole on first use. */
export class ShardReader {
  readonly index: ShardIndex;
  private readonly loaded = new Map<number, Buffer>();

  constructor(private readonly dir: string) {
    const raw = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as ShardIndex;
    if (raw.format !== SHARD_FORMAT) throw new Error(`${dir}: not an image shard directory (format ${String(raw.format)})`);
    this.index = raw;
  }

  /** Number of items. */
  get count(): number {
    return this.index.items.length;
  }

  /** Pixels of item `i` (a view; copy it before mutating). */
  pixels(i: number): Uint8Array {
    const item = this.index.items[i];
    if (item === undefined) throw new RangeError(`item ${i} out of range (${this.count})`);
    let buf = this.loaded.get(item.shard);
    if (buf === undefined) {
      const shard = this.index.shards[item.shard]!;
      buf = fs.readFileSync(path.join(this.dir, shard.file));
      const want = shard.count * this.index.itemBytes + (shard.trailer === 'sha256' ? PACK_TRAILER_BYTES : 0);
      if (buf.length !== want) throw new Error(`${path.join(this.dir, shard.file)}: ${buf.length} bytes, expected ${want} (truncated or foreign shard file)`);
      this.loaded.set(item.shard, buf);
    }
    const start = item.index * this.index.itemBytes;
    return buf.subarray(start, start + this.index.itemBytes);
  }

  /** Copies items `indices` into one contiguous NHWC uint8 batch. */
  batch(indices: readonly number[]): Uint8Array {
    const out = new Uint8Array(indices.length * this.index.itemBytes);
    indices.forEach((idx, k) => out.set(this.pixels(idx), k * this.index.itemBytes));
    return out;
  }
}
