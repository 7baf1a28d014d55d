/**
 * Materialisation: putting a manifest's objects at a workspace path.
 *
 * Rules ("nothing is lost", issue #2 §5):
 * - The new content is built in a hidden sibling temp (`.<name>.pipeline-tmp-…`)
 *   and swapped in with renames; if building fails, the previous content is
 *   untouched.
 * - Content already at the destination that is not exactly what the engine put
 *   there (per `expected`, i.e. workspace state) is first ingested into the
 *   cache and recorded as a backup (`workspace-state.ts`), unless it is
 *   byte-identical to what is being materialised. User files are never
 *   deleted without a copy in the cache.
 * - Each object's bytes are re-hashed as they are restored (`verify`, default
 *   on): a corrupt object is quarantined and never restored; the caller gets
 *   `corrupt-object` and recomputes the stage.
 *
 * Link modes, tried in the caller's order (default `reflink`, then `copy`):
 * - `reflink`: copy-on-write clone (`COPYFILE_FICLONE_FORCE`); safe to edit; free
 *   on btrfs/xfs/APFS; unsupported on ext4 (then we fall through).
 * - `hardlink`: shares the object's inode. Objects are 0444, but an in-place
 *   edit (or any write as root, who ignores permissions) would change the
 *   object itself; `cache verify` and the re-hash on restore detect that, and
 *   workspace state sees the edit. Executable files are never hardlinked
 *   (the object's mode is 0444). Opt-in only, for large read-only data.
 * - `copy`: a private copy with the manifest's mode bits.
 * Default is reflink,copy — the same choice as DVC's default `cache.type`.
 *
 * Reuse (incremental outputs): when the caller passes `previous` (the
 * manifest of what `expected` describes), a file whose path, sha256 and mode
 * are unchanged and whose workspace copy still has the stat signature the
 * engine recorded is hard-linked from the current destination into the new
 * tree instead of being copied and re-hashed. It is the engine's own private
 * copy (never a cache object unless `hardlink` mode put it there), so adding
 * 1% of files to a 10k-file output copies 1% of the bytes. A file the user
 * touched (any signature change) is copied afresh, after the usual backup.
 * When nothing at the destination was touched (every recorded file has its
 * signature, no other file is there), the directory is not rebuilt at all:
 * `updateInPlace` applies the diff (new/changed files renamed in one by one,
 * removed ones unlinked, unchanged ones not touched), so a 1% change costs
 * 1% of the links and unlinks plus one stat per file.
 *
 * This module does not decide what to materialise, does not take the
 * workspace lock and does not update workspace state (it returns what the
 * caller should record).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import { type Result, ok, err } from '../result.js';
import { type OutputManifest, hashFile, manifestHash, mapLimit, removeTree, toPosix } from './manifest.js';
import type { CacheStore } from './store.js';
import { checkOutput, type MaterialisedFile, type MaterialisedOutput, WorkspaceState, hasSignature, statSignature } from './workspace-state.js';
import { currentProcess, isAlive } from './process-id.js';

/** How a file was put in the workspace. */
export type LinkMode = 'hardlink' | 'reflink' | 'copy';

/** Options for `materialize`. */
export interface MaterializeOptions {
  /** Link modes to try, in order. Default `['reflink', 'copy']`. */
  readonly modes?: readonly LinkMode[];
  /** What the engine last put at `dest` (from workspace state). Anything else found there is backed up first. */
  readonly expected?: MaterialisedOutput;
  /** Re-hash object bytes while restoring. Default true. */
  readonly verify?: boolean;
  /** Stage id, recorded with a backup. */
  readonly stageId?: string;
  /** Whether `dest` is a single file (manifest holds one file with path `''`) or a directory. Default: inferred. */
  readonly kind?: 'file' | 'dir';
  /** `checkOutputDir`'s result for `dest`, made earlier with the same `expected` and `previous`: see `materialize`. */
  readonly checked?: OutputDirCheck;
  /**
   * The manifest whose files `expected` describes (its hash must equal
   * `expected.hash`): enables reuse (module doc). The caller vouches that its
   * files hash to its hash (it comes from a checked run record): it is not
   * hashed again here.
   */
  readonly previous?: OutputManifest;
}

