/**
 * Content hashes of dependency paths, memoised by stat signature.
 *
 * - A file hashes to the hex sha256 of its bytes.
 * - A directory hashes to a sha256 over its files' `(relative path, file
 *   hash)` list, recursively, in canonical order: depth-first with the names
 *   of each directory sorted by UTF-16 code units (`.git` directories and
 *   paths passed in `exclude` are skipped; symlinks are followed, cycles are
 *   cut; sockets and FIFOs are ignored). Creation order never matters.
 * - A glob hashes the same way over its matches (paths relative to the
 *   workspace); zero matches is a valid, empty list, not "missing".
 * - A path that does not exist is `{kind: 'missing'}`.
 * - A file that exists but cannot be read (EACCES, EPERM, EIO, ...) hashes to
 *   the marker `unreadable:<code>` instead of throwing; it is never memoised.
 *
 * The memo maps an absolute path to `(size, mtime, ctime, ino) → sha256`
 * (see `memo.ts`), so a no-op run only stats files. ctime is included because a
 * user cannot set it (unlike mtime, which `cp -p`, `touch -d` or tar restore).
 * Times are the `fs.Stats` doubles `mtimeMs`/`ctimeMs` (~0.24 µs resolution at
 * today's epoch) rather than bigint nanoseconds: bigint stats cost ~30% more
 * CPU per file plus GC for their BigInts and Dates (measured over 100k files),
 * and two writes of one file within 0.24 µs cannot both escape the racy rule.
 *
 * Racy-timestamp rule (the "racy git" problem): a file whose mtime or ctime
 * is within `racyWindowMs` (default 1 s, enough for 1 s-granularity
 * filesystems) of the moment we read it could still be modified within the
 * same timestamp tick after we read it, and its stat signature would not
 * change. Such a hash is used for this run but is NOT memoised, so the file is
 * re-read next time (by then it is old enough to be trusted). ctime counts
 * too, so `utimes` cannot make a just-written file look old.
 *
 * Walking is synchronous (`readdirSync` withFileTypes + `lstatSync`):
 * measured at ~3 µs/file, 4× faster than promise-based stats with 16 in
 * flight on this machine. The memo is saved in visit order, so the next walk
 * finds each entry at the memo's cursor without hashing the path. Files up to 8 MiB are read synchronously in one go;
 * larger ones are streamed in 1 MiB chunks, yielding to the event loop.
 *
 * This module does not follow dependency edges between stages, does not know
 * about the cache store, and never writes anywhere except its memo file.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { HashMemo } from './memo.js';
import { compileGlob, isGlob } from './glob.js';
import { writeFileAtomic } from '../cache/atomic.js';

/** What a dependency path turned out to be. */
export type DepKind = 'file' | 'dir' | 'glob' | 'missing';

/** The content hash of one dependency path. */
export interface DepHash {
  readonly kind: DepKind;
  /** Hex sha256 (file bytes, or the listing hash for dirs and globs); absent when missing. */
  readonly hash?: string;
  /** Number of files hashed (1 for a file, 0 when missing). */
  readonly files: number;
}

/** A dependency with its per-file hashes (for `explain`, and for callers that need the listing). */
export interface DepListing extends DepHash {
  /** Sorted `[relative path, sha256]`; relative to the dir for dirs, to the workspace for globs, `''` for a file. */
  readonly entries: readonly (readonly [string, string])[];
}

/** Counters for benchmarks and tests. */
export interface HashStats {
  /** Files stat'ed. */
  statted: number;
  /** Files whose bytes were read and hashed. */
  hashed: number;
  /** Bytes read for hashing. */
  hashedBytes: number;
  /** Files whose hash came from the memo. */
  memoHits: number;
}

/** Options for `FileHasher.open`. */
export interface FileHasherOptions {
  /** Absolute paths whose subtrees are never walked (e.g. the cache directory when a dependency is `.`). */
  readonly exclude?: readonly string[];
  /** See the racy-timestamp rule in the module doc. Default 1000. */
  readonly racyWindowMs?: number;
  /**
   * Where `save` puts its temp file (same filesystem as the memo), e.g. the
   * cache's tmp/, whose dead owners' files `CacheStore.open` removes. Default:
   * beside the memo (a process killed mid-save then leaves its temp there).
   */
  readonly tmpDir?: string;
}

