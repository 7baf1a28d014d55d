/**
 * The content-addressed cache (issue #2 §5). Layout under the cache root
 * (default `./cache`; one root can be shared by many pipelines, workspaces and
 * concurrent processes):
 *
 * ```
 * objects/<sha[0:2]>/<sha>        file contents by sha256, read-only (0444)
 * records/<key[0:2]>/<key>.json   one RunRecord per stage key
 * workspaces/<sha256(abs ws)>/    per-workspace state, hash memo, backups (workspace-state.ts)
 * items/<namespace>/              per-item caches (item-cache.ts)
 * quarantine/<sha>.<time>         objects that failed `verify`
 * tmp/<host>~<pid>~<start>~<rnd>  staging dirs and temp files of live processes
 * ```
 *
 * Crash safety:
 * - every file enters `objects/` or `records/` by rename from `tmp/` after an
 *   fsync, so a reader never sees a torn object or record;
 * - `writeRecord` checks every referenced object exists and fsyncs the object
 *   directories before writing the record, and the record is written last;
 * - a killed process leaves only `tmp/` entries; `open` removes those whose
 *   owner is dead (same host; a live owner's are kept however old) or, for
 *   other hosts sharing the cache, which are older than a day;
 * - two processes storing the same object rename identical bytes over each
 *   other: harmless.
 *
 * Shared inodes: a built-in stage may hard-link read-only item-cache entries
 * into its staging dir (`ItemCache.link`, e.g. resize's per-image packs).
 * `ingestDir` makes such a file's inode the object itself (fsync, then a
 * link into `objects/`; no copy) and remembers `(dev, ino) → sha256` in
 * `inode-memo`, so the next run that links the same entry costs one stat
 * instead of a re-hash. A memo hit is trusted only when `objects/<sha256>` is
 * that very inode (same dev, ino, size, mtime), so a stale or lost memo can
 * only cost a re-hash. Such inodes are never written in place (entries are
 * created 0444 and replaced by rename), and workspaces get copies
 * (materialize), so an edit in the workspace cannot reach the object.
 *
 * Item keys: an item-cache key names everything that determines the item's
 * bytes (item-cache.ts), so once an entry has been stored as an object, the
 * key alone names that object. `item-memo` remembers `<ns>/<key>` → (sha256,
 * size); a referenced entry whose key it knows costs no look at the entry at
 * all, in the stage (`stageItemCache.refer`) or here: one stat of the object,
 * or none when the record the workspace state names for the stage already
 * references it (`ingestStaging`'s `kept`). An object found gone drops its
 * key from the memo, and the entry is adopted again or reported missing.
 *
 * Corruption: `verify` re-hashes objects and moves bad ones to `quarantine/`;
 * `readRecord` then reports the record unusable (an object is missing), so
 * the stage is recomputed instead of restored. `materialize` also re-hashes
 * the object bytes it restores (default), so an undetected corrupt object is
 * never restored either.
 *
 * This module does not decide freshness, run stages or hold the workspace
 * lock; it does not delete user files (see materialize.ts for the rules).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import type { ItemCache } from '../../stages/types.js';
import { computeKey, type FingerprintHash, type StageFingerprint } from '../fingerprint.js';
import { type Result, ok, err } from '../result.js';
import { fsyncDir, writeFileAtomic, writeSynced } from './atomic.js';
import { directoryItemCache, itemEntryIntact, itemFiles, ITEM_DIGEST_BYTES, ITEM_KEY } from './item-cache.js';
import { HashMemo } from '../hash/memo.js';
import { itemMemoFile } from './item-memo.js';
import { currentProcess, isAlive, ownedTempName } from './process-id.js';
import { acquireLock, liveLockHolder, type LockInfo } from './lock.js';
import { workspaceLockPath } from './workspace-state.js';
import { materialize, type Materialised, type MaterializeFailure, type MaterializeOptions } from './materialize.js';
import { type ManifestFile, type OutputManifest, hashFile, listFiles, makeManifest, manifestHash, mapLimit, removeTree, toPosix } from './manifest.js';

export type { ManifestFile, OutputManifest } from './manifest.js';
export { manifestHash, makeManifest, subManifest } from './manifest.js';
export type { LinkMode, Materialised, MaterializeFailure, MaterializeOptions } from './materialize.js';

/** A big log is stored as an object; small ones inline. */
export type RunLog = string | { readonly object: string; readonly bytes: number };

/** Everything recorded about one successful stage run, keyed by its fingerprint hash. */
export interface RunRecord {
  readonly format: 'pipeline.run-record/v1';
  readonly key: FingerprintHash;
  /** The fingerprint the key was computed from (for `explain`). */
  readonly fingerprint: StageFingerprint;
  readonly stageId: string;
  readonly outputs: OutputManifest;
  readonly metrics: Readonly<Record<string, number>>;
  /** stdout+stderr (cmd) or logger lines (builtin). Use `CacheStore.readLog`. */
  readonly log: RunLog;
  /** ISO time the run started. */
  readonly startedAt: string;
  readonly durationMs: number;
  readonly backend?: { readonly name: string; readonly threads?: number };
  readonly summary?: string;
  /**
   * Directory and glob dependencies → object holding their file listing (JSON
   * `[relPath, sha256][]`) as the stage saw them, so `explain` can name the
   * files inside a directory that changed since this run.
   */
  readonly inputListings?: Readonly<Record<string, string>>;
  /**
   * Hex sha256 of `JSON.stringify` of the record without this field (written
   * last). A record whose bytes changed after it was written (a flipped digit
   * in `metrics` still parses and still hashes to its key) fails this check
   * and is treated as missing, so its stage recomputes instead of serving a
   * wrong result. Records written before the field existed have none and are
   * read as before (one flipped byte cannot both drop the field and change data).
   */
  readonly checksum?: string;
}

/** Input to `writeRecord`: a record whose log may still be a plain string of any size. */
export type NewRunRecord = Omit<RunRecord, 'format' | 'log' | 'checksum'> & { readonly log: string };

/** An output that a `cmd` stage declared but did not produce. */
export interface MissingOutput {
  readonly reason: 'missing-output';
  /** Workspace-relative path. */
  readonly path: string;
}

/** Why a record could not be written. */
export interface RecordRefused {
  readonly reason: 'object-missing';
  readonly sha256: string;
  readonly path: string;
}

/**
 * A linked or referenced item-cache entry found corrupt while ingesting a
 * staging dir (`ingestStaging`); it was moved to quarantine. Or (added with
 * `ItemRefs`) `missing-item-entry`: a referenced entry vanished between the
 * stage naming it and the engine storing it (a concurrent `cache gc`).
 * Either way, running the stage again recomputes that item.
 */
export interface CorruptEntry {
  readonly reason: 'corrupt-item-entry' | 'missing-item-entry';
  /** The entry, relative to the cache root: `items/<ns>/<xx>/<key>`. */
  readonly entry: string;
  /** Where the stage had linked it, relative to the staging dir. */
  readonly path: string;
}

/**
 * Output files a built-in named by reference to entries of its item cache
 * instead of writing or linking them into its staging dir
 * (`ItemCache.refer`, e.g. resize's cached per-image packs), for
 * `ingestStaging`. Added with issue 3's incremental runs.
 */
export interface ItemRefs {
  /** The item cache, `items/<namespace>/` under the cache root: the stage's registry name. */
  readonly namespace: string;
  /**
   * Output path (relative to the staging dir, `/`-separated) → entry key, and
   * optionally the entry's `[dev, ino, size, mtimeMs]` as the stage saw it: a
   * hint that spares a stat when the object the inode memo names for that
   * inode is that very inode (then its bytes are the object's, whatever
   * happened to the entry since); otherwise the entry is stat'ed as without it.
   * `sha256`, with `stat`: the hash of the entry's bytes, which the stage host
   * computed as it wrote the entry in this run (`ItemRef.sha256`); an entry
   * still of that inode, size and mtime is adopted as that object without
   * being read (its trailer needs no check either: the bytes were just made
   * from memory, not read from rest).
   */
  readonly refs: readonly { readonly path: string; readonly key: string; readonly stat?: readonly [number, number, number, number]; readonly sha256?: string }[];
}