/** A successful materialisation. */
export interface Materialised {
  /** The mode used for most files (`copy` if none). */
  readonly mode: LinkMode;
  readonly counts: Readonly<Record<LinkMode, number>>;
  /** Files kept from the previous materialisation instead of being restored (see `previous`). */
  readonly reused?: number;
  /** What to record in workspace state for this output. */
  readonly output: MaterialisedOutput;
  /** File of the backup record, when user content had to be saved first. */
  readonly backup?: string;
}

/** Why a materialisation did not happen. */
export type MaterializeFailure =
  /** An object's bytes do not match its hash; it was quarantined. Recompute the stage. */
  | { readonly reason: 'corrupt-object'; readonly sha256: string; readonly path: string }
  /** An object is not in the store (gc'd or quarantined). Recompute the stage. */
  | { readonly reason: 'object-missing'; readonly sha256: string; readonly path: string }
  /** `dest` is the workspace itself or outside it. */
  | { readonly reason: 'bad-destination'; readonly path: string };

const reflinkUnsupported = new Set<number>(); // st_dev values where FICLONE failed

/** Puts `manifest` (paths relative to `dest`) at workspace path `dest`. See module doc. */
export async function materialize(store: CacheStore, manifest: OutputManifest, workspace: string, dest: string, opts: MaterializeOptions = {}): Promise<Result<Materialised, MaterializeFailure>> {
  const ws = path.resolve(workspace);
  const absDest = path.resolve(ws, dest);
  const relDest = toPosix(path.relative(ws, absDest));
  if (relDest === '' || relDest.startsWith('..') || path.isAbsolute(relDest)) return err({ reason: 'bad-destination', path: dest });
  const kind = opts.kind ?? (manifest.files.length === 1 && manifest.files[0]!.path === '' ? 'file' : 'dir');
  const modes = opts.modes ?? ['reflink', 'copy'];
  const verify = opts.verify ?? true;
  const parent = path.dirname(absDest);
  const base = path.basename(absDest);
  await fsp.mkdir(parent, { recursive: true });
  await cleanSiblings(parent, base);

  const existing = fs.lstatSync(absDest, { throwIfNoEntry: false });
  const isDir = kind === 'dir' && existing?.isDirectory() === true;
  // A check made earlier (while the stage ran) serves when every path this update will write or remove is still as
  // it found it; files it leaves alone need no second look (an edit there is kept, and seen by the next check).
  const checked = isDir && opts.checked !== undefined && opts.checked.dest === relDest && stillAsChecked(absDest, manifest, opts.checked) ? opts.checked : undefined;
  const reusable = checked?.reusable ?? (isDir ? reusableFiles(absDest, relDest, opts) : new Map<string, Reusable>());
  const reuses = (f: { path: string; sha256: string; mode: number }): Reusable | undefined => {
    const r = reusable.get(f.path);
    return r !== undefined && sameContent(r, f) ? r : undefined;
  };

  for (const f of manifest.files) {
    if (reuses(f) !== undefined || store.hasObject(f.sha256, f.size)) continue;
    if (!store.hasObject(f.sha256)) return err({ reason: 'object-missing', sha256: f.sha256, path: f.path });
    await store.quarantine(store.objectPath(f.sha256), f.sha256); // wrong size: corrupt
    return err({ reason: 'corrupt-object', sha256: f.sha256, path: f.path });
  }

  // 1. Save whatever is in the way, unless it is what we put there (or identical to what comes).
  // Every recorded file unchanged and nothing added: the content is ours, nothing to save (what
  // backupIfForeign's check would find, without stat'ing every file a second time).
  const allOurs = existing !== undefined && opts.expected !== undefined && reusable.size === opts.expected.files.length && (checked?.entries ?? countEntries(absDest)) === reusable.size;
  const me = currentProcess();
  const tag = `${me.pid}-${crypto.randomBytes(4).toString('hex')}`;
  // Everything at the destination is exactly the engine's previous output: apply the diff in place.
  if (allOurs && kind === 'dir' && existing?.isDirectory() === true) return updateInPlace(store, manifest, absDest, relDest, path.join(parent, `.${base}.pipeline-tmp-${tag}`), reusable, modes, verify);
  const backup = existing === undefined || allOurs ? undefined : await backupIfForeign(store, ws, relDest, { ...opts, unlessHash: manifest.hash });

  // 2. Build the new content beside the destination.
  const tmp = path.join(parent, `.${base}.pipeline-tmp-${tag}`);
  const counts: Record<LinkMode, number> = { hardlink: 0, reflink: 0, copy: 0 };
  let reused = 0;
  const reusedSigs = new Map<string, MaterialisedFile>();
  let corrupt: { sha256: string; path: string } | undefined;
  let missing: { sha256: string; path: string } | undefined;
  try {
    if (kind === 'dir') {
      await fsp.mkdir(tmp);
      // Directories first (in order), then files concurrently: overlaps copies and re-hashing.
      const dirs = new Set<string>();
      for (const f of manifest.files) {
        const i = f.path.lastIndexOf('/');
        if (i > 0) dirs.add(f.path.slice(0, i));
      }
      for (const d of dirs) await fsp.mkdir(path.join(tmp, d), { recursive: true });
    }
    await mapLimit(manifest.files, 16, async (f) => {
      if (corrupt !== undefined || missing !== undefined) return;
      const target = kind === 'file' ? tmp : path.join(tmp, f.path);
      const r = reuses(f);
      if (r !== undefined) {
        try {
          await fsp.link(path.join(absDest, f.path), target);
          reused++;
          reusedSigs.set(f.path, r.sig); // a new name changes neither size, mtime nor inode
          return;
        } catch {
          /* vanished or no links here: restore it */
        }
      }
      const placed = await placeVerified(store, f, target, modes, verify, counts);
      if (placed === 'corrupt') corrupt ??= { sha256: f.sha256, path: f.path };
      else if (placed === 'missing') missing ??= { sha256: f.sha256, path: f.path };
    });
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw e;
  }
  if (corrupt !== undefined) {
    await fsp.rm(tmp, { recursive: true, force: true });
    return corruptObject(store, corrupt);
  }
  if (missing !== undefined) {
    await fsp.rm(tmp, { recursive: true, force: true });
    return missingObject(missing);
  }

  // 3. Swap: old content aside, new content in, old content removed (it is ours or backed up).
  if (existing !== undefined) {
    const old = path.join(parent, `.${base}.pipeline-old-${tag}`);
    await fsp.rename(absDest, old);
    await fsp.rename(tmp, absDest);
    await removeTree(old);
  } else {
    await fsp.rename(tmp, absDest);
  }

  const files: MaterialisedFile[] = [];
  for (const f of manifest.files) {
    const known = reusedSigs.get(f.path);
    if (known !== undefined) {
      files.push(known);
      continue;
    }
    const sig = statSignature(kind === 'file' ? absDest : path.join(absDest, f.path));
    if (sig !== undefined) files.push([f.path, sig.size, sig.mtimeNs, sig.ino]);
  }
  const mode = mainMode(counts);
  const output: MaterialisedOutput = { dest: relDest, kind, hash: manifest.hash, files };
  return ok({ mode, counts, ...(reused > 0 ? { reused } : {}), output, ...(backup === undefined ? {} : { backup }) });
}

