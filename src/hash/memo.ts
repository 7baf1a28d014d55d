/**
 * The hash memo: absolute file path → (size, mtimeNs, ctimeNs, ino, sha256),
 * persisted as one compact columnar binary file so that loading 100,000
 * entries is a single read plus typed-array views (no per-entry parsing except
 * the path strings, which are split once).
 *
 * File layout (little endian), version 1:
 * ```
 * 0   'PLHMEMO1'           magic + format version
 * 8   u32 count
 * 12  u32 pathBytes        length of the NUL-joined UTF-8 path block
 * 16  f64 savedAtMs        wall clock when written
 * 24  i64 mtimeNs[count]   ┐
 *     i64 ctimeNs[count]   │ 8-byte columns
 *     u64 ino[count]       │
 *     f64 size[count]      ┘
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

const MAGIC = Buffer.from('PLHMEMO1', 'latin1');
const HEADER = 24;

/** One memoised file hash with the stat signature it was computed for. */
export interface MemoEntry {
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly ino: bigint;
  /** Lowercase hex sha256 of the file's bytes. */
  readonly hash: string;
}

/** A loaded memo: lookups hit the loaded columns or entries added since. */
export class HashMemo {
  private readonly index: Map<string, number>;
  private readonly paths: string[];
  private readonly mtime: BigInt64Array;
  private readonly ctime: BigInt64Array;
  private readonly ino: BigUint64Array;
  private readonly size: Float64Array;
  private readonly hashHex: string;
  /** Entries added or replaced since load. */
  private readonly added = new Map<string, MemoEntry>();
  /** Loaded entries removed since load. */
  private readonly removed = new Set<string>();
  /** When the loaded file was written (ms since epoch), 0 when there was none. */
  readonly savedAtMs: number;

  private constructor(cols: Columns | undefined) {
    this.paths = cols?.paths ?? [];
    this.mtime = cols?.mtime ?? new BigInt64Array(0);
    this.ctime = cols?.ctime ?? new BigInt64Array(0);
    this.ino = cols?.ino ?? new BigUint64Array(0);
    this.size = cols?.size ?? new Float64Array(0);
    this.hashHex = cols?.hashHex ?? '';
    this.savedAtMs = cols?.savedAtMs ?? 0;
    this.index = new Map();
    for (let i = 0; i < this.paths.length; i++) this.index.set(this.paths[i]!, i);
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
    let n = 0;
    for (const _ of this.keys()) n++;
    return n;
  }

  /** The entry for `path` if its stat signature equals the given one exactly. */
  lookup(path: string, size: bigint, mtimeNs: bigint, ctimeNs: bigint, ino: bigint): string | undefined {
    const a = this.added.get(path);
    if (a !== undefined) return a.size === size && a.mtimeNs === mtimeNs && a.ctimeNs === ctimeNs && a.ino === ino ? a.hash : undefined;
    const i = this.index.get(path);
    if (i === undefined || this.removed.has(path)) return undefined;
    if (this.mtime[i] !== mtimeNs || this.ctime[i] !== ctimeNs || this.ino[i] !== ino || this.size[i] !== Number(size)) return undefined;
    return this.hashHex.slice(i * 64, i * 64 + 64);
  }

  /** Adds or replaces an entry. */
  set(path: string, entry: MemoEntry): void {
    this.added.set(path, entry);
    this.removed.delete(path);
  }

  /** Removes an entry (e.g. the file is gone). Returns whether one existed. */
  delete(path: string): boolean {
    const had = this.added.delete(path);
    if (this.index.has(path) && !this.removed.has(path)) {
      this.removed.add(path);
      return true;
    }
    return had;
  }

  /** Every live path (loaded and added). */
  *keys(): IterableIterator<string> {
    for (const p of this.paths) if (!this.removed.has(p) && !this.added.has(p)) yield p;
    yield* this.added.keys();
  }

  /** Serialises all live entries. */
  encode(savedAtMs: number): Buffer {
    const rows: { path: string; e: MemoEntry | number }[] = [];
    for (let i = 0; i < this.paths.length; i++) {
      const p = this.paths[i]!;
      if (!this.removed.has(p) && !this.added.has(p)) rows.push({ path: p, e: i });
    }
    for (const [p, e] of this.added) rows.push({ path: p, e });
    const n = rows.length;
    const pathBlock = Buffer.from(rows.map((r) => r.path).join('\0'), 'utf8');
    const total = HEADER + n * 32 + n * 32 + pathBlock.length + 4;
    const ab = new ArrayBuffer(total);
    const buf = Buffer.from(ab);
    MAGIC.copy(buf, 0);
    buf.writeUInt32LE(n, 8);
    buf.writeUInt32LE(pathBlock.length, 12);
    buf.writeDoubleLE(savedAtMs, 16);
    const mt = new BigInt64Array(ab, HEADER, n);
    const ct = new BigInt64Array(ab, HEADER + 8 * n, n);
    const ino = new BigUint64Array(ab, HEADER + 16 * n, n);
    const size = new Float64Array(ab, HEADER + 24 * n, n);
    const hashOff = HEADER + 32 * n;
    for (let r = 0; r < n; r++) {
      const { e } = rows[r]!;
      if (typeof e === 'number') {
        mt[r] = this.mtime[e]!;
        ct[r] = this.ctime[e]!;
        ino[r] = this.ino[e]!;
        size[r] = this.size[e]!;
        buf.write(this.hashHex.slice(e * 64, e * 64 + 64), hashOff + r * 32, 32, 'hex');
      } else {
        mt[r] = e.mtimeNs;
        ct[r] = e.ctimeNs;
        ino[r] = e.ino;
        size[r] = Number(e.size);
        buf.write(e.hash, hashOff + r * 32, 32, 'hex');
      }
    }
    pathBlock.copy(buf, hashOff + 32 * n);
    buf.writeUInt32LE(zlib.crc32(buf.subarray(0, total - 4)), total - 4);
    return buf;
  }
}

interface Columns {
  paths: string[];
  mtime: BigInt64Array;
  ctime: BigInt64Array;
  ino: BigUint64Array;
  size: Float64Array;
  hashHex: string;
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
    mtime: new BigInt64Array(ab, base + HEADER, n),
    ctime: new BigInt64Array(ab, base + HEADER + 8 * n, n),
    ino: new BigUint64Array(ab, base + HEADER + 16 * n, n),
    size: new Float64Array(ab, base + HEADER + 24 * n, n),
    hashHex: buf.toString('hex', hashOff, hashOff + 32 * n),
    savedAtMs: buf.readDoubleLE(16),
  };
}
