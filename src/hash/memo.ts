/**
 * The hash memo: absolute file path → (size, mtimeMs, ctimeMs, ino, sha256),
 * persisted as one compact columnar binary file so that loading 100,000
 * entries is a single read plus typed-array views (no per-entry parsing except
 * the path strings, which are split once).
 *
 * File layout (little endian), version 1:
 * ```
 * 0   'PLHMEMO2'           magic + format version
 * 8   u32 count
 * 12  u32 pathBytes        length of the NUL-joined UTF-8 path block
 * 16  f64 savedAtMs        wall clock when written
 * 24  f64 mtimeMs[count]   ┐
 *     f64 ctimeMs[count]   │ 8-byte columns, exactly as `fs.Stats` reports them
 *     f64 ino[count]       │ (doubles: ~0.24 µs time resolution today; see
 *     f64 size[count]      ┘  file-hasher.ts for why not bigint)
 *     u8  sha256[count*32]
 *     u8  paths[pathBytes] paths joined by '\0'
 *     u32 crc32            of everything before it
 * ```
 * A file that is torn, truncated or of another version loads as an empty memo
 * (everything is simply re-hashed); it is never trusted partially.
 *
 * This module does not stat or hash files (that is `file-hasher.ts`) and does
 * not decide which entries are trustworthy (the racy-mtime rule lives there).
 */
import fs from 'node:fs';
import zlib from 'node:zlib';

const MAGIC = Buffer.from('PLHMEMO2', 'latin1');
const HEADER = 24;

/** One memoised file hash with the stat signature it was computed for. */
export interface MemoEntry {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  /** Lowercase hex sha256 of the file's bytes. */
  readonly hash: string;
}

/** A loaded memo: lookups hit the loaded columns or entries added since. */
export class HashMemo {
  /** Built on the first lookup that the sequential cursor does not answer. */
  private index: Map<string, number> | undefined;
  /** Next loaded row expected: walks visit files in the order they were saved, so most lookups hit here without hashing the path. */
  private cursor = 0;
  private readonly paths: string[];
  private readonly mtime: Float64Array;
  private readonly ctime: Float64Array;
  private readonly ino: Float64Array;
  private readonly size: Float64Array;
  /** Raw 32-byte hashes of the loaded rows (copied as is on save). */
  private readonly hashRaw: Buffer;
  private readonly hashHex: string;
  /** The loaded paths as stored (NUL-joined UTF-8), and where each starts in it (on first save). */
  private readonly pathBlock: Buffer;
  private pathStarts: Uint32Array | undefined;
  /** 1 for loaded rows looked up this session. */
  private readonly touched: Uint8Array;
  /** 1 for loaded rows deleted or superseded by an `added` entry. */
  private readonly gone: Uint8Array;
  /** First-visit order this session: a loaded row index, or an added path (the save order, so the next session's cursor hits). */
  private readonly visitOrder: (number | string)[] = [];
  /** Entries added or replaced since load. */
  private readonly added = new Map<string, MemoEntry>();
  /** When the loaded file was written (ms since epoch), 0 when there was none. */
  readonly savedAtMs: number;

  private constructor(cols: Columns | undefined) {
    this.paths = cols?.paths ?? [];
    this.mtime = cols?.mtime ?? new Float64Array(0);
    this.ctime = cols?.ctime ?? new Float64Array(0);
    this.ino = cols?.ino ?? new Float64Array(0);
    this.size = cols?.size ?? new Float64Array(0);
    this.hashRaw = cols?.hashRaw ?? Buffer.alloc(0);
    this.hashHex = cols?.hashHex ?? '';
    this.pathBlock = cols?.pathBlock ?? Buffer.alloc(0);
    this.savedAtMs = cols?.savedAtMs ?? 0;
    this.touched = new Uint8Array(this.paths.length);
    this.gone = new Uint8Array(this.paths.length);
  }

  /** An empty memo. */
  static empty(): HashMemo {
    return new HashMemo(undefined);
  }

  /** Decodes a memo file's bytes; anything malformed gives an empty memo. */
  static decode(buf: Buffer): HashMemo {
    return new HashMemo(decodeColumns(buf));
  }