/**
 * In-place update of a directory output that holds exactly the engine's
 * previous output (every file has its recorded stat signature, nothing else
 * is there): files whose path, sha256 and mode are unchanged are not touched
 * at all; new and changed files are built in a sibling temp dir (verified
 * like a full restore) and renamed over their path one by one (atomic per
 * file, never written through an existing inode); files gone from the
 * manifest are unlinked, then directories left empty are removed. Nothing
 * foreign is there, so nothing needs a backup.
 *
 * Crash safety: a kill part-way leaves a mix of old and new files, each one
 * complete, all of them engine output whose objects are in the cache (both
 * manifests are stored). Workspace state still describes the old output, so
 * the next run sees the replaced files as changed and saves the whole
 * directory as a backup before rebuilding it: slower, never lossy. The temp
 * dir of a dead process is removed by `cleanSiblings`.
 */
async function updateInPlace(store: CacheStore, manifest: OutputManifest, absDest: string, relDest: string, tmp: string, reusable: ReadonlyMap<string, Reusable>, modes: readonly LinkMode[], verify: boolean): Promise<Result<Materialised, MaterializeFailure>> {
  const counts: Record<LinkMode, number> = { hardlink: 0, reflink: 0, copy: 0 };
  const keep = new Map<string, MaterialisedFile>();
  const todo: { f: OutputManifest['files'][number]; i: number }[] = [];
  for (const f of manifest.files) {
    const r = reusable.get(f.path);
    if (r !== undefined && sameContent(r, f)) keep.set(f.path, r.sig);
    else todo.push({ f, i: todo.length });
  }
  const wanted = new Set(manifest.files.map((f) => f.path));
  const gone = [...reusable.keys()].filter((p) => !wanted.has(p));
  let corrupt: { sha256: string; path: string } | undefined;
  let missing: { sha256: string; path: string } | undefined;
  const placed = new Map<string, MaterialisedFile>();
  try {
    if (todo.length > 0) {
      // 1. Build every new/changed file first (flat names): a corrupt object stops us before anything changes.
      await fsp.mkdir(tmp);
      await mapLimit(todo, 16, async ({ f, i }) => {
        if (corrupt !== undefined || missing !== undefined) return;
        const r = await placeVerified(store, f, path.join(tmp, String(i)), modes, verify, counts);
        if (r === 'corrupt') corrupt ??= { sha256: f.sha256, path: f.path };
        else if (r === 'missing') missing ??= { sha256: f.sha256, path: f.path };
      });
      if (corrupt !== undefined) return await corruptObject(store, corrupt);
      if (missing !== undefined) return missingObject(missing);
    }
    // 2. Remove files no longer in the output (ours: their signature matched), then emptied directories.
    const emptied = new Set<string>();
    for (const p of gone) {
      fs.rmSync(path.join(absDest, p), { force: true }); // already gone: fine
      for (let d = path.posix.dirname(p); d !== '.' && d !== ''; d = path.posix.dirname(d)) emptied.add(d);
    }
    for (const d of [...emptied].sort((a, b) => b.length - a.length)) {
      try {
        fs.rmdirSync(path.join(absDest, d));
      } catch {
        /* not empty: still holds output */
      }
    }
    // 3. Rename new/changed files over their paths (atomic per file).
    const made = new Set<string>();
    for (const { f, i } of todo) {
      const target = path.join(absDest, f.path);
      const dir = path.dirname(target);
      if (!made.has(dir)) {
        fs.mkdirSync(dir, { recursive: true });
        made.add(dir);
      }
      fs.renameSync(path.join(tmp, String(i)), target);
      const sig = statSignature(target);
      if (sig !== undefined) placed.set(f.path, [f.path, sig.size, sig.mtimeNs, sig.ino]);
    }
  } finally {
    if (todo.length > 0) await fsp.rm(tmp, { recursive: true, force: true });
  }
  const files: MaterialisedFile[] = [];
  for (const f of manifest.files) {
    const s = keep.get(f.path) ?? placed.get(f.path);
    if (s !== undefined) files.push(s);
  }
  const mode = mainMode(counts);
  const output: MaterialisedOutput = { dest: relDest, kind: 'dir', hash: manifest.hash, files };
  return ok({ mode, counts, ...(keep.size > 0 ? { reused: keep.size } : {}), output });
}