/** Result of `verify`. */
export interface VerifyReport {
  /** Objects re-hashed. */
  readonly objects: number;
  /** Objects whose bytes did not match their name; they were moved to quarantine. */
  readonly corrupt: readonly string[];
  /** Records referencing objects that are not (or no longer) in the store. */
  readonly missing: readonly { readonly key: string; readonly stageId: string; readonly sha256: string; readonly path: string }[];
  /** Record files that do not parse or are inconsistent (key ≠ hash of fingerprint, manifest hash wrong, or checksum wrong: bytes changed after writing); moved to quarantine. */
  readonly badRecords: readonly string[];
  /**
   * Item-cache entries (`items/<ns>/<xx>/<key>`, relative to the root) whose
   * sha256 trailer does not match; moved to quarantine so no stage links or
   * reads them again (added with shared inodes; absent means none).
   */
  readonly corruptItems?: readonly string[];
}

/** Result of `gc`. */
export interface GcReport {
  readonly removedObjects: number;
  readonly removedRecords: number;
  readonly freedBytes: number;
  /**
   * Runs in progress in workspaces of this cache (live run locks) when gc
   * looked: whatever they wrote since they started was kept, whatever the
   * grace (`liveRunGraceMs`).
   */
  readonly liveRuns: number;
}

/** Options for `gc`. */
export interface GcOptions {
  /** Objects younger than this are kept even if unreferenced (a concurrent run may be about to reference them). Default 1 h. */
  readonly graceMs?: number;
}

const INLINE_LOG_MAX = 64 * 1024;
/** Records `readRecord` keeps parsed (`parsedRecord`). */
const RECORD_MEMO_MAX = 32;
/** Files up to this size are copied into the store by read + write (skipped when the object exists). */
const SMALL_FILE = 4 * 1024 * 1024;
/** Files adopted/materialised concurrently: overlaps fsyncs and copies (libuv runs 4 at a time by default). */
const IO_CONCURRENCY = 16;
/** Background flushes (`flushSoon`) at once: a few, beside the stage's own work on libuv's 4 threads. */
const FLUSH_CONCURRENCY = 2;
const TMP_MAX_AGE_MS = 24 * 3600 * 1000;

/** A cache root opened by one process. */
export class CacheStore {
  /** Absolute cache root. */
  readonly root: string;
  readonly objectsDir: string;
  readonly recordsDir: string;
  readonly tmpDir: string;
  readonly quarantineDir: string;
  /** Object shard directories known to exist. */
  private readonly shardDirs = new Set<string>();
  /** Shard directories with renames not yet fsynced. */
  private readonly unsyncedShards = new Set<string>();
  /**
   * What `ingestDir` did with linked (shared-inode) files since open, for
   * tests and benchmarks: recognised from a memo, hashed, or adopted under
   * the hash the stage host gave (`ItemRefs`).
   */
  readonly sharedStats = { known: 0, hashed: 0, told: 0 };
  /** New objects adopted from shared inodes since open: flushed ahead (`flushSoon`) or at adoption. For tests and benchmarks. */
  readonly flushStats = { ahead: 0, atAdoption: 0 };
  /** `(dev:ino) → sha256` of shared inodes adopted as objects (see module doc); loaded on first use. */
  private inodes: HashMemo | undefined;
  private inodesDirty = false;
  /** The item-key memo (module doc); loaded on first use. */
  private itemObjects: HashMemo | undefined;
  private itemsDirty = false;
  /**
   * Objects an ingest found present (stat) that a kept record references, by
   * the manifest it returned (`ingestStaging`'s `kept`): gc cannot remove
   * them before that manifest's record is written, so `writeRecord` need
   * not stat them again, unless the kept record no longer protects them
   * (`from`, when `keptObjects` made the set: `stillKept`).
   */
  private readonly vouched = new WeakMap<OutputManifest, { readonly objects: ReadonlySet<string>; readonly from: KeptFrom | undefined }>();
  /** The sets `keptObjects` returned, with the record file each came from. */
  private readonly keptFrom = new WeakMap<ReadonlySet<string>, KeptFrom>();
  /** Objects installed (or recognised as the inode hashed) from bytes this process hashed: `hashedInThisProcess`. */
  private readonly hashedHere = new Set<string>();
  /** Manifests this store made (`ingest`, `ingestPaths`): their hash is right by construction. */
  private readonly made = new WeakSet<OutputManifest>();
  /**
   * Files `flushSoon` flushed (or is flushing) to disk: path → the stat
   * signature (`fileSig`) of the inode flushed, or undefined if that failed.
   */
  private readonly flushedAhead = new Map<string, Promise<string | undefined>>();
  /** `flushSoon` work not started yet, and how many flushes run. */
  private readonly flushQueue: { readonly file: string; readonly done: (sig: string | undefined) => void }[] = [];
  private flushing = 0;
  /** Records parsed and checked by `readRecord`, with the stat they were read at (`parsedRecord`). */
  private readonly records = new Map<string, { readonly sig: string; readonly rec: RunRecord; readonly mtimeMs: number; objects?: ReadonlySet<string> }>();
  /** `parsedRecord` reads in flight, by key and file signature. */
  private readonly recordReads = new Map<string, Promise<RunRecord | undefined>>();

  private constructor(root: string) {
    this.root = root;
    this.objectsDir = path.join(root, 'objects');
    this.recordsDir = path.join(root, 'records');
    this.tmpDir = path.join(root, 'tmp');
    this.quarantineDir = path.join(root, 'quarantine');
  }

  /** Opens (creating if needed) the cache at `root` and removes temp files left by dead processes. */
  static async open(root: string): Promise<CacheStore> {
    const s = new CacheStore(path.resolve(root));
    await fsp.mkdir(s.tmpDir, { recursive: true });
    await s.cleanTmp();
    return s;
  }

  /** Path of the object holding `sha256`. */
  objectPath(sha256: string): string {
    // Concatenation, not path.join: called for every file of every manifest (objectsDir is absolute and normal).
    return `${this.objectsDir}${path.sep}${sha256.slice(0, 2)}${path.sep}${sha256}`;
  }

  /** Path of the record for `key`. */
  recordPath(key: string): string {
    return path.join(this.recordsDir, key.slice(0, 2), `${key}.json`);
  }

  /** A unique name in `tmp/` owned by this process (nothing is created). */
  tmpName(suffix = ''): string {
    return path.join(this.tmpDir, ownedTempName(suffix));
  }

  /** A fresh, empty staging directory on the cache's filesystem for a builtin stage to write into. */
  async makeStagingDir(): Promise<string> {
    const d = this.tmpName('.stage');
    await fsp.mkdir(d, { recursive: true });
    return d;
  }

  /** Removes a staging dir (after ingestDir, or after a failed run). */
  async removeStagingDir(dir: string): Promise<void> {
    if (path.dirname(dir) !== this.tmpDir) throw new Error(`not a staging dir: ${dir}`);
    await removeTree(dir);
  }

  /**
   * Moves every regular file under `dir` (a staging dir from `makeStagingDir`)
   * into `objects/` (rename on the same filesystem; files with other hard
   * links are copied instead) and returns the manifest, paths relative to
   * `dir`. The directory is left empty of files. Trusts linked item-cache
   * entries as they are: the engine uses `ingestStaging`, which checks them.
   */
  async ingestDir(dir: string): Promise<OutputManifest> {
    return this.ingest(dir, undefined);
  }

  /**
   * `ingestDir` for a built-in's staging dir, checking every linked
   * item-cache entry it hashes (a shared inode the memo does not vouch for):
   * an entry whose sha256 trailer is wrong (corrupted or torn in the cache,
   * e.g. a flipped byte) is moved to quarantine instead of becoming an
   * output, and reported. The caller then runs the stage again: the entry
   * is gone, so the stage recomputes that item. (Linking trusts an entry by
   * its size, see item-cache.ts; this is where its bytes are read anyway.)
   * A shared inode that is no item-cache entry is adopted as before.
   *
   * `kept`: objects referenced by a record that `gc` keeps until this
   * output's own record is kept instead (the record the workspace state
   * names for this stage, while the caller holds the workspace lock: gc
   * keeps every key a workspace state names, and the state names the new
   * record only once it is written). Such objects need no marking as used
   * (`ingest`): for a 10k-file output that changed by 1%, that spares 10k
   * inode updates.
   */
  async ingestStaging(dir: string, refs?: ItemRefs, kept?: ReadonlySet<string>): Promise<Result<OutputManifest, CorruptEntry[]>> {
    const corrupt: CorruptEntry[] = [];
    const m = await this.ingest(dir, corrupt, refs, kept);
    return corrupt.length > 0 ? err(corrupt) : ok(m);
  }

