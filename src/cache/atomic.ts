/**
 * Crash-safe file writes: write to a unique temp file (beside the target, or
 * in `tmpDir` on the same filesystem; there named after its owner process so
 * a dead writer's temp can be recognised), fsync (unless told not to, for
 * self-checking files), rename over the target, and
 * optionally fsync the parent directory so the rename itself is durable. A
 * reader sees the old content or the new, never a torn file. Does not lock;
 * concurrent writers of identical content are safe.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ownedTempName } from './process-id.js';

/** Options for `writeFileAtomic`. */
export interface AtomicWriteOptions {
  /** Directory for the temp file (must be on the target's filesystem); default: beside the target. */
  readonly tmpDir?: string;
  /** Also fsync the target's directory after the rename (durable across power loss). Default false. */
  readonly syncDir?: boolean;
  /**
   * fsync the data before the rename (default true). False only for files
   * that check themselves on load (a checksum) and are worth nothing more than
   * a re-computation when lost, e.g. memos: after a crash such a file may be
   * empty or hold old data, never be read as wrong data.
   */
  readonly fsync?: boolean;
}

/** Writes `data` to `file` (opened with `flag`, e.g. `wx` for a fresh temp) and fsyncs it before closing. */
export async function writeSynced(file: string, data: string | Uint8Array, flag: string): Promise<void> {
  const handle = await fs.open(file, flag);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Atomically replaces `file` with `data`, creating parent directories. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  // In `tmpDir` (a cache's tmp/) the name starts like CacheStore.tmpName's, `<host>~<pid>~<start>~<rnd>`, so the
  // temp of a writer killed mid-write is known to be dead and removed by the next CacheStore.open (crash-kill found
  // `<key>.json.<pid>.<rnd>.tmp` records left in tmp/ for good: its cleaner could not tell their owner).
  const tmp =
    opts.tmpDir === undefined ? `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp` : path.join(opts.tmpDir, ownedTempName(`.${path.basename(file)}.tmp`));
  if (opts.tmpDir !== undefined) await fs.mkdir(opts.tmpDir, { recursive: true });
  try {
    if (opts.fsync === false) await fs.writeFile(tmp, data);
    else await writeSynced(tmp, data, 'w');
    await fs.rename(tmp, file);
  } catch (e) {
    // A failed write (a full disk) leaves no partial temp file taking the space.
    await fs.rm(tmp, { force: true });
    throw e;
  }
  if (opts.syncDir) await fsyncDir(path.dirname(file));
}

/** fsyncs a directory (makes renames/links inside it durable). Ignored where unsupported. */
export async function fsyncDir(dir: string): Promise<void> {
  let h: fs.FileHandle | undefined;
  try {
    h = await fs.open(dir, 'r');
    await h.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw e;
  } finally {
    await h?.close();
  }
}
