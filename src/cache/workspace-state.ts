/**
 * Per-workspace state kept in the cache (never in the user's tree):
 * `<cache>/workspaces/<sha256(abs workspace)>/`
 *
 * ```
 * state.json        stageId → {key, outputsHash, materialised outputs with (size, mtimeNs, ino) per file}
 * hash-memo.bin     the FileHasher memo for this workspace
 * backups/*.json    user content found where outputs were materialised (kept by gc)
 * ```
 *
 * With `state.json` the runner tells, in a stat-only pass (`check`), that the
 * outputs in the workspace are still exactly what the engine put there; a
 * user edit or deletion shows up as a change and the runner restores.
 *
 * Read-modify-write of state.json is protected by the workspace lock (one run
 * per workspace); this module does not take it. It does not hash file
 * contents: `check` compares stat signatures only.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import { writeFileAtomic } from './atomic.js';
import { ownedTempName } from './process-id.js';
import { type OutputManifest, toPosix } from './manifest.js';

/** A materialised file: `[path relative to the output's dest, size, mtimeNs, ino]` (bigints as decimal strings). */
export type MaterialisedFile = readonly [path: string, size: number, mtimeNs: string, ino: string];

/** One output root the engine wrote into the workspace. */
export interface MaterialisedOutput {
  /** Workspace-relative, `/`-separated (a builtin's outDir, or one declared `cmd` out). */
  readonly dest: string;
  /** A single file, or a directory of files. */
  readonly kind: 'file' | 'dir';
  /** Manifest hash of what was materialised there. */
  readonly hash: string;
  /** Sorted by path; `''` for a file output. */
  readonly files: readonly MaterialisedFile[];
}

/** What the engine last left in the workspace for one stage. */
export interface StageState {
  /** The stage key whose outputs are in the workspace. */
  readonly key: string;
  /** The stage's full output manifest hash (upstream hash for early cutoff). */
  readonly outputsHash: string;
  readonly outputs: readonly MaterialisedOutput[];
  /** ISO time of materialisation / run. */
  readonly at: string;
}

/** A user's content that was in the way of a materialisation, saved in the cache. */
export interface BackupRecord {
  readonly format: 'pipeline.backup/v1';
  readonly workspace: string;
  /** Workspace-relative path that was replaced. */
  readonly path: string;
  readonly stageId?: string;
  readonly at: string;
  /** Files saved, relative to `path` (`''` for a file). Restore with `CacheStore.materialize`. */
  readonly manifest: OutputManifest;
}

/** How a materialised output differs from the workspace. */
export interface OutputChange {
  /** Workspace-relative path of the file. */
  readonly path: string;
  readonly change: 'modified' | 'removed' | 'added';
}

interface StateFile {
  readonly format: 'pipeline.workspace-state/v1';
  readonly workspace: string;
  readonly stages: Record<string, StageState>;
}

/** The cache directory holding a workspace's state. */
export function workspaceDir(cacheRoot: string, workspace: string): string {
  const id = crypto.createHash('sha256').update(path.resolve(workspace)).digest('hex').slice(0, 32);
  return path.join(cacheRoot, 'workspaces', id);
}

/** Path of the workspace lock file (`<workspace>/.pipeline/lock`: in the workspace, so it holds whichever cache is used). */
export function workspaceLockPath(workspace: string): string {
  return path.join(workspace, '.pipeline', 'lock');
}

/** A workspace's state, loaded in memory; `save` persists it atomically. */
export class WorkspaceState {
  /** `<cache>/workspaces/<id>`. */
  readonly dir: string;
  /** Where the FileHasher memo for this workspace lives. */
  readonly memoFile: string;
  private stages: Record<string, StageState>;
  private dirty = false;

  private constructor(
    readonly cacheRoot: string,
    readonly workspace: string,
    stages: Record<string, StageState>,
  ) {
    this.dir = workspaceDir(cacheRoot, workspace);
    this.memoFile = path.join(this.dir, 'hash-memo.bin');
    this.stages = stages;
  }

