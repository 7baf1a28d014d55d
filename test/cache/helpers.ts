/** Temp-dir helpers for cache tests (real files, removed on dispose). */
import fs from 'node:fs';
import path from 'node:path';
import { tempDir as sharedTempDir, type TempDir } from '../helpers/temp-dir.js';

export type { TempDir } from '../helpers/temp-dir.js';

/** A temp dir for a cache test (see test/helpers/temp-dir.ts). */
export function tempDir(prefix = 'cache-test-'): Promise<TempDir> {
  return sharedTempDir(prefix);
}

export function write(root: string, rel: string, content: string | Buffer): string {
  const f = path.join(root, rel);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, content);
  return f;
}

export function read(root: string, rel: string): string {
  return fs.readFileSync(path.join(root, rel), 'utf8');
}