  private async ingest(dir: string, corrupt: CorruptEntry[] | undefined, refs?: ItemRefs, kept?: ReadonlySet<string>): Promise<OutputManifest> {
    const rels = listFiles(dir, '');
    // Linked entries the memo already knows cost two stats: do those synchronously (no promise per
    // file; a 10k-image re-run is mostly these), everything else through `adopt` concurrently.
    const files = new Array<ManifestFile>(rels.length);
    const rest: number[] = [];
    const marks: UseMarks = { kept: kept ?? new Set(), marked: new Set(), vouched: new Set() };
    for (let i = 0; i < rels.length; i++) {
      const known = this.knownShared(path.join(dir, rels[i]!), rels[i]!, marks);
      if (known !== undefined) files[i] = known;
      else rest.push(i);
    }
    await mapLimit(rest, IO_CONCURRENCY, async (i) => {
      files[i] = await this.adopt(path.join(dir, rels[i]!), rels[i]!, 'move', corrupt);
    });
    if (refs !== undefined && refs.refs.length > 0) files.push(...(await this.adoptRefs(refs, new Set(rels), corrupt, marks)));
    // Objects found present (shared inodes linked when the stage started, possibly long ago; bytes
    // already stored) keep their age otherwise: mark them used now, so that a concurrent gc's grace
    // covers them until the record that names them is written (one chmod per file).
    for (const f of files) if (!marks.marked.has(f.sha256) && !marks.kept.has(f.sha256)) touchCtime(this.objectPath(f.sha256));
    await this.saveInodeMemo();
    const manifest = makeManifest(files);
    this.made.add(manifest);
    if (marks.vouched.size > 0) this.vouched.set(manifest, { objects: marks.vouched, from: kept === undefined ? undefined : this.keptFrom.get(kept) });
    return manifest;
  }

  /**
   * Adopts the item-cache entries a built-in named as output files
   * (`ItemRefs`): each entry's inode becomes the object, exactly as when the
   * stage had linked it into its staging dir (same manifest), minus the link
   * and its later unlink. A known inode (memo) costs two stats. An entry that
   * is not a read-only regular file is copied instead of shared. A path
   * named twice, or also written in the staging dir, or not a plain relative
   * path, is a bug in the stage (thrown).
   */
  private async adoptRefs(refs: ItemRefs, staged: ReadonlySet<string>, corrupt: CorruptEntry[] | undefined, marks: UseMarks): Promise<ManifestFile[]> {
    if (!/^[A-Za-z0-9_.-]+$/.test(refs.namespace)) throw new Error(`invalid item namespace: ${refs.namespace}`);
    const root = path.join(this.root, 'items', refs.namespace);
    const seen = new Set(staged);
    const out: ManifestFile[] = [];
    const slow: { rel: string; file: string; entry: string; st: fs.Stats; memoKey: string; written: string | undefined }[] = [];
    const items = this.itemMemo();
    for (const { path: rel, key, stat: hint, sha256 } of refs.refs) {
      if (!RELATIVE_PATH.test(rel)) throw new Error(`item reference to a bad output path: ${JSON.stringify(rel)}`);
      if (seen.has(rel)) throw new Error(`output path ${rel} named twice (staged file or item reference)`);
      seen.add(rel);
      if (!ITEM_KEY.test(key)) throw new Error(`invalid item cache key: ${key}`);
      // An item key determines its bytes: the object stored for it before is its object (module doc).
      const memoKey = `${refs.namespace}/${key}`;
      const stored = items.get(memoKey);
      if (stored !== undefined) {
        const kept = marks.kept.has(stored.hash);
        if (kept) marks.vouched.add(stored.hash);
        if (kept || this.markPresent(stored.hash, stored.size, marks)) {
          this.sharedStats.known++;
          out.push({ path: rel, sha256: stored.hash, size: stored.size, mode: 0o444 });
          continue;
        }
        // Its object is gone (gc, quarantine): adopt the entry again, or report it missing.
        items.delete(memoKey);
        this.itemsDirty = true;
      }
      if (hint !== undefined) {
        const [dev, ino, size, mtimeMs] = hint;
        const hinted = this.inodeMemo().lookup(`${dev}:${ino}`, size, mtimeMs, 0, ino);
        const obj = hinted === undefined ? undefined : this.markKnownObject(hinted, { dev, ino, size, mtimeMs }, marks);
        if (obj !== undefined && (obj.mode & 0o222) === 0) {
          this.sharedStats.known++;
          out.push(this.rememberItem(memoKey, { path: rel, sha256: hinted!, size, mode: obj.mode & 0o777 })); // the object is the entry's inode: its mode
          continue;
        }
      }
      // = itemEntryFile(root, key), without path.join per item.
      const file = `${root}${path.sep}${key.slice(0, 2)}${path.sep}${key}`;
      const entry = `items/${refs.namespace}/${key.slice(0, 2)}/${key}`;
      const st = fs.lstatSync(file, { throwIfNoEntry: false });
      if (st === undefined || !st.isFile()) {
        corrupt?.push({ reason: 'missing-item-entry', entry, path: rel });
        if (corrupt === undefined) throw new Error(`item-cache entry ${entry} (output ${rel}) is missing`);
        continue;
      }
      if ((st.mode & 0o222) !== 0) {
        // Writable: not provably immutable, so never shared; store a copy of its bytes.
        out.push(await this.adopt(file, rel, 'copy'));
        continue;
      }
      const known = this.inodeMemo().lookup(`${st.dev}:${st.ino}`, st.size, st.mtimeMs, 0, st.ino);
      if (known !== undefined && this.markKnownObject(known, st, marks) !== undefined) {
        this.sharedStats.known++;
        out.push(this.rememberItem(memoKey, { path: rel, sha256: known, size: st.size, mode: st.mode & 0o777 }));
      } else {
        // Written by the stage host in this run, which hashed the bytes as it wrote them: no read-back while it is that file.
        const written = sha256 !== undefined && hint !== undefined && SHA256_HEX.test(sha256) && sameFile(st, hint) ? sha256 : undefined;
        slow.push({ rel, file, entry, st, memoKey, written });
      }
    }
    // The item-key memo remembers these from now on: the inode memo need not (it serves linked entries).
    const adopted = await mapLimit(slow, IO_CONCURRENCY, (s) => this.adoptShared(s.file, s.rel, s.st, corrupt, s.entry, false, s.written));
    const bad = new Set(corrupt?.map((c) => c.entry));
    adopted.forEach((f, i) => {
      if (!bad.has(slow[i]!.entry)) this.rememberItem(slow[i]!.memoKey, f);
    });
    out.push(...adopted);
    return out;
  }

  /** Puts an adopted referenced entry's object in the item-key memo (a read-only one: a copied writable entry is not its key's object for good); returns `f`. */
  private rememberItem(memoKey: string, f: ManifestFile): ManifestFile {
    if ((f.mode & 0o222) === 0) {
      this.itemMemo().set(memoKey, { size: f.size, mtimeMs: 0, ctimeMs: 0, ino: 0, hash: f.sha256 });
      this.itemsDirty = true;
    }
    return f;
  }

  /** A read-only staging file sharing an inode that is already the object the memo names (`adoptShared`'s fast case). */
  private knownShared(src: string, rel: string, marks: UseMarks): ManifestFile | undefined {
    const st = fs.lstatSync(src);
    if (!st.isFile() || st.nlink <= 1 || (st.mode & 0o222) !== 0) return undefined;
    const known = this.inodeMemo().lookup(`${st.dev}:${st.ino}`, st.size, st.mtimeMs, 0, st.ino);
    if (known === undefined || this.markKnownObject(known, st, marks) === undefined) return undefined;
    this.sharedStats.known++;
    return { path: rel, sha256: known, size: st.size, mode: st.mode & 0o777 };
  }