  /**
   * Loads the state (missing or unreadable → empty). A workspace with no
   * state file yet gets an empty one at once (best effort), so a concurrent
   * `cache gc` finds the workspace (and its run lock) before its first stage
   * has finished: gc keeps the records a live run writes (store.ts).
   */
  static async open(cacheRoot: string, workspace: string): Promise<WorkspaceState> {
    const ws = path.resolve(workspace);
    const file = path.join(workspaceDir(cacheRoot, ws), 'state.json');
    let stages: Record<string, StageState> = {};
    try {
      const raw = JSON.parse(await fsp.readFile(file, 'utf8')) as StateFile;
      if (raw.format === 'pipeline.workspace-state/v1' && raw.workspace === ws) stages = raw.stages;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        const empty: StateFile = { format: 'pipeline.workspace-state/v1', workspace: ws, stages: {} };
        // Never over an existing file (another process may have written one meanwhile); failures only cost gc that hint.
        await writeNew(file, JSON.stringify(empty), path.join(cacheRoot, 'tmp')).catch(() => {});
      }
    }
    return new WorkspaceState(path.resolve(cacheRoot), ws, stages);
  }

  /** The state of `stageId`, if the engine materialised or ran it here. */
  get(stageId: string): StageState | undefined {
    return this.stages[stageId];
  }

  /** Stage ids with state. */
  stageIds(): string[] {
    return Object.keys(this.stages).sort();
  }

  /** Records what is now in the workspace for `stageId`. */
  set(stageId: string, st: StageState): void {
    this.stages[stageId] = st;
    this.dirty = true;
  }

  delete(stageId: string): void {
    if (stageId in this.stages) {
      delete this.stages[stageId];
      this.dirty = true;
    }
  }

  /**
   * Writes state.json atomically if changed. The dirty flag is cleared when
   * the content is taken, before the write: a `set` while the write is in
   * flight (another stage finishing) marks the state dirty again, so the
   * next `save` writes it (clearing the flag after the write lost that stage).
   */
  async save(): Promise<void> {
    if (!this.dirty) return;
    const body: StateFile = { format: 'pipeline.workspace-state/v1', workspace: this.workspace, stages: this.stages };
    const text = JSON.stringify(body);
    this.dirty = false;
    try {
      // Temp in the cache's tmp/, named after this process: a run killed mid-write leaves nothing here for good.
      await writeFileAtomic(path.join(this.dir, 'state.json'), text, { tmpDir: path.join(this.cacheRoot, 'tmp') });
    } catch (e) {
      this.dirty = true;
      throw e;
    }
  }

  /**
   * Stat-only check that `stageId`'s outputs are still what the engine put
   * there. Empty array = intact. `undefined` when there is no state.
   */
  check(stageId: string): OutputChange[] | undefined {
    const st = this.stages[stageId];
    if (st === undefined) return undefined;
    return st.outputs.flatMap((o) => checkOutput(this.workspace, o));
  }

  /** Saves a backup record (the objects must already be in the store). */
  async addBackup(b: Omit<BackupRecord, 'format' | 'workspace'>): Promise<string> {
    const rec: BackupRecord = { format: 'pipeline.backup/v1', workspace: this.workspace, ...b };
    const file = path.join(this.dir, 'backups', `${b.at.replace(/[:.]/g, '-')}-${crypto.randomBytes(4).toString('hex')}.json`);
    await writeFileAtomic(file, JSON.stringify(rec), { syncDir: true, tmpDir: path.join(this.cacheRoot, 'tmp') });
    return file;
  }

  /** Every backup record of this workspace, oldest first. */
  async backups(): Promise<BackupRecord[]> {
    const dir = path.join(this.dir, 'backups');
    const names = (await fsp.readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort();
    const out: BackupRecord[] = [];
    for (const n of names) {
      try {
        out.push(JSON.parse(await fsp.readFile(path.join(dir, n), 'utf8')) as BackupRecord);
      } catch {
        /* skip */
      }
    }
    return out;
  }
}