  /** Reads `file`; a missing or malformed file gives an empty memo. */
  static load(file: string): HashMemo {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(file);
    } catch {
      return HashMemo.empty();
    }
    return HashMemo.decode(buf);
  }

  /** Number of live entries. */
  get count(): number {
    let n = this.added.size;
    for (let i = 0; i < this.gone.length; i++) if (this.gone[i] === 0) n++;
    return n;
  }

  /** Row of a loaded path (live or gone), or -1. Moves the cursor past it. */
  private row(path: string): number {
    const c = this.cursor;
    if (c < this.paths.length && this.paths[c] === path) {
      this.cursor = c + 1;
      return c;
    }
    if (this.index === undefined) {
      this.index = new Map();
      for (let i = 0; i < this.paths.length; i++) this.index.set(this.paths[i]!, i);
    }
    const i = this.index.get(path);
    if (i === undefined) return -1;
    this.cursor = i + 1;
    return i;
  }

  /** The hash for `path` if its stat signature equals the given one exactly. */
  lookup(path: string, size: number, mtimeMs: number, ctimeMs: number, ino: number): string | undefined {
    const a = this.added.size > 0 ? this.added.get(path) : undefined;
    if (a !== undefined) return a.size === size && a.mtimeMs === mtimeMs && a.ctimeMs === ctimeMs && a.ino === ino ? a.hash : undefined;
    const i = this.row(path);
    if (i < 0 || this.gone[i] === 1) return undefined;
    if (this.touched[i] === 0) {
      this.touched[i] = 1;
      this.visitOrder.push(i);
    }
    if (this.mtime[i] !== mtimeMs || this.ctime[i] !== ctimeMs || this.ino[i] !== ino || this.size[i] !== size) return undefined;
    return this.hashHex.slice(i * 64, i * 64 + 64);
  }

  /**
   * The entry for `path` whatever its stat signature (for memos keyed by
   * something that determines the content, e.g. an item-cache key).
   */
  get(path: string): MemoEntry | undefined {
    const a = this.added.size > 0 ? this.added.get(path) : undefined;
    if (a !== undefined) return a;
    const i = this.row(path);
    if (i < 0 || this.gone[i] === 1) return undefined;
    if (this.touched[i] === 0) {
      this.touched[i] = 1;
      this.visitOrder.push(i);
    }
    return { size: this.size[i]!, mtimeMs: this.mtime[i]!, ctimeMs: this.ctime[i]!, ino: this.ino[i]!, hash: this.hashHex.slice(i * 64, i * 64 + 64) };
  }

  /**
   * `get(path)?.size` without building the entry (no object, no hash string):
   * for callers that only check a size, once per item of a 10k-item run.
   */
  sizeOf(path: string): number | undefined {
    const a = this.added.size > 0 ? this.added.get(path) : undefined;
    if (a !== undefined) return a.size;
    const i = this.row(path);
    if (i < 0 || this.gone[i] === 1) return undefined;
    if (this.touched[i] === 0) {
      this.touched[i] = 1;
      this.visitOrder.push(i);
    }
    return this.size[i]!;
  }

  /** Adds or replaces an entry. */
  set(path: string, entry: MemoEntry): void {
    if (!this.added.has(path)) {
      this.visitOrder.push(path);
      const i = this.row(path);
      if (i >= 0) this.gone[i] = 1; // superseded
    }
    this.added.set(path, entry);
  }

  /** Removes an entry (e.g. the file is gone). Returns whether one existed. */
  delete(path: string): boolean {
    const had = this.added.delete(path);
    const i = this.row(path);
    if (i >= 0 && this.gone[i] === 0) {
      this.gone[i] = 1;
      return true;
    }
    return had;
  }

  /** Every live path (loaded and added). */
  *keys(): IterableIterator<string> {
    for (let i = 0; i < this.paths.length; i++) if (this.gone[i] === 0) yield this.paths[i]!;
    yield* this.added.keys();
  }

  /**
   * Drops loaded entries that were not looked up this session and lie under
   * one of `roots` (directories walked in full: their unseen files are gone).
   * Returns how many were dropped.
   */
  pruneUnvisitedUnder(roots: readonly string[]): number {
    if (roots.length === 0) return 0;
    let n = 0;
    for (let i = 0; i < this.paths.length; i++) {
      if (this.gone[i] === 1 || this.touched[i] === 1) continue;
      const p = this.paths[i]!;
      if (roots.some((r) => p.startsWith(r))) {
        this.gone[i] = 1;
        n++;
      }
    }
    return n;
  }

  /**
   * The NUL-joined UTF-8 paths of `runs` (see `rowRuns`): a run of loaded
   * rows is one slice of the loaded path block, an added path is encoded.
   */
  private pathBytesOf(runs: readonly Run[]): Buffer {
    if (this.pathStarts === undefined) {
      // Byte offset of each loaded row's path in the loaded block (n + 1 entries; the last is the block's length + 1).
      const starts = new Uint32Array(this.paths.length + 1);
      let at = 0;
      for (let i = 0; i < this.paths.length; i++) {
        starts[i] = at;
        at = i + 1 < this.paths.length ? this.pathBlock.indexOf(0, at) + 1 : this.pathBlock.length + 1;
      }
      starts[this.paths.length] = at;
      this.pathStarts = starts;
    }
    const starts = this.pathStarts;
    const parts: Buffer[] = [];
    for (const run of runs) {
      if (parts.length > 0) parts.push(NUL);
      if (typeof run === 'string') parts.push(Buffer.from(run, 'utf8'));
      else parts.push(this.pathBlock.subarray(starts[run[0]]!, starts[run[0] + run[1]]! - 1));
    }
    return Buffer.concat(parts);
  }

  /** Serialises all live entries: this session's visit order first, then the rest. */
  encode(savedAtMs: number): Buffer {
    // Save order: rows (number) and added paths (string), each once.
    const order: (number | string)[] = [];
    const placedRow = new Uint8Array(this.paths.length);
    const placedAdded = new Set<string>();
    const place = (x: number | string): void => {
      if (typeof x === 'number') {
        if (this.gone[x] === 1 || placedRow[x] === 1) return;
        placedRow[x] = 1;
      } else {
        if (!this.added.has(x) || placedAdded.has(x)) return;
        placedAdded.add(x);
      }
      order.push(x);
    };
    for (const x of this.visitOrder) place(x);
    for (let i = 0; i < this.paths.length; i++) place(i);
    for (const p of this.added.keys()) place(p);

    const n = order.length;
    // Runs of consecutive loaded rows (a re-save mostly keeps the loaded order) are copied as blocks: columns,
    // hashes and path bytes alike, instead of row by row and path by path.
    const runs = rowRuns(order);
    const pathBlock = this.pathBytesOf(runs);
    const total = HEADER + n * 32 + n * 32 + pathBlock.length + 4;
    const ab = new ArrayBuffer(total);
    const buf = Buffer.from(ab);
    MAGIC.copy(buf, 0);
    buf.writeUInt32LE(n, 8);
    buf.writeUInt32LE(pathBlock.length, 12);
    buf.writeDoubleLE(savedAtMs, 16);
    const mt = new Float64Array(ab, HEADER, n);
    const ct = new Float64Array(ab, HEADER + 8 * n, n);
    const ino = new Float64Array(ab, HEADER + 16 * n, n);
    const size = new Float64Array(ab, HEADER + 24 * n, n);
    const hashOff = HEADER + 32 * n;
    let r = 0;
    for (const run of runs) {
      if (typeof run === 'string') {
        const e = this.added.get(run)!;
        mt[r] = e.mtimeMs;
        ct[r] = e.ctimeMs;
        ino[r] = e.ino;
        size[r] = e.size;
        buf.write(e.hash, hashOff + r * 32, 32, 'hex');
        r++;
        continue;
      }
      const [from, len] = run;
      mt.set(this.mtime.subarray(from, from + len), r);
      ct.set(this.ctime.subarray(from, from + len), r);
      ino.set(this.ino.subarray(from, from + len), r);
      size.set(this.size.subarray(from, from + len), r);
      this.hashRaw.copy(buf, hashOff + r * 32, from * 32, (from + len) * 32);
      r += len;
    }
    pathBlock.copy(buf, hashOff + 32 * n);
    buf.writeUInt32LE(zlib.crc32(buf.subarray(0, total - 4)), total - 4);
    return buf;
  }
}