  /** Path of the shared-inode memo (module doc). */
  get inodeMemoPath(): string {
    return path.join(this.root, 'inode-memo');
  }

  private inodeMemo(): HashMemo {
    return (this.inodes ??= HashMemo.load(this.inodeMemoPath));
  }

  private async saveInodeMemo(): Promise<void> {
    if (this.inodesDirty && this.inodes !== undefined) {
      this.inodesDirty = false;
      // Last writer wins across processes: a lost entry only costs one re-hash.
      await writeFileAtomic(this.inodeMemoPath, this.inodes.encode(Date.now()), { tmpDir: this.tmpDir, fsync: false }); // CRC-checked on load
    }
    if (this.itemsDirty && this.itemObjects !== undefined) {
      this.itemsDirty = false;
      // Likewise: a lost entry costs one stat of the entry (and a re-hash if the inode memo lost it too).
      await writeFileAtomic(this.itemMemoPath, this.itemObjects.encode(Date.now()), { tmpDir: this.tmpDir, fsync: false }); // CRC-checked on load
    }
  }

  /** Path of the item-key memo (`<ns>/<item key>` → sha256 and size of the object stored for it; module doc). */
  get itemMemoPath(): string {
    return itemMemoFile(this.root);
  }

  private itemMemo(): HashMemo {
    return (this.itemObjects ??= HashMemo.load(this.itemMemoPath));
  }

  /**
   * Whether `objects/<sha>` is a regular file of `size` bytes; if so it is
   * marked used (a chmod to its mode, once per ingest: see `ingest`).
   */
  private markPresent(sha: string, size: number, marks: UseMarks): boolean {
    const file = this.objectPath(sha);
    const o = fs.lstatSync(file, { throwIfNoEntry: false });
    return o !== undefined && o.isFile() && o.size === size && this.markUsed(sha, o.mode, marks);
  }

  /**
   * Marks object `sha` used once per ingest (a chmod to its own `mode`: a
   * young ctime that gc's grace covers); false when it has vanished. An
   * object not ours to chmod (a shared cache) just keeps its age.
   */
  private markUsed(sha: string, mode: number, marks: UseMarks): boolean {
    if (marks.marked.has(sha)) return true;
    try {
      fs.chmodSync(this.objectPath(sha), mode & 0o7777);
      marks.marked.add(sha);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    }
    return true;
  }

  /** Whether `objects/<sha>` is the inode `st` describes. */
  private isObjectInode(sha: string, st: fs.Stats): boolean {
    return this.objectInode(sha, st) !== undefined;
  }

  /** The stat of `objects/<sha>` when it is the inode `st` describes. */
  private objectInode(sha: string, st: InodeFacts): fs.Stats | undefined {
    const file = this.objectPath(sha);
    const o = fs.statSync(file, { throwIfNoEntry: false });
    return o !== undefined && o.ino === st.ino && o.dev === st.dev && o.size === st.size && o.mtimeMs === st.mtimeMs ? o : undefined;
  }

  /**
   * `objectInode`, and when it is that inode: an object a kept record
   * references is vouched for (present now, and gc keeps it); any other is
   * marked used at once (a chmod to the mode just read: see `ingest`),
   * sparing `ingest`'s closing pass a second stat of it.
   */
  private markKnownObject(sha: string, st: InodeFacts, marks: UseMarks): fs.Stats | undefined {
    const o = this.objectInode(sha, st);
    if (o === undefined) return undefined;
    // A vanished object (markUsed false) is still returned: writeRecord's check fails the record.
    if (marks.kept.has(sha)) marks.vouched.add(sha);
    else this.markUsed(sha, o.mode, marks);
    return o;
  }

  /**
   * Adopts a read-only staging file with other names (a linked item-cache
   * entry): its inode becomes the object, without copying (module doc).
   * `rememberInode`: add the inode to the inode memo (not for referenced
   * entries, which the item-key memo remembers).
   */
  private async adoptShared(src: string, rel: string, st: fs.Stats, corrupt: CorruptEntry[] | undefined, knownEntry?: string, rememberInode = true, written?: string): Promise<ManifestFile> {
    const id = `${st.dev}:${st.ino}`;
    const mode = st.mode & 0o777;
    const known = this.inodeMemo().lookup(id, st.size, st.mtimeMs, 0, st.ino);
    if (known !== undefined && this.isObjectInode(known, st)) {
      this.sharedStats.known++;
      return { path: rel, sha256: known, size: st.size, mode };
    }
    if (written !== undefined) this.sharedStats.told++;
    else this.sharedStats.hashed++;
    const { sha, intact } = written !== undefined ? { sha: written, intact: true } : await hashShared(src, st.size);
    if (!intact && corrupt !== undefined) {
      const entry = knownEntry ?? (await this.itemEntryOf(st));
      if (entry !== undefined) {
        await this.quarantine(path.join(this.root, entry), `item-${entry.split('/').slice(1).join('-')}`);
        corrupt.push({ reason: 'corrupt-item-entry', entry, path: rel });
        return { path: rel, sha256: sha, size: st.size, mode };
      }
    }
    if (!this.isObjectInode(sha, st)) {
      // Flushed already while the stage ran (`flushSoon`), if it is still that file; otherwise now.
      if ((await this.flushedAhead.get(src)) === fileSig(st)) this.flushStats.ahead++;
      else {
        this.flushStats.atAdoption++;
        const fh = await fsp.open(src, 'r');
        try {
          await fh.datasync();
        } finally {
          await fh.close();
        }
      }
      this.flushedAhead.delete(src);
      // A new name for the inode in tmp/, renamed over any object with these bytes (so the next run recognises it).
      const tmp = this.tmpName('.obj');
      try {
        // Synchronous, as install's metadata calls: a threadpool round trip costs more than the link itself.
        fs.linkSync(src, tmp);
      } catch (e) {
        // The entry is on another filesystem than the store (items/ mounted elsewhere) or out of links: store a copy.
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EXDEV' && code !== 'EMLINK' && code !== 'EPERM' && code !== 'ENOTSUP') throw e;
        return this.adopt(src, rel, 'copy');
      }
      await this.install(tmp, sha);
    } else {
      this.hashedHere.add(sha); // the object is the inode just hashed
    }
    if (rememberInode) {
      this.inodeMemo().set(id, { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: 0, ino: st.ino, hash: sha });
      this.inodesDirty = true;
    }
    return { path: rel, sha256: sha, size: st.size, mode };
  }

  /**
   * Stores workspace paths (files or directories; `cmd` stage outs) by
   * copying them into `objects/`: user files are never moved or modified.
   * Manifest paths are workspace-relative. A path that does not exist is a
   * `missing-output` failure (all of them are reported).
   */
  async ingestPaths(workspace: string, paths: readonly string[]): Promise<Result<OutputManifest, MissingOutput[]>> {
    const todo: { abs: string; rel: string }[] = [];
    const missing: MissingOutput[] = [];
    for (const p of paths) {
      const rel = toPosix(path.relative(workspace, path.resolve(workspace, p)));
      const abs = path.resolve(workspace, rel);
      const st = fs.statSync(abs, { throwIfNoEntry: false });
      if (st === undefined) {
        missing.push({ reason: 'missing-output', path: rel });
      } else if (st.isDirectory()) {
        for (const sub of listFiles(abs, '')) todo.push({ abs: path.join(abs, sub), rel: rel === '' ? sub : `${rel}/${sub}` });
      } else if (st.isFile()) {
        todo.push({ abs, rel });
      }
    }
    if (missing.length > 0) return err(missing);
    const files = await mapLimit(todo, IO_CONCURRENCY, (t) => this.adopt(t.abs, t.rel, 'copy'));
    // A concurrent gc may have removed an old object right after we found it present (see
    // reuseObject); the user's file is still here: store it again (a new object is within the grace).
    const lost = files.flatMap((f, i) => (this.hasObject(f.sha256, f.size) ? [] : [i]));
    await mapLimit(lost, IO_CONCURRENCY, async (i) => {
      files[i] = await this.adopt(todo[i]!.abs, todo[i]!.rel, 'copy');
    });
    const manifest = makeManifest(files);
    this.made.add(manifest);
    return ok(manifest);
  }