/**
 * Places the object of `f` at `target` (checking its hash first when `verify`),
 * counting the link mode used; false (nothing placed) when the object is corrupt.
 */
async function placeVerified(store: CacheStore, f: { sha256: string; mode: number }, target: string, modes: readonly LinkMode[], verify: boolean, counts: Record<LinkMode, number>): Promise<'ok' | 'corrupt' | 'missing'> {
  const obj = store.objectPath(f.sha256);
  try {
    // An object this process stored from bytes it hashed moments ago is not hashed again (see hashedInThisProcess).
    if (verify && !store.hashedInThisProcess(f.sha256) && (await hashFile(obj)) !== f.sha256) return 'corrupt';
    counts[await place(obj, target, f.mode, modes)]++;
    return 'ok';
  } catch (e) {
    // Removed meanwhile (a concurrent `cache gc` took an unkept record's objects): the caller
    // returns object-missing and the stage is recomputed, instead of an internal error.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !fs.existsSync(obj)) return 'missing';
    throw e;
  }
}

/** The failure for an object that vanished while it was being restored (see `placeVerified`). */
function missingObject(c: { sha256: string; path: string }): Result<never, MaterializeFailure> {
  return err({ reason: 'object-missing', sha256: c.sha256, path: c.path });
}

/** Quarantines a corrupt object found while materialising and returns the failure. */
async function corruptObject(store: CacheStore, c: { sha256: string; path: string }): Promise<Result<never, MaterializeFailure>> {
  await store.quarantine(store.objectPath(c.sha256), c.sha256);
  return err({ reason: 'corrupt-object', sha256: c.sha256, path: c.path });
}

