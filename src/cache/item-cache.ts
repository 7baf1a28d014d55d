/**
 * A directory-backed per-item cache (see `ItemCache` in stages/types.ts).
 * Entries live at `<root>/<key[0:2]>/<key>`; each value is stored with a
 * trailing 32-byte sha256 of its bytes so a torn or corrupted entry reads as a
 * miss instead of bad data. That on-disk form is also the per-image pack
 * layout of stages/lib/shards.ts, which is what lets `link` hand an entry to a
 * stage's output without copying it.
 *
 * Entries are immutable: created read-only (0444), replaced only by writing a
 * temp file and renaming it over the entry, never written in place. So a hard
 * link to an entry (from `link`, or a cache object sharing its inode, see
 * store.ts) always keeps the bytes it had when linked.
 *
 * Does not evict: `cache gc` prunes entries no cached output shares and
 * nothing used for a while (item-gc.ts). `CacheStore.verify` checks entries'
 * trailers.
 */
import fs from 'node:fs/promises';
import fss from 'node:fs';
import path from 'node:path';
import crypto, { createHash, randomBytes } from 'node:crypto';
import type { ItemCache } from '../../stages/types.js';

/** Bytes of the sha256 trailer after each stored value. */
export const ITEM_DIGEST_BYTES = 32;
const DIGEST_BYTES = ITEM_DIGEST_BYTES;

/** Options for `directoryItemCache` (added by the data stages; the defaults keep the original behaviour). */
export interface ItemCacheOptions {
  /**
   * fsync each entry before renaming it into place (default true). Every entry
   * carries a sha256 trailer, so without fsync a crash can only turn an entry
   * into a miss, never into wrong data; skipping it saves one fsync per put
   * (bench/data.bench.ts compares resize with and without it).
   * (A `link`ed entry is trusted by size; the engine's store fsyncs what it
   * keeps, and `cache verify` checks every entry's trailer.)
   */
  readonly fsync?: boolean;
  /**
   * Called after `put` has written an entry, with the sha256 (hex) of the
   * entry file's bytes, value and trailer: computed in the same pass over the
   * value as the trailer (the hash state is copied before the trailer is
   * finished), so a caller learns what the file holds without reading it back.
   * Added so a stage host can tell the engine (`ItemRef.sha256`).
   */
  readonly onWrite?: (key: string, fileSha256: string) => void;
}

/** The trailer of `value` and, when `whole` is asked for, the sha256 (hex) of value + trailer, in one pass over `value`. */
function digestsOf(value: Uint8Array, whole: boolean): { digest: Buffer; fileSha256?: string } {
  if (!whole) return { digest: sha256Of(value) };
  const h = createHash('sha256').update(value);
  const file = h.copy();
  const digest = h.digest();
  return { digest, fileSha256: file.update(digest).digest('hex') };
}

/** A valid item key, which is also an entry's file name (temp files of writers are `<key>.<pid>.<rnd>.tmp`). */
export const ITEM_KEY = /^[0-9a-zA-Z_-]{8,128}$/;

/** A file in a shard directory of an item cache: `<cacheRoot>/items/<ns>/<shard>/<name>`. */
export interface ItemFile {
  readonly ns: string;
  readonly shard: string;
  readonly name: string;
  /** Absolute path. */
  readonly file: string;
}

/**
 * Every name in every shard directory of every item cache under
 * `<cacheRoot>/items/` (entries and temp files alike, sorted; a directory that
 * cannot be read counts as empty). Used by `CacheStore.verify` and `gcItems`.
 */
export async function* itemFiles(cacheRoot: string): AsyncGenerator<ItemFile> {
  const itemsDir = path.join(cacheRoot, 'items');
  for (const ns of await readdirOrEmpty(itemsDir)) {
    for (const shard of await readdirOrEmpty(path.join(itemsDir, ns))) {
      if (!/^[0-9a-zA-Z_-]{2}$/.test(shard)) continue;
      const dir = path.join(itemsDir, ns, shard);
      for (const name of await readdirOrEmpty(dir)) yield { ns, shard, name, file: path.join(dir, name) };
    }
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).sort();
  } catch {
    return [];
  }
}

/** `crypto.hash` (Node >= 20.12): one-shot, without the Hash object (a stream) per call. */
const oneShotHash = (crypto as { hash?: (alg: string, data: Uint8Array, enc: 'buffer') => Buffer }).hash;

/** The 32-byte sha256 of `data` (one-shot when the runtime offers it: ~20 µs less per entry than a Hash object). */
function sha256Of(data: Uint8Array): Buffer {
  return oneShotHash === undefined ? createHash('sha256').update(data).digest() : oneShotHash('sha256', data, 'buffer');
}

/** Whether `raw` (an entry file's bytes) ends with the sha256 of what precedes it. */
export function itemEntryIntact(raw: Uint8Array): boolean {
  if (raw.length < DIGEST_BYTES) return false;
  const body = raw.subarray(0, raw.length - DIGEST_BYTES);
  return sha256Of(body).equals(raw.subarray(raw.length - DIGEST_BYTES));
}

/** Writes all of `data` at the file position of `fd`. */
function writeAll(fd: number, data: Uint8Array): void {
  for (let off = 0; off < data.length; ) off += fss.writeSync(fd, data, off, data.length - off);
}