  /**
   * Puts `manifest` (paths relative to `dest`) at workspace path `dest`,
   * atomically replacing what is there and backing up content that is not
   * ours first. See materialize.ts for link modes and the rules.
   */
  materialize(manifest: OutputManifest, workspace: string, dest: string, opts?: MaterializeOptions): Promise<Result<Materialised, MaterializeFailure>> {
    return materialize(this, manifest, workspace, dest, opts);
  }

  /** Stores bytes as an object; returns its sha256. */
  async putBytes(data: Uint8Array): Promise<string> {
    const sha = crypto.createHash('sha256').update(data).digest('hex');
    if (!this.reuseObject(sha, data.length)) {
      const tmp = this.tmpName('.obj');
      await writeFileAtomic(tmp, data);
      await this.install(tmp, sha);
    }
    return sha;
  }

  /**
   * For a store that finds its bytes already present: whether the object
   * exists with `size` bytes, refreshing its ctime (a chmod to its own mode)
   * so that a concurrent `gc` counts it as young and keeps it for the grace
   * period, until the record that will reference it is written. False when
   * it is absent or vanished (then the caller installs its own copy).
   * (A gc that stat'ed the object just before the refresh can still remove
   * it: `ingestPaths` then stores the user's file again; for a built-in's
   * staging file `writeRecord` refuses the record: the stage fails, nothing
   * torn is recorded.)
   */
  private reuseObject(sha256: string, size: number): boolean {
    const file = this.objectPath(sha256);
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (st === undefined || !st.isFile() || st.size !== size) return false;
    try {
      fs.chmodSync(file, st.mode & 0o7777);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      // Not ours to chmod (a cache shared between users): the object is there; it just keeps its age.
    }
    return true;
  }

  /**
   * Whether the object exists as a regular file (and has `size` bytes, when
   * given). Stat only. A symlink or directory where an object belongs is
   * not one (the store never makes those): it is replaced when the object is
   * stored again.
   */
  hasObject(sha256: string, size?: number): boolean {
    const st = fs.lstatSync(this.objectPath(sha256), { throwIfNoEntry: false });
    return st !== undefined && st.isFile() && (size === undefined || st.size === size);
  }

  /**
   * Writes the run record for `rec.key`, last: every object the manifest (and
   * a big log) references must already be in the store (checked with a stat,
   * except objects the ingest that made the manifest found present and a kept
   * record protects: `vouched`), and the object directories are fsynced first. A log over 64 KiB is stored as an
   * object. Atomic (temp file in tmp/, fsync, rename, fsync dir).
   * A key that is not the fingerprint's hash, or a manifest whose hash is
   * wrong, is a bug and throws (such a record could never be read back).
   */
  async writeRecord(rec: NewRunRecord): Promise<Result<RunRecord, RecordRefused>> {
    if (computeKey(rec.fingerprint) !== rec.key) throw new Error(`writeRecord: key ${rec.key} is not the hash of the record's fingerprint`);
    // A manifest this store made (ingest) is consistent by construction; any other is checked.
    if (!this.made.has(rec.outputs) && manifestHash(rec.outputs.files) !== rec.outputs.hash) throw new Error('writeRecord: outputs.hash does not match outputs.files');
    // Another process may have quarantined a vouched object since (verify), or replaced the kept record: then each is checked.
    const v = this.vouched.get(rec.outputs);
    const vouched = v !== undefined && (v.from === undefined || this.stillKept(v.from)) ? v.objects : undefined;
    for (const f of rec.outputs.files) {
      if (vouched?.has(f.sha256) === true) continue;
      if (!this.hasObject(f.sha256, f.size)) return err({ reason: 'object-missing', sha256: f.sha256, path: f.path });
    }
    const logBytes = Buffer.byteLength(rec.log);
    const log: RunLog = logBytes > INLINE_LOG_MAX ? { object: await this.putBytes(Buffer.from(rec.log)), bytes: logBytes } : rec.log;
    await this.syncObjects();
    const body: RunRecord = { format: 'pipeline.run-record/v1', ...rec, log };
    let full: RunRecord;
    let text: string;
    if ('checksum' in body) {
      full = { ...body, checksum: recordChecksum(body) };
      text = JSON.stringify(full);
    } else {
      // The body's JSON once (a 10k-file manifest is megabytes): hashed, then closed with the checksum field,
      // which is exactly JSON.stringify of the full record (the checksum is its last key).
      const bodyText = JSON.stringify(body);
      const checksum = crypto.createHash('sha256').update(bodyText).digest('hex');
      full = { ...body, checksum };
      text = `${bodyText.slice(0, -1)},"checksum":${JSON.stringify(checksum)}}`;
    }
    await writeFileAtomic(this.recordPath(rec.key), text, { tmpDir: this.tmpDir, syncDir: true });
    return ok(full);
  }

  /**
   * The record for `key`, or `undefined` when there is none, it does not
   * parse, it is inconsistent (its fingerprint does not hash to `key`, or its
   * manifest hash does not match its files: e.g. edited by hand), or any
   * object it references is missing or has the wrong size (e.g. quarantined
   * by `verify`): such a stage must be recomputed.
   * `checkObjects: false` skips the per-object stat (e.g. for `explain`).
   */
  async readRecord(key: string, opts: { checkObjects?: boolean } = {}): Promise<RunRecord | undefined> {
    const rec = await this.parsedRecord(key);
    if (rec === undefined) return undefined;
    if (opts.checkObjects !== false) {
      // Mark it used before checking its objects: a concurrent gc keeps a record used within the grace (see gc).
      touchCtime(this.recordPath(key));
      for (const f of rec.outputs.files) if (!this.hasObject(f.sha256, f.size)) return undefined;
      if (typeof rec.log !== 'string' && !this.hasObject(rec.log.object, rec.log.bytes)) return undefined;
    }
    return rec;
  }

  /**
   * The record file for `key`, parsed and consistent, or undefined. A record
   * already checked by this process is served again while its file is the
   * same (inode, size, mtime): a run reads the last record of a stage twice
   * (the reason it reruns, then the manifest its outputs update), and a
   * 10k-file output's record is megabytes of JSON to parse and checksum.
   */
  private async parsedRecord(key: string): Promise<RunRecord | undefined> {
    const file = this.recordPath(key);
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (st === undefined) return undefined;
    const sig = fileSig(st);
    const seen = this.records.get(key);
    if (seen !== undefined && seen.sig === sig) return seen.rec;
    // One read per file version, however many ask at once (a prefetch and the plan, say).
    const reading = `${key}|${sig}`;
    let p = this.recordReads.get(reading);
    if (p === undefined) {
      p = (async () => {
        let rec: RunRecord;
        try {
          rec = JSON.parse(await fsp.readFile(file, 'utf8')) as RunRecord;
        } catch {
          return undefined;
        }
        if (!recordConsistent(rec, key)) return undefined;
        if (this.records.size >= RECORD_MEMO_MAX) this.records.delete(this.records.keys().next().value!);
        this.records.set(key, { sig, rec, mtimeMs: st.mtimeMs });
        return rec;
      })().finally(() => this.recordReads.delete(reading));
      this.recordReads.set(reading, p);
    }
    return p;
  }

  /**
   * Reads and checks the records for `keys` in the background (`readRecord`
   * then answers from memory), e.g. the last records of the stages that
   * start when a running stage ends, while the engine waits for it.
   */
  prefetchRecords(keys: Iterable<string>): void {
    for (const k of keys) {
      void this.parsedRecord(k)
        .then((rec) => {
          // The object set `keptObjects` answers with, built now too.
          const seen = this.records.get(k);
          if (rec !== undefined && seen?.rec === rec) seen.objects ??= new Set(rec.outputs.files.map((f) => f.sha256));
        })
        .catch(() => undefined);
    }
  }

