/**
 * The item cache a stage host gives a built-in stage: `items/<stage>` under
 * the cache, without fsync per entry, and (when the engine asked for it)
 * with `ItemCache.refer`, recording the entries the stage names as output
 * files. Shared by `child.ts` and the data benchmark, so the benchmark runs
 * a stage exactly as the engine does.
 *
 * It does not store anything as an output: the engine does that with the
 * recorded refs (`CacheStore.ingestStaging`).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ItemCache } from '../../stages/types.js';
import type { ItemRef } from './protocol.js';
import { directoryItemCache, itemEntryFile, ITEM_DIGEST_BYTES } from '../cache/item-cache.js';
import { itemMemoFile } from '../cache/item-memo.js';
import { HashMemo } from '../hash/memo.js';

/**
 * The item cache of stage `stageName` under `cacheDir`. With `refs`, the
 * cache offers `refer`, which appends the reference to `refs` when the
 * store's item-key memo names an object of the right size for the key (the
 * entry is not looked at: store.ts, "Item keys"), or else when the entry is
 * a regular file of the right size (sealed read-only if an old writable one),
 * with the sha256 of its bytes when this cache wrote it (`ItemRef.sha256`).
 * `onWrote` hears of each entry `put` wrote (its absolute path), so the
 * engine can flush it early (the `wrote` message).
 */
export function stageItemCache(cacheDir: string, stageName: string, refs?: ItemRef[], onWrote?: (file: string) => void): ItemCache {
  const root = path.join(cacheDir, 'items', stageName);
  // Entries carry a sha256 trailer, so skipping fsync can only turn a crash-torn entry into a miss; the engine's
  // store fsyncs every entry it adopts as an output (bench/data.bench.ts compares resize with and without fsync).
  if (refs === undefined) return directoryItemCache(root, { fsync: false });
  // The file hash of each entry this process wrote: the engine adopts such an entry without reading it back.
  const written = new Map<string, string>();
  const base = directoryItemCache(root, {
    fsync: false,
    onWrite: (key, sha) => {
      written.set(key, sha);
      onWrote?.(itemEntryFile(root, key));
    },
  });
  let memo: HashMemo | undefined;
  return {
    get: (key) => base.get(key),
    put: (key, value) => base.put(key, value),
    ...(base.link ? { link: base.link.bind(base) } : {}),
    refer(key, rel, valueBytes) {
      // A key the store has kept an object for needs no look at the entry (store.ts, item keys).
      const stored = (memo ??= HashMemo.load(itemMemoFile(cacheDir))).sizeOf(`${stageName}/${key}`);
      if (stored === valueBytes + ITEM_DIGEST_BYTES) {
        refs.push({ path: rel, key });
        return true;
      }
      const file = itemEntryFile(root, key);
      const st = fs.lstatSync(file, { throwIfNoEntry: false });
      if (st === undefined || !st.isFile() || st.size !== valueBytes + ITEM_DIGEST_BYTES) return false;
      // Entries written before entries were created read-only: seal them (as `link` does); never written in place.
      if ((st.mode & 0o222) !== 0) fs.chmodSync(file, 0o444);
      // An entry written here (a concurrent writer of the same key writes the same bytes: the key determines them).
      const sha256 = written.get(key);
      refs.push({ path: rel, key, stat: [st.dev, st.ino, st.size, st.mtimeMs], ...(sha256 !== undefined ? { sha256 } : {}) });
      return true;
    },
  };
}