const SYNC_READ_MAX = 8 * 1024 * 1024;
const CHUNK = 1024 * 1024;

/** A walk's result: parallel arrays in canonical order; `hashes[i]` undefined until computed. */
interface Walk {
  rels: string[];
  hashes: (string | undefined)[];
  /** Size of each file: its stat's, or the bytes hashed when it was read. */
  sizes: number[];
  /**
   * True when the walk met only regular files and directories that it read:
   * no symbolic link, FIFO, socket or device, no `.git` or excluded directory
   * skipped, no unreadable directory or file, no file vanished. A walk of the
   * same tree that treats those differently (e.g. ingest, which does not
   * follow links by default) then finds exactly these files (`plainDirFiles`).
   */
  plain: boolean;
  /** Indices into rels/hashes that missed the memo, with what is needed to hash them. */
  misses: { i: number; abs: string; st: fs.Stats }[];
}

function listingOf(kind: 'dir' | 'glob', hash: string, { rels, hashes }: Walk): DepListing {
  return { kind, hash, files: rels.length, entries: rels.map((rel, i) => [rel, hashes[i]!] as const) };
}

/** Hashes dependency paths through a persisted memo. One instance per process and memo file. */
export class FileHasher {
  private readonly memo: HashMemo;
  private dirty = false;
  /** The last save started (`save`). */
  private saving: Promise<void> = Promise.resolve();
  private readonly walkedRoots = new Set<string>();
  /**
   * The last walk `hashDep` made of each dir/glob dependency (by absolute path and glob), with its
   * `kind:hash`: a run record stores the listing its key was computed from without walking again.
   */
  private readonly lastWalks = new Map<string, { readonly id: string; readonly walk: Walk }>();
  private readonly exclude: Set<string>;
  private readonly racyWindowMs: number;
  private readonly tmpDir: string | undefined;
  /** Counters since open. */
  readonly stats: HashStats = { statted: 0, hashed: 0, hashedBytes: 0, memoHits: 0 };

  private constructor(
    private readonly memoFile: string,
    memo: HashMemo,
    opts: FileHasherOptions,
  ) {
    this.memo = memo;
    this.exclude = new Set((opts.exclude ?? []).map((p) => path.resolve(p)));
    this.racyWindowMs = opts.racyWindowMs ?? 1000;
    this.tmpDir = opts.tmpDir;
  }

  /** Loads the memo at `memoFile` (missing or malformed → empty). */
  static async open(memoFile: string, opts: FileHasherOptions = {}): Promise<FileHasher> {
    return new FileHasher(memoFile, HashMemo.load(memoFile), opts);
  }

  /** Hashes a dependency path (file, directory, glob) relative to `workspace`. */
  async hashDep(workspace: string, depPath: string): Promise<DepHash> {
    const r = await this.walkDep(workspace, depPath);
    if (r.kind === 'missing') return { kind: 'missing', files: 0 };
    if (r.kind === 'file') return { kind: 'file', hash: r.hash, files: 1 };
    const hash = listingHash(r.kind, r.walk.rels, r.walk.hashes as string[]);
    this.lastWalks.set(path.resolve(workspace, depPath), { id: `${r.kind}:${hash}`, walk: r.walk });
    return { kind: r.kind, hash, files: r.walk.rels.length };
  }

  /**
   * Like `hashDep` but also returns every file's hash. With `expect` (a `kind:hash` that
   * `hashDep` returned in this process), the walk behind it is reused when it is still the
   * last one of that path: the listing is then exactly the one that hash describes.
   */
  async listDep(workspace: string, depPath: string, expect?: string): Promise<DepListing> {
    const last = expect === undefined ? undefined : this.lastWalks.get(path.resolve(workspace, depPath));
    if (last !== undefined && last.id === expect) {
      const [kind, hash] = [expect.slice(0, expect.indexOf(':')) as 'dir' | 'glob', expect.slice(expect.indexOf(':') + 1)];
      return listingOf(kind, hash, last.walk);
    }
    const r = await this.walkDep(workspace, depPath);
    if (r.kind === 'missing') return { kind: 'missing', files: 0, entries: [] };
    if (r.kind === 'file') return { kind: 'file', hash: r.hash, files: 1, entries: [['', r.hash]] };
    return listingOf(r.kind, listingHash(r.kind, r.walk.rels, r.walk.hashes as string[]), r.walk);
  }

