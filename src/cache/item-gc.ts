/**
 * Garbage collection of the per-item caches (`<cache>/items/<namespace>/<xx>/<key>`,
 * see item-cache.ts), run by `pipeline cache gc` after `CacheStore.gc`.
 *
 * Item entries are not referenced by records (a stage derives their keys from
 * content hashes and params), so reachability cannot decide; the policy is:
 *
 * - an entry whose inode has other names (link count > 1) is kept: a cache
 *   object shares it (resize's linked packs become objects without a copy),
 *   so deleting the entry would free nothing, and the next run that needs it
 *   would re-decode what the cache still holds;
 * - an entry used within `maxAgeMs` is kept. "Used" is the newest of its
 *   mtime (written), atime (read, as far as the filesystem records access
 *   times) and ctime (linked into an output, or an object sharing it was
 *   removed): an entry of a configuration nobody ran for that long goes, one
 *   a current configuration reads or links stays;
 * - an entry younger than `graceMs` (the same grace as objects) is always
 *   kept, whatever `maxAgeMs` says: a run may be about to link it;
 * - temp files of writers that died (`<key>.<pid>.<rnd>.tmp`) older than a
 *   day (and the grace) are removed.
 *
 * Safe with concurrent runs: entries are immutable and every reader treats a
 * missing entry as a miss (the item is recomputed); a run that linked an
 * entry into its output before the removal keeps its own name for the bytes.
 * Shard directories are never removed (a live writer may have checked that
 * its shard exists). Holds `<cache>/gc.lock`, as `CacheStore.gc` does.
 *
 * Does not check entries' contents (`CacheStore.verify` does), does not touch
 * objects, records or workspaces, and does not print.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { acquireLock } from './lock.js';
import { itemFiles, ITEM_KEY } from './item-cache.js';

/** Default `--items-max-age`: entries nothing used for this many days (and unshared) are removed. */
export const DEFAULT_ITEMS_MAX_AGE_DAYS = 30;

/** Temp files of dead item writers are removed once older than this (and the grace). */
const TMP_MAX_AGE_MS = 24 * 3600 * 1000;

/** Options of `gcItems`. */
export interface ItemGcOptions {
  /** Unshared entries not used for longer than this are removed (see module doc for "used"). */
  readonly maxAgeMs: number;
  /** Entries younger than this always stay (a concurrent run may be about to link them). */
  readonly graceMs: number;
  /** The current time in ms since the epoch (default `Date.now()`); lets callers evaluate the policy at another instant. */
  readonly now?: number;
}

/** What `gcItems` did. */
export interface ItemGcReport {
  /** Entries looked at (every namespace). */
  readonly entries: number;
  /** Entries removed. */
  readonly removedEntries: number;
  /** Bytes freed by removing entries and temp files (entries' sizes; shared inodes are never removed). */
  readonly freedBytes: number;
  /** Entries kept because a cache object (or another link) shares their inode. */
  readonly keptShared: number;
  /** Unshared entries kept because they were used within the max age (or are within the grace). */
  readonly keptRecent: number;
  /** Dead writers' temp files removed. */
  readonly removedTemp: number;
}

const TEMP = /^[0-9a-zA-Z_-]{8,128}\.\d+\.[0-9a-f]+\.tmp$/;

/** Prunes `<cacheRoot>/items/` by the module doc's policy. */
export async function gcItems(cacheRoot: string, opts: ItemGcOptions): Promise<ItemGcReport> {
  const lock = await acquireLock(path.join(cacheRoot, 'gc.lock'), { waitMs: 10_000, purpose: 'cache gc' });
  if (!lock.ok) throw new Error(`cache gc: ${lock.error.file} held by pid ${lock.error.pid}`);
  try {
    const now = opts.now ?? Date.now();
    const keepAfter = now - Math.max(opts.maxAgeMs, opts.graceMs);
    const tmpAfter = now - Math.max(TMP_MAX_AGE_MS, opts.graceMs);
    let entries = 0;
    let removedEntries = 0;
    let freedBytes = 0;
    let keptShared = 0;
    let keptRecent = 0;
    let removedTemp = 0;
    for await (const { name, file } of itemFiles(cacheRoot)) {
      const entry = ITEM_KEY.test(name);
      if (!entry && !TEMP.test(name)) continue;
      const st = fs.lstatSync(file, { throwIfNoEntry: false });
      if (st === undefined || !st.isFile()) continue;
      const used = Math.max(st.mtimeMs, st.atimeMs, st.ctimeMs);
      if (!entry) {
        if (used >= tmpAfter) continue;
        if (await removed(file)) {
          removedTemp++;
          freedBytes += st.size;
        }
        continue;
      }
      entries++;
      if (st.nlink > 1) keptShared++;
      else if (used >= keepAfter) keptRecent++;
      else if (await removed(file)) {
        removedEntries++;
        freedBytes += st.size;
      }
    }
    return { entries, removedEntries, freedBytes, keptShared, keptRecent, removedTemp };
  } finally {
    await lock.value.release();
  }
}

/** Removes `file`; false when it was already gone. */
async function removed(file: string): Promise<boolean> {
  try {
    await fsp.unlink(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}