/** The link mode used for most files. */
function mainMode(counts: Record<LinkMode, number>): LinkMode {
  return (Object.keys(counts) as LinkMode[]).reduce((a, b) => (counts[b] > counts[a] ? b : a), 'copy');
}

/** Whether a reusable file holds what a manifest entry needs: the same bytes and mode. */
function sameContent(r: Reusable, f: { sha256: string; mode: number }): boolean {
  return r.sha256 === f.sha256 && r.mode === f.mode;
}

/**
 * What `checkOutputDir` found at an output directory: its reusable files and
 * how many entries are there, for a later `materialize` (`checked`).
 */
export interface OutputDirCheck {
  readonly dest: string;
  readonly reusable: ReadonlyMap<string, Reusable>;
  readonly entries: number;
}

/**
 * The reuse check `materialize` makes (which files at `dest` are exactly what
 * the engine put there, per `opts.previous`/`opts.expected`, and whether
 * anything else is there), made ahead: e.g. while the stage that will
 * replace the output runs. Undefined when `dest` is no directory.
 */
export function checkOutputDir(workspace: string, dest: string, opts: MaterializeOptions): OutputDirCheck | undefined {
  const absDest = path.resolve(workspace, dest);
  const relDest = toPosix(path.relative(path.resolve(workspace), absDest));
  if (fs.lstatSync(absDest, { throwIfNoEntry: false })?.isDirectory() !== true) return undefined;
  return { dest: relDest, reusable: reusableFiles(absDest, relDest, opts), entries: countEntries(absDest) };
}

/**
 * Whether the paths `manifest` will write or remove at `absDest` are as
 * `check` found them: reusable files it replaces or removes still carry
 * their signature, and nothing has appeared where a new file goes.
 */
function stillAsChecked(absDest: string, manifest: OutputManifest, check: OutputDirCheck): boolean {
  const native = path.sep === '/' ? (p: string) => p : (p: string) => p.split('/').join(path.sep);
  const same = (rel: string, r: Reusable | undefined): boolean => {
    const abs = absDest + path.sep + native(rel);
    return r === undefined ? fs.lstatSync(abs, { throwIfNoEntry: false }) === undefined : hasSignature(abs, r.sig);
  };
  const wanted = new Set<string>();
  for (const f of manifest.files) {
    wanted.add(f.path);
    const r = check.reusable.get(f.path);
    if (r !== undefined && sameContent(r, f)) continue; // left alone
    if (!same(f.path, r)) return false;
  }
  for (const [rel, r] of check.reusable) if (!wanted.has(rel) && !same(rel, r)) return false;
  return true;
}

/** A workspace file the engine put there and nobody touched since. */
interface Reusable {
  /** The bytes it holds. */
  readonly sha256: string;
  readonly mode: number;
  /** Its recorded (and current) stat signature. */
  readonly sig: MaterialisedFile;
}

/**
 * Files at `absDest` that are exactly what the engine put there last time
 * (per `opts.previous`), kept only where the workspace file still has the
 * recorded stat signature.
 */
function reusableFiles(absDest: string, relDest: string, opts: MaterializeOptions): Map<string, Reusable> {
  const out = new Map<string, Reusable>();
  const { previous, expected } = opts;
  if (previous === undefined || expected === undefined || expected.dest !== relDest || expected.kind !== 'dir' || expected.hash !== previous.hash) return out;
  // Both lists are in manifest order when the engine wrote them: walk them side by side, looking a path up only
  // where they part.
  let sigs: Map<string, MaterialisedFile> | undefined;
  const base = absDest + path.sep;
  const native = path.sep === '/' ? (p: string) => p : (p: string) => p.split('/').join(path.sep);
  for (let i = 0; i < previous.files.length; i++) {
    const f = previous.files[i]!;
    if (f.path === '') continue;
    const at = expected.files[i];
    const want = at !== undefined && at[0] === f.path ? at : (sigs ??= new Map(expected.files.map((m) => [m[0], m]))).get(f.path);
    if (want === undefined) continue;
    if (hasSignature(base + native(f.path), want)) out.set(f.path, { sha256: f.sha256, mode: f.mode, sig: want });
  }
  return out;
}

