/**
 * A directory-backed per-item cache (see `ItemCache` in stages/types.ts).
 * Entries live at `<root>/<key[0:2]>/<key>`; each value is stored with a
 * trailing 32-byte sha256 of its bytes so a torn or corrupted entry reads as a
 * miss instead of bad data. Does not evict; `cache gc` does.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { ItemCache } from '../../stages/types.js';
import { writeFileAtomic } from './atomic.js';

const DIGEST_BYTES = 32;

/** Opens (lazily creates) an item cache rooted at `root`. */
export function directoryItemCache(root: string): ItemCache {
  const fileOf = (key: string): string => {
    if (!/^[0-9a-zA-Z_-]{8,128}$/.test(key)) throw new Error(`invalid item cache key: ${key}`);
    return path.join(root, key.slice(0, 2), key);
  };
  return {
    async get(key) {
      let raw: Buffer;
      try {
        raw = await fs.readFile(fileOf(key));
      } catch {
        return undefined;
      }
      if (raw.length < DIGEST_BYTES) return undefined;
      const body = raw.subarray(0, raw.length - DIGEST_BYTES);
      const digest = createHash('sha256').update(body).digest();
      return digest.equals(raw.subarray(raw.length - DIGEST_BYTES)) ? body : undefined;
    },
    async put(key, value) {
      const digest = createHash('sha256').update(value).digest();
      await writeFileAtomic(fileOf(key), Buffer.concat([value, digest]));
    },
  };
}