/**
 * Creates `file` with `text` only if it does not exist: a temp in `tmpDir` (a
 * cache's tmp/, owner-named as `CacheStore.tmpName` does, so a killed
 * writer's temp is cleaned), then a hard link: the file is whole or absent.
 */
async function writeNew(file: string, text: string, tmpDir: string): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.mkdir(tmpDir, { recursive: true });
  const tmp = path.join(tmpDir, ownedTempName('.state.json.new'));
  await fsp.writeFile(tmp, text, { flag: 'wx' });
  try {
    await fsp.link(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}

/** Stat signature of a file as stored in state. */
export function statSignature(abs: string): { size: number; mtimeNs: string; ino: string } | undefined {
  const st = fs.lstatSync(abs, { bigint: true, throwIfNoEntry: false });
  if (st === undefined || !st.isFile()) return undefined;
  return { size: Number(st.size), mtimeNs: st.mtimeNs.toString(), ino: st.ino.toString() };
}

/**
 * Whether the file at `abs` still has the recorded signature `[_, size,
 * mtimeNs, ino]`, as `statSignature` would say, but from a plain lstat (no
 * bigint: a 10k-file output is checked on every run, and a bigint stat costs
 * several times as much). The mtime is compared at the resolution of the
 * double `mtimeMs` (a quarter microsecond today: the hash memo's resolution,
 * see file-hasher.ts); when the plain stat disagrees, or the inode does not
 * fit a double exactly, the exact bigint stat decides, so no difference the
 * exact check sees is missed beyond that resolution.
 */
export function hasSignature(abs: string, want: MaterialisedFile): boolean {
  const st = fs.lstatSync(abs, { throwIfNoEntry: false });
  if (st === undefined || !st.isFile() || st.size !== want[1]) return false;
  const ino = want[3];
  if (ino.length < 16 && st.ino === Number(ino) && st.mtimeMs === mtimeMsOf(want[2])) return true;
  const sig = statSignature(abs);
  return sig !== undefined && sig.size === want[1] && sig.mtimeNs === want[2] && sig.ino === ino;
}

const NS_PER_S = 1_000_000_000n;

/** `mtimeMs` as `fs.Stats` computes it from seconds and nanoseconds (`sec * 1e3 + nsec / 1e6`), for a decimal ns string. */
export function mtimeMsOf(mtimeNs: string): number {
  let ns: bigint;
  try {
    ns = BigInt(mtimeNs);
  } catch {
    return NaN; // never equal: the exact check decides
  }
  return Number(ns / NS_PER_S) * 1e3 + Number(ns % NS_PER_S) / 1e6;
}

/** Differences between a materialised output and the workspace (stat only). */
export function checkOutput(workspace: string, o: MaterialisedOutput): OutputChange[] {
  const changes: OutputChange[] = [];
  const root = path.resolve(workspace, o.dest);
  const expected = new Set<string>();
  for (const f of o.files) {
    const rel = f[0];
    const abs = rel === '' ? root : path.join(root, rel);
    expected.add(rel);
    if (hasSignature(abs, f)) continue;
    const wsRel = rel === '' ? o.dest : `${o.dest}/${rel}`;
    changes.push({ path: wsRel, change: statSignature(abs) === undefined ? 'removed' : 'modified' });
  }
  if (o.kind === 'dir') {
    for (const rel of listDirFiles(root)) if (!expected.has(rel)) changes.push({ path: `${o.dest}/${rel}`, change: 'added' });
  }
  return changes;
}

function listDirFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string, pre: string): void => {
    let ents: fs.Dirent[];
    try {
      ents = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      if (e.isDirectory()) walk(path.join(d, e.name), `${pre}${e.name}/`);
      else out.push(`${pre}${e.name}`);
    }
  };
  walk(root, '');
  return out;
}

/** Workspace-relative posix path of `abs`. */
export function wsRelative(workspace: string, abs: string): string {
  return toPosix(path.relative(workspace, abs));
}