  /**
   * The objects the record for `key` references, as a set `ingestStaging`
   * may take as `kept` (the caller vouches that gc keeps the record: the
   * workspace state names it and the caller holds the workspace lock).
   * Undefined when there is no usable record, or when anything was moved to
   * `quarantine/` since the record was written (`verify` or a restore found
   * an object corrupt): then objects are checked one by one as usual. Every
   * other way an object leaves the store is gc's, which keeps this record's.
   */
  async keptObjects(key: string): Promise<ReadonlySet<string> | undefined> {
    const rec = await this.parsedRecord(key);
    const seen = this.records.get(key);
    if (rec === undefined || seen === undefined || seen.rec !== rec) return undefined;
    if (this.quarantinedSince(seen.mtimeMs)) return undefined;
    const objects = (seen.objects ??= new Set(rec.outputs.files.map((f) => f.sha256)));
    this.keptFrom.set(objects, { file: this.recordPath(key), sig: seen.sig, mtimeMs: seen.mtimeMs });
    return objects;
  }

  /**
   * Whether the record a kept set came from still protects its objects: the
   * same file (not replaced by a run of the same key elsewhere, whose record
   * may name other objects), and nothing quarantined since it was written.
   */
  private stillKept(from: KeptFrom): boolean {
    const st = fs.statSync(from.file, { throwIfNoEntry: false });
    return st !== undefined && fileSig(st) === from.sig && !this.quarantinedSince(from.mtimeMs);
  }

  /**
   * Whether anything was moved to `quarantine/` at or after `mtimeMs`: the
   * folder's mtime, or the stamp `quarantine` leaves beside it (which still
   * tells when someone has deleted the folder to free space).
   */
  private quarantinedSince(mtimeMs: number): boolean {
    for (const f of [this.quarantineDir, this.quarantineStamp]) {
      const q = fs.statSync(f, { throwIfNoEntry: false });
      if (q !== undefined && q.mtimeMs >= mtimeMs) return true;
    }
    return false;
  }

  /** Rewritten at every `quarantine` (`quarantinedSince`). */
  private get quarantineStamp(): string {
    return path.join(this.root, 'quarantine.stamp');
  }

  /** A record's log text ('' if its object is gone). */
  async readLog(rec: RunRecord): Promise<string> {
    if (typeof rec.log === 'string') return rec.log;
    return fsp.readFile(this.objectPath(rec.log.object), 'utf8').catch(() => '');
  }

  /** Keys of every record in the store. */
  async listRecordKeys(): Promise<string[]> {
    const out: string[] = [];
    for (const shard of await readdirOrEmpty(this.recordsDir)) {
      for (const n of await readdirOrEmpty(path.join(this.recordsDir, shard))) if (n.endsWith('.json')) out.push(n.slice(0, -5));
    }
    return out.sort();
  }