  /**
   * The files of the directory `depPath` exactly as the walk behind `expect`
   * (a `dir:<hash>` that `hashDep` returned in this process) found them, when
   * that is still the path's last walk and it was plain (`Walk.plain`);
   * otherwise undefined. Never walks: for handing a stage the listing its key
   * was computed from (`StageContext.depListings`).
   */
  plainDirFiles(workspace: string, depPath: string, expect: string): { readonly rels: readonly string[]; readonly sha256: readonly string[]; readonly sizes: readonly number[] } | undefined {
    const last = this.lastWalks.get(path.resolve(workspace, depPath));
    if (last === undefined || last.id !== expect || !expect.startsWith('dir:') || !last.walk.plain) return undefined;
    return { rels: last.walk.rels, sha256: last.walk.hashes as string[], sizes: last.walk.sizes };
  }

  private async walkDep(workspace: string, depPath: string): Promise<{ kind: 'missing' } | { kind: 'file'; hash: string } | { kind: 'dir' | 'glob'; walk: Walk }> {
    const abs = path.resolve(workspace, depPath);
    const st = fs.statSync(abs, { throwIfNoEntry: false });
    if (st === undefined && isGlob(depPath)) {
      const g = compileGlob(depPath);
      const baseAbs = path.resolve(workspace, g.base);
      const w: Walk = { rels: [], hashes: [], sizes: [], plain: true, misses: [] };
      const bst = fs.statSync(baseAbs, { throwIfNoEntry: false });
      if (bst?.isDirectory()) {
        const prefix = g.base === '' ? '' : g.base.replace(/\\/g, '/').replace(/\/+$/, '') + '/';
        this.walk(baseAbs, prefix, w, new Set([`${bst.dev}:${bst.ino}`]), (rel) => g.matches(rel));
      }
      await this.fill(w);
      return { kind: 'glob', walk: w };
    }
    if (st === undefined) {
      this.forget(abs);
      return { kind: 'missing' };
    }
    if (st.isDirectory()) {
      this.walkedRoots.add(abs);
      const w: Walk = { rels: [], hashes: [], sizes: [], plain: true, misses: [] };
      this.walk(abs, '', w, new Set([`${st.dev}:${st.ino}`]), undefined);
      await this.fill(w);
      return { kind: 'dir', walk: w };
    }
    this.stats.statted++;
    if (!st.isFile()) return { kind: 'missing' }; // a FIFO, socket or device has no content to hash
    const h = await this.hashOne(abs, st);
    return h === undefined ? { kind: 'missing' } : { kind: 'file', hash: h };
  }

  /** Hashes absolute file paths; a missing path (or a directory) maps to `undefined`. */
  async hashFiles(absPaths: readonly string[]): Promise<Map<string, string | undefined>> {
    const out = new Map<string, string | undefined>();
    for (const p of absPaths) out.set(p, await this.hashFile(p));
    return out;
  }

  /** Hashes one absolute file path; `undefined` when it is missing or not a regular file. */
  async hashFile(absPath: string): Promise<string | undefined> {
    const abs = path.resolve(absPath);
    const st = fs.statSync(abs, { throwIfNoEntry: false });
    this.stats.statted++;
    if (st === undefined || !st.isFile()) {
      this.forget(abs);
      return undefined;
    }
    return this.hashOne(abs, st);
  }

  /**
   * The memoised hash of `absPath` for the stat `st` the caller just took, or
   * `undefined` (never reads the file). For callers that need the bytes
   * anyway on a miss (e.g. ingest probes them), paired with `remember`.
   */
  lookup(absPath: string, st: fs.Stats): string | undefined {
    this.stats.statted++;
    const hit = this.memo.lookup(path.resolve(absPath), st.size, st.mtimeMs, st.ctimeMs, st.ino);
    if (hit !== undefined) this.stats.memoHits++;
    return hit;
  }

  /**
   * Records a hash the caller knows for a file it just wrote (e.g. a file the
   * cache materialised from an object whose hash is known), under the same
   * racy rule as computed hashes.
   */
  remember(absPath: string, st: fs.Stats, hash: string): void {
    this.store(path.resolve(absPath), st, hash, Date.now());
  }