/** Writes `value` then `digest` at the file position of `fd`: one `writev` (one syscall), finishing a short write piecewise. */
function writeEntry(fd: number, value: Uint8Array, digest: Uint8Array): void {
  const n = fss.writevSync(fd, [value, digest]);
  if (n >= value.length + digest.length) return;
  if (n < value.length) {
    writeAll(fd, value.subarray(n));
    writeAll(fd, digest);
  } else {
    writeAll(fd, digest.subarray(n - value.length));
  }
}

/**
 * The file of the entry for `key` in the item cache rooted at `root`:
 * `<root>/<key[0:2]>/<key>` (whether or not it exists). Throws for a key that
 * is not `ITEM_KEY` (a bug in the caller). Added for `ItemCache.refer`.
 */
export function itemEntryFile(root: string, key: string): string {
  if (!ITEM_KEY.test(key)) throw new Error(`invalid item cache key: ${key}`);
  return path.join(root, key.slice(0, 2), key);
}

/** Opens (lazily creates) an item cache rooted at `root`. */
export function directoryItemCache(root: string, options: ItemCacheOptions = {}): ItemCache {
  const fsyncEntries = options.fsync ?? true;
  /** Shard directories known to exist (entries are never removed by this module). */
  const madeDirs = new Set<string>();
  const fileOf = (key: string): string => itemEntryFile(root, key);
  // Temp names: `<key>.<pid>.<hex>.tmp` (item-gc's pattern), the hex a random prefix drawn once per cache plus a
  // counter: unique within this process without a random draw per put; 'wx' plus a retry covers the rest.
  const tmpPrefix = randomBytes(4).toString('hex');
  let tmpCount = 0;
  const tmpOf = (file: string): string => `${file}.${process.pid}.${tmpPrefix}${(tmpCount++).toString(16)}.tmp`;
  return {
    async get(key) {
      let raw: Buffer;
      try {
        raw = await fs.readFile(fileOf(key));
      } catch {
        return undefined;
      }
      return itemEntryIntact(raw) ? raw.subarray(0, raw.length - DIGEST_BYTES) : undefined;
    },
    async put(key, value) {
      const { digest, fileSha256 } = digestsOf(value, options.onWrite !== undefined);
      const file = fileOf(key);
      const dir = path.dirname(file);
      if (!madeDirs.has(dir)) {
        if (fsyncEntries) await fs.mkdir(dir, { recursive: true });
        else fss.mkdirSync(dir, { recursive: true });
        madeDirs.add(dir);
      }
      if (!fsyncEntries) {
        // Without fsync a put is four cheap syscalls (open, writev, close, rename): synchronous calls cost less CPU
        // than the threadpool round trips (this runs once per resized image, beside the decodes).
        let tmp = tmpOf(file);
        let fd: number;
        try {
          fd = fss.openSync(tmp, 'wx', 0o444);
        } catch (e) {
          // Another cache object in this process (a worker thread shares the pid) drew the same prefix: a fresh name.
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          tmp = `${file}.${process.pid}.${randomBytes(8).toString('hex')}.tmp`;
          fd = fss.openSync(tmp, 'wx', 0o444);
        }
        // From here the temp file is ours: remove it on any failure.
        try {
          try {
            writeEntry(fd, value, digest);
          } finally {
            fss.closeSync(fd);
          }
          fss.renameSync(tmp, file);
        } catch (e) {
          fss.rmSync(tmp, { force: true });
          throw e;
        }
        if (fileSha256 !== undefined) options.onWrite?.(key, fileSha256);
        return;
      }
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      try {
        // Read-only from creation: an entry (and any link to it) is never written in place.
        const fh = await fs.open(tmp, 'wx', 0o444);
        try {
          const { bytesWritten } = await fh.writev([value, digest]);
          if (bytesWritten !== value.length + DIGEST_BYTES) throw new Error(`item cache: short write of ${file} (${bytesWritten} bytes)`);
          if (fsyncEntries) await fh.sync();
        } finally {
          await fh.close();
        }
        await fs.rename(tmp, file);
      } catch (e) {
        await fs.rm(tmp, { force: true });
        throw e;
      }
      if (fileSha256 !== undefined) options.onWrite?.(key, fileSha256);
    },
    async link(key, dest, valueBytes) {
      const file = fileOf(key);
      // Synchronous: two syscalls per item, no threadpool round trip (a 10k-image re-run is only this).
      try {
        fss.linkSync(file, dest);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return false;
        if (code !== 'EXDEV' && code !== 'EMLINK' && code !== 'EPERM' && code !== 'ENOTSUP') throw e;
        // No hard links here (another filesystem, link limit): a private copy of the same bytes.
        try {
          await fs.copyFile(file, dest);
        } catch (c) {
          if ((c as NodeJS.ErrnoException).code === 'ENOENT') return false;
          throw c;
        }
      }
      const st = fss.lstatSync(dest);
      if (st.size !== valueBytes + DIGEST_BYTES) {
        fss.unlinkSync(dest); // torn or foreign entry: a miss
        return false;
      }
      // Entries written before entries were created read-only: seal them (same inode), they are never written in place.
      if ((st.mode & 0o222) !== 0) fss.chmodSync(dest, 0o444);
      return true;
    },
  };
}