  /**
   * Re-hashes every object. A corrupt object is moved to `quarantine/` so it is
   * never restored (records that need it become unusable and their stages
   * recompute). Also lists records that reference missing objects.
   */
  async verify(): Promise<VerifyReport> {
    let objects = 0;
    const corrupt: string[] = [];
    for (const shard of await readdirOrEmpty(this.objectsDir)) {
      const dir = path.join(this.objectsDir, shard);
      for (const name of await readdirOrEmpty(dir)) {
        if (!/^[0-9a-f]{64}$/.test(name)) continue;
        objects++;
        const file = path.join(dir, name);
        const actual = await hashFile(file).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : undefined));
        if (actual === null) {
          objects--; // removed meanwhile (a concurrent gc): gone, not corrupt
          continue;
        }
        if (actual !== name) {
          corrupt.push(name);
          await this.quarantine(file, name);
        }
      }
    }
    const corruptItems = await this.verifyItems();
    const missing: { key: string; stageId: string; sha256: string; path: string }[] = [];
    const badRecords: string[] = [];
    for (const key of await this.listRecordKeys()) {
      let rec: RunRecord;
      try {
        rec = JSON.parse(await fsp.readFile(this.recordPath(key), 'utf8')) as RunRecord;
        if (!recordConsistent(rec, key)) throw new Error('inconsistent');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed meanwhile (a concurrent gc)
        badRecords.push(key);
        await this.quarantine(this.recordPath(key), `${key}.json`);
        continue;
      }
      const lost = rec.outputs.files.filter((f) => !this.hasObject(f.sha256, f.size));
      // A concurrent gc removes a record before its objects: missing objects of a record that is gone now are no problem.
      if (lost.length > 0 && !fs.existsSync(this.recordPath(key))) continue;
      for (const f of lost) missing.push({ key, stageId: rec.stageId, sha256: f.sha256, path: f.path });
    }
    return { objects, corrupt, missing, badRecords, ...(corruptItems.length > 0 ? { corruptItems } : {}) };
  }

  /**
   * Checks every item-cache entry's sha256 trailer and quarantines bad ones:
   * a linked entry is not re-read by the stage that links it. (Entries that
   * share an inode with an object are read again here on purpose: an object
   * can hash right and still hold an entry torn before it was adopted.)
   */
  private async verifyItems(): Promise<string[]> {
    const bad: string[] = [];
    for await (const { ns, shard, name, file } of itemFiles(this.root)) {
      if (!ITEM_KEY.test(name)) continue; // temp files of live writers
      const st = fs.statSync(file, { throwIfNoEntry: false });
      if (st === undefined || !st.isFile()) continue;
      const raw = await fsp.readFile(file).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : undefined));
      if (raw === null) continue; // removed meanwhile (a concurrent gc)
      if (raw !== undefined && itemEntryIntact(raw)) continue;
      bad.push(`items/${ns}/${shard}/${name}`);
      await this.quarantine(file, `item-${ns}-${name}`);
    }
    return bad;
  }

  /**
   * Deletes records whose key is not in `keepKeys`, then objects referenced by
   * no kept record and no backup (see workspace-state.ts), except objects
   * younger than `graceMs`. While any workspace that uses this cache is
   * locked by a live run, records written or read (`readRecord`) within
   * `graceMs` are kept too, with their objects: that run may have written or
   * be restoring them and not yet saved the workspace state that names their
   * keys. Holds `<root>/gc.lock` meanwhile (a second gc
   * waits up to 10 s, then gives up with a thrown error: a bug-level clash).
   * Also removes stale tmp entries.
   */
  async gc(keepKeys: ReadonlySet<string>, opts: GcOptions = {}): Promise<GcReport> {
    const lock = await acquireLock(path.join(this.root, 'gc.lock'), { waitMs: 10_000, purpose: 'cache gc' });
    if (!lock.ok) throw new Error(`cache gc: ${lock.error.file} held by pid ${lock.error.pid}`);
    try {
      await this.cleanTmp();
      // A run in progress may be about to reference what it wrote (its record or state not saved yet): kept
      // whatever the grace, so `--grace 0` is safe beside a run.
      const live = await liveRunGraceMs(this.root);
      const graceMs = Math.max(opts.graceMs ?? 3600_000, live.graceMs);
      const referenced = new Set<string>();
      let removedRecords = 0;
      let freedBytes = 0;
      // A run may have written or be restoring a record whose key is not in its workspace state yet
      // (saved after the outputs are materialised), or saved that state after `keepKeys` was taken:
      // a record written or read (`readRecord` refreshes its ctime) within the grace stays while a
      // run is live or a workspace state, read again now, names it. Asked per young record.
      const now = Date.now();
      for (const key of await this.listRecordKeys()) {
        const file = this.recordPath(key);
        const rst = fs.statSync(file, { throwIfNoEntry: false });
        if (rst === undefined) continue;
        const young = now - Math.max(rst.mtimeMs, rst.ctimeMs) < graceMs;
        if (!keepKeys.has(key) && !(young && (await stillWanted(this.root, key)))) {
          freedBytes += rst.size;
          await fsp.rm(file, { force: true });
          removedRecords++;
          continue;
        }
        try {
          const rec = JSON.parse(await fsp.readFile(file, 'utf8')) as RunRecord;
          for (const f of rec.outputs.files) referenced.add(f.sha256);
          if (typeof rec.log !== 'string') referenced.add(rec.log.object);
          for (const sha of Object.values(rec.inputListings ?? {})) referenced.add(sha);
        } catch {
          /* unreadable kept record: references nothing */
        }
      }
      for (const sha of await backupObjects(this.root)) referenced.add(sha);
      let removedObjects = 0;
      for (const shard of await readdirOrEmpty(this.objectsDir)) {
        const dir = path.join(this.objectsDir, shard);
        for (const name of await readdirOrEmpty(dir)) {
          if (referenced.has(name)) continue;
          const file = path.join(dir, name);
          const st = fs.statSync(file, { throwIfNoEntry: false });
          if (st === undefined || now - Math.max(st.mtimeMs, st.ctimeMs) < graceMs) continue;
          await fsp.rm(file, { force: true });
          removedObjects++;
          freedBytes += st.size;
        }
      }
      // Stale shared-inode memo entries are harmless (checked on use) but would pile up: start afresh.
      if (removedObjects > 0) {
        await fsp.rm(this.inodeMemoPath, { force: true });
        await fsp.rm(this.itemMemoPath, { force: true });
      }
      return { removedObjects, removedRecords, freedBytes , liveRuns: live.runs };
    } finally {
      await lock.value.release();
    }
  }

  /** The item-cache entry (`items/<ns>/<xx>/<key>`, relative to the root) that is the inode `st` describes, if any. Scans every entry: only for a corrupt one. */
  private async itemEntryOf(st: fs.Stats): Promise<string | undefined> {
    for await (const { ns, shard, name, file } of itemFiles(this.root)) {
      const e = fs.lstatSync(file, { throwIfNoEntry: false });
      if (e !== undefined && e.ino === st.ino && e.dev === st.dev) return `items/${ns}/${shard}/${name}`;
    }
    return undefined;
  }

  /** The per-item cache `items/<namespace>` (namespace: a stage name). */
  items(namespace: string): ItemCache {
    if (!/^[A-Za-z0-9_.-]+$/.test(namespace)) throw new Error(`invalid item namespace: ${namespace}`);
    return directoryItemCache(path.join(this.root, 'items', namespace));
  }

  /** Moves a bad file to quarantine/ (never deleted automatically), and rewrites the quarantine stamp. */
  async quarantine(file: string, name: string): Promise<void> {
    await fsp.mkdir(this.quarantineDir, { recursive: true });
    // The stamp first: a reader that sees the file gone from its place also sees a fresh stamp.
    await fsp.writeFile(this.quarantineStamp, `${new Date().toISOString()}\n`);
    await fsp.rename(file, path.join(this.quarantineDir, `${name}.${Date.now()}`)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }

  /** fsyncs object shard dirs that received renames since the last call. */
  async syncObjects(): Promise<void> {
    const dirs = [...this.unsyncedShards];
    this.unsyncedShards.clear();
    await Promise.all(dirs.map((d) => fsyncDir(d)));
  }

  /**
   * Puts one file into objects/. `move`: rename it (a staging file); `copy`:
   * copy it to tmp/ first (a user file). The object is hashed from the bytes
   * actually stored, fsynced and made read-only before it is renamed in.
   */
  private async adopt(src: string, rel: string, how: 'move' | 'copy', corrupt?: CorruptEntry[]): Promise<ManifestFile> {
    const lst = fs.lstatSync(src);
    const symlink = lst.isSymbolicLink();
    const st = symlink ? fs.statSync(src) : lst;
    const mode = st.mode & 0o777;
    // A read-only staging file with other names is a linked cache entry: share its inode.
    if (how === 'move' && st.nlink > 1 && !symlink && (st.mode & 0o222) === 0) return this.adoptShared(src, rel, st, corrupt);
    // Never move a symlink (the object would be a link) or a writable file with other names (chmod would reach them).
    const copy = how === 'copy' || st.nlink > 1 || symlink;
    if (copy && st.size <= SMALL_FILE) {
      // Small files: read once, hash the bytes we will store, write only if the object is new.
      const data = fs.readFileSync(src);
      const sha = crypto.createHash('sha256').update(data).digest('hex');
      if (!this.reuseObject(sha, data.length)) {
        const tmp = this.tmpName('.obj');
        await removeOnError(tmp, async () => {
          await writeSynced(tmp, data, 'wx');
          await this.install(tmp, sha);
        });
      }
      return { path: rel, sha256: sha, size: data.length, mode };
    }
    let file = src;
    if (copy) {
      const tmp = (file = this.tmpName('.obj'));
      await removeOnError(tmp, () => fsp.copyFile(src, tmp));
    }
    const sha = await hashFile(file);
    const size = fs.statSync(file).size;
    if (this.reuseObject(sha, size)) {
      if (file !== src || how === 'move') await fsp.rm(file, { force: true });
    } else {
      const fh = await fsp.open(file, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.install(file, sha);
    }
    return { path: rel, sha256: sha, size, mode };
  }

  /** chmod 0444 and rename `file` (in tmp/ or a staging dir) to its object path. */
  private async install(file: string, sha: string): Promise<void> {
    const shardDir = path.join(this.objectsDir, sha.slice(0, 2));
    // Metadata calls only (the bytes are written and synced already): synchronous, each a few µs of kernel
    // time, where a threadpool round trip costs tens (a run storing 100 new files makes 300 of them).
    if (!this.shardDirs.has(shardDir)) {
      fs.mkdirSync(shardDir, { recursive: true });
      this.shardDirs.add(shardDir);
    }
    fs.chmodSync(file, 0o444);
    const dest = this.objectPath(sha);
    try {
      fs.renameSync(file, dest);
    } catch (e) {
      // Something that is no object is in the way (a directory): quarantine it, then store the object.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EISDIR' && code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR') throw e;
      await this.quarantine(dest, sha);
      await fsp.rename(file, dest);
    }
    this.unsyncedShards.add(shardDir);
    this.hashedHere.add(sha);
  }

  /**
   * Starts flushing `files` to disk (fdatasync) in the background, a few at a
   * time: item-cache entries a running stage reports it has written
   * (`BuiltinRunSpec.onWrote`). When the entry is later adopted as an object
   * (`ingestStaging`), a file still of the inode and signature flushed here
   * is not flushed again, so the flushes overlap the stage instead of
   * following it. Best effort: a file that cannot be flushed now is simply
   * flushed at adoption, as without this.
   */
  flushSoon(files: readonly string[]): void {
    for (const f of files) {
      if (this.flushedAhead.has(f)) continue;
      this.flushedAhead.set(f, new Promise((done) => this.flushQueue.push({ file: f, done })));
    }
    this.pumpFlushes();
  }

  private pumpFlushes(): void {
    while (this.flushing < FLUSH_CONCURRENCY && this.flushQueue.length > 0) {
      const { file, done } = this.flushQueue.shift()!;
      this.flushing++;
      void flushFile(file).then((sig) => {
        this.flushing--;
        done(sig);
        this.pumpFlushes();
      });
    }
  }

  /**
   * Whether this process installed the object `sha` from bytes it hashed
   * itself (or found it to be the very inode it just hashed). `materialize`
   * need not hash such an object again to restore it: the re-hash on restore
   * is for corruption at rest.
   */
  hashedInThisProcess(sha: string): boolean {
    return this.hashedHere.has(sha);
  }

  /**
   * Forgets which objects this process hashed (`hashedInThisProcess`): called
   * when a run starts, so a store kept across runs (watch mode) hashes an
   * object stored runs ago again before restoring it (it was at rest since).
   */
  forgetHashedObjects(): void {
    this.hashedHere.clear();
    // Entries flushed ahead but never adopted (their stage failed): nothing to keep across runs.
    this.flushedAhead.clear(); // an entry not found here is flushed at adoption, as without flushSoon
  }

  /** Removes tmp/ entries whose owner is dead, or that are older than a day. */
  private async cleanTmp(): Promise<void> {
    const now = Date.now();
    const host = currentProcess().hostname;
    for (const name of await readdirOrEmpty(this.tmpDir)) {
      const m = /^(.*)~(\d+)~(\d*)~[0-9a-f]+/.exec(name);
      const file = path.join(this.tmpDir, name);
      let remove: boolean;
      if (m && m[1] === host) {
        // Same host: liveness decides, whatever the age (a stage may run for days).
        const start = m[3] === '' ? undefined : m[3];
        remove = !isAlive(start === undefined ? { pid: Number(m[2]), hostname: host } : { pid: Number(m[2]), hostname: host, start });
      } else {
        // Another host (shared cache) or not our naming: only when clearly abandoned.
        const st = fs.lstatSync(file, { throwIfNoEntry: false });
        remove = st !== undefined && now - st.mtimeMs > TMP_MAX_AGE_MS;
      }
      if (remove) await rmForce(file);
    }
  }
}

/** `RunRecord.checksum` of a record (any `checksum` field it holds is left out). */
function recordChecksum(rec: RunRecord): string {
  const { checksum: _, ...body } = rec;
  return crypto.createHash('sha256').update(JSON.stringify(body)).digest('hex');
}

/**
 * A record is usable only if it is what its key, manifest hash and checksum
 * claim. A record with a checksum that matches is byte for byte what
 * `writeRecord` wrote, which refused an inconsistent manifest hash: its
 * manifest is not hashed again (for a 10k-file output, most of the check).
 */
function recordConsistent(rec: RunRecord, key: string): boolean {
  try {
    const sealed = rec.checksum !== undefined;
    return (
      rec.format === 'pipeline.run-record/v1' &&
      (!sealed || rec.checksum === recordChecksum(rec)) &&
      rec.key === key &&
      computeKey(rec.fingerprint) === key &&
      Array.isArray(rec.outputs?.files) &&
      (sealed || manifestHash(rec.outputs.files) === rec.outputs.hash)
    );
  } catch {
    return false;
  }
}

/**
 * fdatasyncs `file`; the stat signature (`fileSig`) of the inode flushed, or
 * undefined when it could not be. The signature is taken before the flush: a
 * write after the stat is flushed too, or changes the signature; taken after,
 * a write between the flush and the stat would be vouched for unflushed.
 */
async function flushFile(file: string): Promise<string | undefined> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(file, 'r');
    const sig = fileSig(await fh.stat());
    await fh.datasync();
    return sig;
  } catch {
    return undefined;
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** Lowercase hex sha256. */
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Whether `st` is the file a stage host described as `[dev, ino, size, mtimeMs]` (`ItemRefs` hints). */
function sameFile(st: fs.Stats, [dev, ino, size, mtimeMs]: readonly [number, number, number, number]): boolean {
  return st.dev === dev && st.ino === ino && st.size === size && st.mtimeMs === mtimeMs;
}

/**
 * sha256 of a linked item-cache entry's bytes, and whether they end in the
 * sha256 of what precedes them (item-cache.ts layout), from one read.
 */
async function hashShared(file: string, size: number): Promise<{ sha: string; intact: boolean }> {
  if (size <= SMALL_FILE) {
    const raw = await fsp.readFile(file);
    return { sha: crypto.createHash('sha256').update(raw).digest('hex'), intact: itemEntryIntact(raw) };
  }
  const all = crypto.createHash('sha256');
  const body = crypto.createHash('sha256');
  const bodyBytes = size - ITEM_DIGEST_BYTES;
  let seen = 0;
  let tail = Buffer.alloc(0);
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
    const c = chunk as Buffer;
    all.update(c);
    const inBody = Math.max(0, Math.min(c.length, bodyBytes - seen));
    if (inBody > 0) body.update(c.subarray(0, inBody));
    if (inBody < c.length) tail = Buffer.concat([tail, c.subarray(inBody)]);
    seen += c.length;
  }
  return { sha: all.digest('hex'), intact: seen === size && tail.length === ITEM_DIGEST_BYTES && body.digest().equals(tail) };
}