/** A run of the save order: `[first loaded row, count]` of consecutive rows, or one added path. */
type Run = readonly [number, number] | string;

const NUL = Buffer.from([0]);

/** `order` (loaded rows and added paths) as runs of consecutive rows and single added paths. */
function rowRuns(order: readonly (number | string)[]): Run[] {
  const runs: Run[] = [];
  let from = -1;
  let len = 0;
  for (const x of order) {
    if (typeof x === 'number' && len > 0 && x === from + len) {
      len++;
      continue;
    }
    if (len > 0) runs.push([from, len]);
    len = 0;
    if (typeof x === 'number') {
      from = x;
      len = 1;
    } else runs.push(x);
  }
  if (len > 0) runs.push([from, len]);
  return runs;
}

interface Columns {
  paths: string[];
  mtime: Float64Array;
  ctime: Float64Array;
  ino: Float64Array;
  size: Float64Array;
  hashRaw: Buffer;
  hashHex: string;
  /** The paths as stored: NUL-joined UTF-8. */
  pathBlock: Buffer;
  savedAtMs: number;
}

function decodeColumns(input: Buffer): Columns | undefined {
  if (input.length < HEADER + 4 || !input.subarray(0, 8).equals(MAGIC)) return undefined;
  const n = input.readUInt32LE(8);
  const pathBytes = input.readUInt32LE(12);
  const total = HEADER + 64 * n + pathBytes + 4;
  if (input.length !== total) return undefined;
  if (zlib.crc32(input.subarray(0, total - 4)) !== input.readUInt32LE(total - 4)) return undefined;
  // Typed-array views need 8-byte alignment of the underlying offset.
  const buf = input.byteOffset % 8 === 0 ? input : Buffer.from(input);
  const ab = buf.buffer;
  const base = buf.byteOffset;
  const hashOff = HEADER + 32 * n;
  const pathsStr = buf.toString('utf8', hashOff + 32 * n, hashOff + 32 * n + pathBytes);
  const paths = n === 0 ? [] : pathsStr.split('\0');
  if (paths.length !== n) return undefined;
  return {
    paths,
    mtime: new Float64Array(ab, base + HEADER, n),
    ctime: new Float64Array(ab, base + HEADER + 8 * n, n),
    ino: new Float64Array(ab, base + HEADER + 16 * n, n),
    size: new Float64Array(ab, base + HEADER + 24 * n, n),
    hashRaw: buf.subarray(hashOff, hashOff + 32 * n),
    hashHex: buf.toString('hex', hashOff, hashOff + 32 * n),
    pathBlock: buf.subarray(hashOff + 32 * n, hashOff + 32 * n + pathBytes),
    savedAtMs: buf.readDoubleLE(16),
  };
}
