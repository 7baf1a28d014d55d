/**
 * Scratch workspaces for sweep variants: a directory that looks like the
 * workspace to a stage (same relative paths) but in which the variant's own
 * outputs are private, so several variants of one stage can write their
 * declared `outs` at the same time without touching the user's workspace.
 *
 * Layout of a scratch dir built by `buildScratch`:
 * - every workspace entry is a symlink to the real path (inputs, code, data:
 *   read through), except that inside the real directories listed below,
 *   small regular files (scripts, configs; up to `copyMaxBytes` each, within
 *   a total budget) are copied, so a script that locates itself through
 *   `realpath(__file__)` still finds its siblings in the scratch dir; and
 * - the variant's private paths (outputs of its non-shared stages): absent,
 *   to be written by the stage or materialised from the cache;
 * - their ancestors, the stages' working directories and the directories of
 *   the files they read (`realDirs`): real directories whose other entries are
 *   again symlinks or small copies (so `../out/x` from a cwd lands in the
 *   scratch, not in the workspace);
 * - paths of outputs shared by all variants (produced in the real workspace
 *   during the sweep): symlinks created up front, dangling until produced;
 * - the cache directory and `.pipeline` (lock, child registry): left out.
 *
 * It does not run, hash or materialise anything, and never writes outside
 * the scratch dir: removal (`removeScratch`) unlinks the symlinks, never their
 * targets. A stage that writes an UNDECLARED file through a symlinked
 * directory, or uses an absolute workspace path, still writes into the real
 * workspace (as it would in a sequential run).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

/** What to build. Paths in `privatePaths`, `realDirs` and `links` are workspace-relative, `/`-separated. */
export interface ScratchSpec {
  /** The real workspace (absolute). */
  readonly workspace: string;
  /** The scratch dir to create (absolute; removed first if it exists). Must be inside `root`. */
  readonly dir: string;
  /** The directory all scratch dirs live under (removal refuses anything outside it). */
  readonly root: string;
  /** Paths never linked (the variant's own outputs); their ancestors become real directories. */
  readonly privatePaths: readonly string[];
  /** Directories that must be real (stage working directories), with their ancestors. */
  readonly realDirs: readonly string[];
  /** Paths linked even when they do not exist yet (outputs of shared stages, produced later). */
  readonly links: readonly string[];
  /** Absolute paths never linked nor created (the cache dir, `.pipeline`). */
  readonly exclude: readonly string[];
  /** Regular files in real directories up to this size are copied rather than linked. Default 1 MiB; 0 links everything. */
  readonly copyMaxBytes?: number;
  /** Total bytes copied at most; past it, files are linked. Default 16 MiB. */
  readonly copyBudgetBytes?: number;
}

function normal(p: string): string {
  const n = path.posix.normalize(p.split(path.sep).join('/')).replace(/\/+$/, '').replace(/^\.\//, '');
  return n === '.' ? '' : n;
}

function ancestors(rel: string): string[] {
  const out: string[] = [];
  let cur = path.posix.dirname(rel);
  while (cur !== '.' && cur !== '' && cur !== '/') {
    out.push(cur);
    cur = path.posix.dirname(cur);
  }
  return out;
}

/** Builds the scratch dir (see module doc). */
export async function buildScratch(spec: ScratchSpec): Promise<void> {
  const ws = path.resolve(spec.workspace);
  await removeScratch(spec.root, spec.dir);
  const real = new Set<string>();
  const skip = new Set<string>();
  for (const p of spec.privatePaths.map(normal)) {
    if (p === '' || p.startsWith('..')) continue;
    skip.add(p);
    for (const a of ancestors(p)) real.add(a);
  }
  for (const d of spec.realDirs.map(normal)) {
    if (d === '' || d.startsWith('..')) continue;
    real.add(d);
    for (const a of ancestors(d)) real.add(a);
  }
  for (const abs of spec.exclude) {
    const rel = normal(path.relative(ws, path.resolve(abs)));
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) continue;
    skip.add(rel);
    for (const a of ancestors(rel)) real.add(a);
  }
  // A path both private and a working directory stays private (absent until written).
  for (const p of skip) real.delete(p);

  // Shared outputs (and anything under them) are always links: they may be (re)written during the sweep.
  const live = spec.links.map(normal).filter((l) => l !== '' && !l.startsWith('..'));
  const isLive = (r: string): boolean => live.some((l) => r === l || r.startsWith(`${l}/`));
  const copyMax = spec.copyMaxBytes ?? 1024 * 1024;
  let budget = spec.copyBudgetBytes ?? 16 * 1024 * 1024;

  const build = (rel: string): void => {
    const scr = rel === '' ? spec.dir : path.join(spec.dir, rel);
    fs.mkdirSync(scr, { recursive: true });
    let names: string[];
    try {
      names = fs.readdirSync(rel === '' ? ws : path.join(ws, rel)).sort(); // sorted: the copy budget goes the same way every time
    } catch {
      return; // not a directory in the workspace (yet): an empty real dir
    }
    for (const name of names) {
      const r = rel === '' ? name : `${rel}/${name}`;
      if (skip.has(r)) continue;
      const target = path.join(ws, r);
      if (real.has(r)) {
        if (fs.statSync(target, { throwIfNoEntry: false })?.isDirectory() === true) build(r);
        continue; // a file where a directory is needed: left out (the dir is created empty below)
      }
      const st = isLive(r) ? undefined : fs.lstatSync(target, { throwIfNoEntry: false });
      if (st?.isFile() === true && st.size <= copyMax && st.size <= budget) {
        budget -= st.size;
        // A private snapshot (reflink where the filesystem can); copyFile keeps the mode bits.
        fs.copyFileSync(target, path.join(scr, name), fs.constants.COPYFILE_FICLONE);
        continue;
      }
      fs.symlinkSync(target, path.join(scr, name));
    }
  };
  build('');
  for (const d of [...real].sort()) fs.mkdirSync(path.join(spec.dir, d), { recursive: true });

  // Shared outputs that do not exist yet: link the top-most missing piece so it appears once produced.
  for (const l of spec.links.map(normal)) {
    if (l === '' || l.startsWith('..')) continue;
    const segs = l.split('/');
    let cur = '';
    for (const seg of segs) {
      const next = cur === '' ? seg : `${cur}/${seg}`;
      if (skip.has(next)) break;
      const st = fs.lstatSync(path.join(spec.dir, next), { throwIfNoEntry: false });
      if (st === undefined) {
        fs.symlinkSync(path.join(ws, next), path.join(spec.dir, next));
        break;
      }
      if (!st.isDirectory()) break; // a symlink (resolves through it) or a file
      cur = next;
    }
  }
}

/**
 * Removes a scratch dir: symlinks are unlinked (their targets are never
 * followed), real files and directories inside it removed. Refuses (throws,
 * a bug) for a dir outside `root`.
 */
export async function removeScratch(root: string, dir: string): Promise<void> {
  const r = path.resolve(root);
  const d = path.resolve(dir);
  if (!d.startsWith(r + path.sep)) throw new Error(`removeScratch: ${d} is not inside ${r}`);
  const walk = async (p: string): Promise<void> => {
    const st = await fsp.lstat(p).catch(() => undefined);
    if (st === undefined) return;
    if (st.isDirectory()) {
      for (const n of await fsp.readdir(p)) await walk(path.join(p, n));
      await fsp.rmdir(p);
      return;
    }
    // A symlink is removed as a link; a file may be read-only (an object copy): unlink ignores that.
    await fsp.unlink(p);
  };
  await walk(d);
}