  /**
   * Writes the memo atomically if anything changed since open or the last
   * save. Saves run one after another (a later one holds everything an
   * earlier one did), so the engine may save early, while a stage runs, and
   * again at the end for whatever changed since.
   */
  save(): Promise<void> {
    const next = this.saving.catch(() => {}).then(() => this.saveNow());
    this.saving = next;
    return next;
  }

  private async saveNow(): Promise<void> {
    if (!this.dirty) return;
    // Entries below a walked directory that the walk did not see are gone.
    this.memo.pruneUnvisitedUnder([...this.walkedRoots].map((r) => (r.endsWith(path.sep) ? r : r + path.sep)));
    const bytes = this.memo.encode(Date.now());
    // Cleared before the write: a change made while it is in flight marks the memo dirty for the next save.
    this.dirty = false;
    try {
      // No fsync: the memo carries a CRC, so a crash can only cost re-hashing (memo.ts), never a wrong hash.
      await writeFileAtomic(this.memoFile, bytes, { fsync: false, ...(this.tmpDir !== undefined ? { tmpDir: this.tmpDir } : {}) });
    } catch (e) {
      this.dirty = true;
      throw e;
    }
  }

  private forget(abs: string): void {
    if (this.memo.delete(abs)) this.dirty = true;
  }

  /** Synchronous recursive walk in canonical order; memo hits are filled in, misses listed. */
  private walk(dir: string, relPrefix: string, out: Walk, visited: Set<string>, keep: ((rel: string) => boolean) | undefined): void {
    let ents: fs.Dirent[];
    try {
      ents = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      out.plain = false;
      return; // vanished or unreadable: contributes nothing
    }
    ents.sort(byName);
    for (const e of ents) {
      const name = e.name;
      const abs = dir + path.sep + name;
      let st: fs.Stats | undefined;
      let isDir: boolean;
      if (e.isFile()) {
        isDir = false;
      } else if (e.isDirectory()) {
        isDir = true;
      } else if (e.isSymbolicLink()) {
        out.plain = false;
        st = fs.statSync(abs, { throwIfNoEntry: false });
        if (st === undefined) continue; // dangling link
        isDir = st.isDirectory();
        if (!isDir && !st.isFile()) continue;
      } else {
        out.plain = false;
        continue; // socket, fifo, device
      }
      if (isDir) {
        if (name === '.git' || this.exclude.has(abs)) {
          out.plain = false;
          continue;
        }
        if (st !== undefined) {
          const id = `${st.dev}:${st.ino}`;
          if (visited.has(id)) continue; // symlink cycle or repeat
          visited.add(id);
        }
        this.walk(abs, relPrefix + name + '/', out, visited, keep);
        continue;
      }
      const rel = relPrefix + name;
      if (keep !== undefined && !keep(rel)) continue;
      if (st === undefined) {
        st = fs.lstatSync(abs, { throwIfNoEntry: false });
        if (st === undefined) {
          out.plain = false;
          continue;
        }
      }
      this.stats.statted++;
      const hit = this.memo.lookup(abs, st.size, st.mtimeMs, st.ctimeMs, st.ino);
      out.rels.push(rel);
      out.hashes.push(hit);
      out.sizes.push(st.size);
      if (hit === undefined) out.misses.push({ i: out.hashes.length - 1, abs, st });
      else this.stats.memoHits++;
    }
  }

  /** Hashes the walk's memo misses; drops files that vanished meanwhile. */
  private async fill(w: Walk): Promise<void> {
    if (w.misses.length === 0) return;
    let gone = false;
    for (const m of w.misses) {
      const h = await this.computeSized(m.abs, m.st);
      w.hashes[m.i] = h?.hash;
      if (h === undefined) gone = true;
      else if (h.size === undefined) w.plain = false; // unreadable: a marker, not the bytes' hash
      else w.sizes[m.i] = h.size;
    }
    if (gone) {
      w.plain = false;
      const rels: string[] = [];
      const hashes: string[] = [];
      const sizes: number[] = [];
      w.rels.forEach((r, i) => {
        const h = w.hashes[i];
        if (h !== undefined) {
          rels.push(r);
          hashes.push(h);
          sizes.push(w.sizes[i]!);
        }
      });
      w.rels = rels;
      w.hashes = hashes;
      w.sizes = sizes;
    }
  }