/**
 * Entries under directory `dir` that are not directories (files, links,
 * anything else), counted without building their paths: enough to tell that
 * nothing but the recorded files is there, once each of those was found.
 */
function countEntries(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? countEntries(`${dir}${path.sep}${e.name}`) : 1;
  return n;
}

/** Options for `backupIfForeign`. */
export interface BackupOptions {
  /** What the engine last put at the path (workspace state); if the path still matches it, nothing is saved. */
  readonly expected?: MaterialisedOutput;
  readonly stageId?: string;
  /** Skip the backup when the content's manifest hash (paths relative to the path) equals this. */
  readonly unlessHash?: string;
}

/**
 * Saves the content at workspace path `dest` into the cache and records a
 * backup (workspace-state.ts), unless it is exactly what the engine put there
 * (`expected`, stat check) or nothing is there. Never modifies `dest`.
 * Call it before a `cmd` stage that will overwrite its declared outs in place.
 * Returns the backup record's file, if one was written.
 */
export async function backupIfForeign(store: CacheStore, workspace: string, dest: string, opts: BackupOptions = {}): Promise<string | undefined> {
  const ws = path.resolve(workspace);
  const relDest = toPosix(path.relative(ws, path.resolve(ws, dest)));
  const existing = fs.lstatSync(path.resolve(ws, relDest), { throwIfNoEntry: false });
  if (existing === undefined) return undefined;
  if (opts.expected !== undefined && opts.expected.dest === relDest && checkOutput(ws, opts.expected).length === 0) return undefined;
  const saved = await store.ingestPaths(ws, [relDest]);
  if (!saved.ok) return undefined; // vanished meanwhile: nothing to save
  const rel = subManifestOf(saved.value, relDest, existing.isDirectory());
  if (opts.unlessHash !== undefined && rel.hash === opts.unlessHash) return undefined;
  const state = await WorkspaceState.open(store.root, ws);
  return state.addBackup({ path: relDest, at: new Date().toISOString(), manifest: rel, ...(opts.stageId ? { stageId: opts.stageId } : {}) });
}

/** Creates `target` from object `obj` with the first mode that works. */
async function place(obj: string, target: string, mode: number, modes: readonly LinkMode[]): Promise<LinkMode> {
  for (const m of modes) {
    if (m === 'hardlink') {
      if ((mode & 0o111) !== 0) continue;
      try {
        fs.linkSync(obj, target); // a metadata call: cheaper than a threadpool round trip
        return 'hardlink';
      } catch (e) {
        // The object vanished (gc): as for a copy, the caller tells that from a failure to link.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !fs.existsSync(obj)) throw e;
        continue;
      }
    } else if (m === 'reflink') {
      const dev = fs.statSync(path.dirname(target)).dev;
      if (reflinkUnsupported.has(dev)) continue;
      try {
        await fsp.copyFile(obj, target, fs.constants.COPYFILE_FICLONE_FORCE);
        await fsp.chmod(target, mode);
        return 'reflink';
      } catch {
        reflinkUnsupported.add(dev);
        await fsp.rm(target, { force: true });
        continue;
      }
    } else {
      await fsp.copyFile(obj, target);
      await fsp.chmod(target, mode);
      return 'copy';
    }
  }
  await fsp.copyFile(obj, target);
  await fsp.chmod(target, mode);
  return 'copy';
}

/** The manifest of an ingested `relDest` with paths relative to it. */
function subManifestOf(m: OutputManifest, relDest: string, isDir: boolean): OutputManifest {
  const files = m.files.map((f) => ({ ...f, path: isDir ? f.path.slice(relDest.length + 1) : '' }));
  return { files, hash: manifestHash(files) };
}


/** Removes temp/old siblings of `base` left by dead processes (crash between build and swap). */
async function cleanSiblings(parent: string, base: string): Promise<void> {
  const prefix = `.${base}.pipeline-`;
  let names: string[];
  try {
    names = await fsp.readdir(parent);
  } catch {
    return;
  }
  const me = currentProcess();
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const m = /^(?:tmp|old)-(\d+)-[0-9a-f]+$/.exec(n.slice(prefix.length));
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === me.pid || isAlive({ pid, hostname: me.hostname })) continue;
    // An `old-` sibling is either engine output or content already backed up (backup precedes the swap).
    await fsp.rm(path.join(parent, n), { recursive: true, force: true });
  }
}
