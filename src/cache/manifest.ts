/**
 * Output manifests (the list of files a stage produced, by content hash) and
 * small file helpers shared by the store, materialisation and workspace
 * state. The only write is `removeTree` (engine-owned temp trees).
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

const SYNC_READ_MAX = 8 * 1024 * 1024;

/** One stored output file. */
export interface ManifestFile {
  /** `/`-separated path relative to the output root (builtin outDir, or the workspace for cmd outs). */
  readonly path: string;
  /** Hex sha256 of the bytes = object name. */
  readonly sha256: string;
  readonly size: number;
  /** Permission bits (e.g. 0o644, 0o755) to give a copied file. */
  readonly mode: number;
}

/** The outputs of one stage run. */
export interface OutputManifest {
  /** Sorted by path. */
  readonly files: readonly ManifestFile[];
  /** `manifestHash(files)`: the stage's output hash (what downstream fingerprints hold). */
  readonly hash: string;
}

/** Hex sha256 over a manifest's files (path, sha256, mode), in path order. */
export function manifestHash(files: readonly ManifestFile[]): string {
  const h = crypto.createHash('sha256');
  h.update('pipeline-manifest-v1\n');
  for (const f of files) h.update(`${f.path}\0${f.sha256}\0${f.mode.toString(8)}\n`);
  return h.digest('hex');
}

/**
 * Canonical order of `/`-separated relative paths: segment by segment, each
 * segment by UTF-16 code units (equivalently: string order with `/` sorting
 * before every other character). This is exactly the order of a depth-first
 * walk that sorts each directory's names, so manifests and dependency
 * listings (`FileHasher.listDep`) line up entry by entry.
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x === 47) return -1;
    if (y === 47) return 1;
    return x - y;
  }
  return a.length - b.length;
}

/** Sorts files (canonical order, `comparePaths`) and computes the hash. */
export function makeManifest(files: readonly ManifestFile[]): OutputManifest {
  const sorted = [...files].sort((a, b) => comparePaths(a.path, b.path));
  return { files: sorted, hash: manifestHash(sorted) };
}

/**
 * The part of `m` under workspace-relative `prefix` (a cmd stage's declared
 * out), with paths made relative to it (`''` for a file out).
 */
export function subManifest(m: OutputManifest, prefix: string): OutputManifest {
  const p = toPosix(prefix).replace(/\/+$/, '');
  const files = m.files.flatMap((f) => (f.path === p ? [{ ...f, path: '' }] : f.path.startsWith(`${p}/`) ? [{ ...f, path: f.path.slice(p.length + 1) }] : []));
  return makeManifest(files);
}

/** Hex sha256 of a file's bytes. */
export async function hashFile(file: string): Promise<string> {
  const st = fs.statSync(file);
  if (st.size <= SYNC_READ_MAX) return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  const h = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Regular files under `dir`, `/`-separated, relative, in canonical order (`comparePaths`); symlinks to files are followed. */
export function listFiles(dir: string, prefix: string): string[] {
  const out: string[] = [];
  const walk = (d: string, pre: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const abs = path.join(d, e.name);
      const isDir = e.isDirectory() || (e.isSymbolicLink() && fs.statSync(abs, { throwIfNoEntry: false })?.isDirectory() === true);
      const isFile = e.isFile() || (e.isSymbolicLink() && fs.statSync(abs, { throwIfNoEntry: false })?.isFile() === true);
      if (isDir) walk(abs, `${pre}${e.name}/`);
      else if (isFile) out.push(`${pre}${e.name}`);
    }
  };
  walk(dir, prefix);
  return out.sort(comparePaths);
}

export function toPosix(p: string): string {
  return p.split(path.sep).join('/');
}

/** Maps `items` through `fn` with at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

/**
 * Removes a directory tree the engine owns (a staging dir, a swapped-out old
 * output) with synchronous readdir-with-types + unlink: no stat per file,
 * which is most of `fs.rm`'s cost on a 10k-file tree. Anything unexpected
 * (a read-only directory, a race) falls back to `fs.rm`.
 */
export async function removeTree(dir: string): Promise<void> {
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const abs = path.join(d, e.name);
      if (e.isDirectory()) walk(abs);
      else fs.unlinkSync(abs);
    }
    fs.rmdirSync(d);
  };
  try {
    walk(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !fs.existsSync(dir)) return;
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}