/** Runs `fn`; if it fails (e.g. a full disk), removes the temp file `tmp` it was writing before rethrowing. */
async function removeOnError<T>(tmp: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

/** How one `ingest` treats objects it finds present (`markKnownObject`). */
interface UseMarks {
  /** Referenced by a kept record: never marked, vouched for instead. */
  readonly kept: ReadonlySet<string>;
  /** Marked used by this ingest already. */
  readonly marked: Set<string>;
  /** Kept objects found present: `writeRecord` trusts them (`CacheStore.vouched`). */
  readonly vouched: Set<string>;
}

/** A file version's signature (`parsedRecord`, `KeptFrom`): same inode, size and mtime. */
function fileSig(st: fs.Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
}

/** The record file a `keptObjects` set came from: its path, stat signature (as `parsedRecord` takes it) and mtime. */
interface KeptFrom {
  readonly file: string;
  readonly sig: string;
  readonly mtimeMs: number;
}

/** What identifies a file's inode and its version: enough to tell that an object is that inode. */
type InodeFacts = Pick<fs.Stats, 'dev' | 'ino' | 'size' | 'mtimeMs'>;

/** A `/`-separated relative path: no leading `/`, no empty, `.` or `..` segment, no backslash. */
const RELATIVE_PATH = /^(?!\.\.?(?:\/|$))[^/\\]+(?:\/(?!\.\.?(?:\/|$))[^/\\]+)*$/;

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch {
    return [];
  }
}

async function rmForce(p: string): Promise<void> {
  // Staging dirs may hold read-only files/dirs a stage created; rm handles files, fix dirs first.
  try {
    await fsp.rm(p, { recursive: true, force: true });
  } catch {
    /* best effort: retried on the next open */
  }
}

/** Refreshes a file's ctime (chmod to its own mode), leaving content and mtime alone; best effort. */
function touchCtime(file: string): void {
  try {
    const st = fs.lstatSync(file);
    fs.chmodSync(file, st.mode & 0o7777);
  } catch {
    /* gone, or not ours to chmod (a read-only or shared cache): it just keeps its age */
  }
}

/** The workspace states in the cache at `root` (unreadable ones left out), as stored. */
async function workspaceStates(root: string): Promise<{ workspace?: unknown; stages?: Record<string, { key?: unknown }> }[]> {
  const wsRoot = path.join(root, 'workspaces');
  const out = [];
  for (const ws of await readdirOrEmpty(wsRoot)) {
    try {
      out.push(JSON.parse(await fsp.readFile(path.join(wsRoot, ws, 'state.json'), 'utf8')) as { workspace?: unknown; stages?: Record<string, { key?: unknown }> });
    } catch {
      /* no or unreadable state */
    }
  }
  return out;
}

/** The holders of the run locks of workspaces with state in this cache that a live process holds. */
async function liveRunLocks(root: string): Promise<Partial<LockInfo>[]> {
  const out: Partial<LockInfo>[] = [];
  for (const st of await workspaceStates(root)) {
    if (typeof st.workspace !== 'string') continue;
    const holder = await liveLockHolder(workspaceLockPath(st.workspace));
    if (holder !== undefined) out.push(holder);
  }
  return out;
}

/**
 * Whether gc must keep a young record that `keepKeys` does not hold: a live
 * process holds the run lock of a workspace that has state in this cache, or
 * a workspace state read now names `key`. Locks are checked first: a run
 * saves its state before it releases its lock, so one of the two sees it.
 * (A workspace's very first run is not seen until it saved its state once.)
 */
async function stillWanted(root: string, key: string): Promise<boolean> {
  if ((await liveRunLocks(root)).length > 0) return true;
  return (await workspaceStates(root)).some((st) => Object.values(st.stages ?? {}).some((s) => s.key === key));
}

/**
 * The grace a gc must give so that nothing a live run wrote goes: from the
 * start of the earliest run holding a workspace lock in this cache (plus a
 * second of slack) until now; 0 when none runs. A live lock whose start is
 * unreadable gets an hour (gc's default grace). Reads workspace states and
 * lock files only.
 */
export async function liveRunGraceMs(root: string): Promise<{ readonly graceMs: number; readonly runs: number }> {
  const live = await liveRunLocks(root);
  const now = Date.now();
  let graceMs = 0;
  for (const holder of live) {
    const since = Date.parse(holder.since ?? '');
    graceMs = Math.max(graceMs, Number.isFinite(since) ? now - since + 1000 : 3600_000);
  }
  return { graceMs, runs: live.length };
}

/** Every object referenced by a backup record of any workspace (backups are user data: kept by gc). */
async function backupObjects(root: string): Promise<Set<string>> {
  const out = new Set<string>();
  const wsRoot = path.join(root, 'workspaces');
  for (const ws of await readdirOrEmpty(wsRoot)) {
    const bdir = path.join(wsRoot, ws, 'backups');
    for (const n of await readdirOrEmpty(bdir)) {
      try {
        const b = JSON.parse(await fsp.readFile(path.join(bdir, n), 'utf8')) as { manifest?: OutputManifest };
        for (const f of b.manifest?.files ?? []) out.add(f.sha256);
      } catch {
        /* skip unreadable */
      }
    }
  }
  return out;
}