  private async hashOne(abs: string, st: fs.Stats): Promise<string | undefined> {
    const hit = this.memo.lookup(abs, st.size, st.mtimeMs, st.ctimeMs, st.ino);
    if (hit !== undefined) {
      this.stats.memoHits++;
      return hit;
    }
    return (await this.computeSized(abs, st))?.hash;
  }

  /**
   * Reads and hashes a file, memoising it unless racy; with the number of bytes
   * hashed (absent for an unreadable file's marker). `undefined` if it vanished.
   */
  private async computeSized(abs: string, st: fs.Stats): Promise<{ readonly hash: string; readonly size?: number } | undefined> {
    const nowMs = Date.now();
    let hashed: { hash: string; size: number };
    try {
      hashed = st.size <= SYNC_READ_MAX ? hashSmall(abs) : await hashLarge(abs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        this.forget(abs);
        return undefined;
      }
      // A user problem, not a bug: a stable marker keeps the key defined (the stage itself will
      // report the file); it changes once the file becomes readable. Never memoised.
      if (code === 'EACCES' || code === 'EPERM' || code === 'EISDIR' || code === 'ELOOP' || code === 'EIO') return { hash: `unreadable:${code}` };
      throw e;
    }
    this.stats.hashed++;
    this.stats.hashedBytes += Number(st.size);
    // Memoised under the stat taken before the read: a file that changed meanwhile has another signature next time.
    this.store(abs, st, hashed.hash, nowMs);
    return hashed;
  }

  private store(abs: string, st: fs.Stats, hash: string, nowMs: number): void {
    if (Math.max(st.mtimeMs, st.ctimeMs) + this.racyWindowMs > nowMs) {
      // Racy: do not trust the signature next time; drop any older entry.
      this.forget(abs);
      return;
    }
    this.memo.set(abs, { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, hash });
    this.dirty = true;
  }
}

/** Hex sha256 of a small file's bytes, and how many there were. */
function hashSmall(abs: string): { hash: string; size: number } {
  const data = fs.readFileSync(abs);
  return { hash: oneShot === undefined ? crypto.createHash('sha256').update(data).digest('hex') : oneShot('sha256', data, 'hex'), size: data.length };
}

/** `crypto.hash` (Node >= 20.12): one-shot, no Hash object per file. */
const oneShot = (crypto as { hash?: (alg: string, data: Uint8Array, enc: 'hex') => string }).hash;

/** Hex sha256 of a large file, read in chunks so other work can interleave, and its byte count. */
async function hashLarge(abs: string): Promise<{ hash: string; size: number }> {
  const h = crypto.createHash('sha256');
  const fh = await fs.promises.open(abs, 'r');
  let size = 0;
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      size += bytesRead;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return { hash: h.digest('hex'), size };
}

/**
 * Hash of a sorted `(path, hash)` listing. Each entry is encoded as
 * `path \0 hash \n`: paths cannot contain NUL and hashes are fixed-length hex,
 * so the encoding is unambiguous (unlike joining strings with a separator that
 * may appear in them). A tag separates dir listings from glob listings.
 */
export function listingHash(tag: 'dir' | 'glob', rels: readonly string[], hashes: readonly string[]): string {
  const h = crypto.createHash('sha256');
  h.update(`pipeline-${tag}-listing-v1\n`);
  let chunk = '';
  for (let i = 0; i < rels.length; i++) {
    chunk += `${rels[i]}\0${hashes[i]}\n`;
    if (chunk.length > 65536) {
      h.update(chunk);
      chunk = '';
    }
  }
  h.update(chunk);
  return h.digest('hex');
}

function byName(a: fs.Dirent, b: fs.Dirent): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** File-level differences between two listings of one dependency (for `explain`: which files of a dir changed). */
export interface ListingDiff {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly modified: readonly string[];
}

/** Compares two `DepListing.entries` (any order). */
export function diffListings(before: readonly (readonly [string, string])[], after: readonly (readonly [string, string])[]): ListingDiff {
  const old = new Map(before.map(([p, h]) => [p, h]));
  const added: string[] = [];
  const modified: string[] = [];
  for (const [p, h] of after) {
    const o = old.get(p);
    if (o === undefined) added.push(p);
    else if (o !== h) modified.push(p);
    old.delete(p);
  }
  return { added, removed: [...old.keys()], modified };
}
