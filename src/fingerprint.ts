/**
 * Stage fingerprints and keys (issue #2 §4). A fingerprint is a fixed-order,
 * structured record of everything that can change a stage's outputs; its key
 * is the sha256 of its canonical JSON (object keys sorted at every depth, so
 * the key never depends on insertion order).
 *
 * Early cutoff: `upstream` holds each upstream stage's OUTPUT hash (the hash
 * of its output manifest), not its key, so an upstream that re-ran but
 * produced identical bytes does not invalidate downstream stages.
 *
 * This module does not hash files (see `hash/file-hasher.ts`), does not read
 * the cache, and does not decide freshness; the runner builds a fingerprint
 * from a `StageNode`, computes its key and looks it up in the cache store.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JsonValue } from './pipeline.js';

/** A stage key: lowercase hex sha256 of a fingerprint's canonical JSON. */
export type FingerprintHash = string & { readonly __brand: 'FingerprintHash' };

/**
 * Bumped whenever the fingerprint layout, the hashing of dependencies or the
 * output format of the cache changes, so old keys can never match new runs.
 */
export const FINGERPRINT_FORMAT = 1;

/** What implements a stage. */
export type StageImpl =
  /** A built-in (`uses:`): its name and declared version (bumped when `run` can produce different outputs). */
  | { readonly kind: 'builtin'; readonly name: string; readonly version: string }
  /** A command (`cmd:`): the exact argv after interpolation and its workspace-relative cwd. */
  | { readonly kind: 'cmd'; readonly argv: readonly string[]; readonly cwd: string };

/** Everything that can change a stage's outputs. Field order is fixed (see STYLE.md "Fingerprint"). */
export interface StageFingerprint {
  /** Engine version: package version + fingerprint format (see `engineVersion()`). */
  readonly engine: string;
  readonly stage: StageImpl;
  /**
   * Param values the stage reads, keyed by dotted path. Builtins add
   * `with` = the resolved `with:` block after schema defaults.
   */
  readonly params: Readonly<Record<string, JsonValue>>;
  /** Dependency path (as written in the pipeline) → content hash, or `'missing'`. */
  readonly inputs: Readonly<Record<string, string>>;
  /** Upstream stage id → that stage's output manifest hash (early cutoff). */
  readonly upstream: Readonly<Record<string, string>>;
  /** Declared environment variables and their values. */
  readonly env: Readonly<Record<string, string>>;
  /**
   * Platform facts that can change outputs and are cheap to know: `platform`
   * and `arch` for every stage; built-in stages add what they declare in
   * `BuiltinStage.runtimeFacts` (image stages `sharp` and `libvips` versions,
   * model stages `tfjs` and the `tfjsBackend` family their params resolve to;
   * see stages/lib/runtime-facts.ts). Command stages get platform/arch only.
   */
  readonly runtime: Readonly<{ platform: string; arch: string; [k: string]: string }>;
}

/** One reason two fingerprints differ, as shown by `pipeline explain`. */
export type FingerprintChange =
  /** The engine version or fingerprint format changed: every stage is stale. */
  | { readonly kind: 'engine'; readonly old: string; readonly new: string }
  /** The implementation changed: builtin name/version, or a command's argv/cwd. */
  | { readonly kind: 'code'; readonly old: StageImpl; readonly new: StageImpl }
  /** A param value changed; `path` is dotted (`train.lr`, `with.size`); `undefined` means absent on that side. */
  | { readonly kind: 'param'; readonly path: string; readonly old: JsonValue | undefined; readonly new: JsonValue | undefined }
  /** A dependency's content changed, or the dependency was added to/removed from the stage or the disk. */
  | { readonly kind: 'input'; readonly path: string; readonly change: InputChange }
  /** An upstream stage's outputs changed, or the upstream edge was added/removed. */
  | { readonly kind: 'upstream'; readonly stage: string; readonly change: InputChange }
  /** A declared environment variable changed. */
  | { readonly kind: 'env'; readonly name: string; readonly old: string | undefined; readonly new: string | undefined }
  /** A runtime fact changed (e.g. `tfjsBackend` wasm → tensorflow). */
  | { readonly kind: 'runtime'; readonly field: string; readonly old: string | undefined; readonly new: string | undefined };

/**
 * How an input/upstream entry changed.
 * - `modified`: same path, different content hash.
 * - `added`: newly declared, or it was `missing` and now exists.
 * - `removed`: no longer declared, or it existed and is now `missing`.
 */
export type InputChange = 'modified' | 'added' | 'removed';

let cachedPkgVersion: string | undefined;

/** The package version from the nearest package.json named `pipeline-engine` above this module. */
function packageVersion(): string {
  if (cachedPkgVersion !== undefined) return cachedPkgVersion;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const f = path.join(dir, 'package.json');
    if (fs.existsSync(f)) {
      const pkg = JSON.parse(fs.readFileSync(f, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'pipeline-engine' && typeof pkg.version === 'string') return (cachedPkgVersion = pkg.version);
    }
    const parent = path.dirname(dir);
    if (parent === dir) return (cachedPkgVersion = '0.0.0');
    dir = parent;
  }
}

/** `"<package version>+fp<FINGERPRINT_FORMAT>"`, the `engine` field of every fingerprint. */
export function engineVersion(): string {
  return `${packageVersion()}+fp${FINGERPRINT_FORMAT}`;
}

/** The runtime facts every stage shares; callers add backend-specific ones. */
export function baseRuntime(): { platform: string; arch: string } {
  return { platform: process.platform, arch: process.arch };
}

/**
 * Canonical JSON: object keys sorted (by UTF-16 code units) at every depth,
 * no whitespace, `undefined` object members dropped. Arrays keep their order.
 * Non-finite numbers are a bug (they are not JSON) and throw.
 */
export function canonicalJson(v: unknown): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'number':
      if (!Number.isFinite(v)) throw new Error(`canonicalJson: non-finite number ${v}`);
      return JSON.stringify(v);
    case 'string':
    case 'boolean':
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`;
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o)
        .filter((k) => o[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
    }
    default:
      throw new Error(`canonicalJson: unsupported ${typeof v}`);
  }
}

/** The stage key: sha256 of the fingerprint's canonical JSON. */
export function computeKey(fp: StageFingerprint): FingerprintHash {
  return crypto.createHash('sha256').update(canonicalJson(fp)).digest('hex') as FingerprintHash;
}

/**
 * Every difference between a stage's previous fingerprint `a` and its current
 * one `b`, in field order (engine, code, params, inputs, upstream, env,
 * runtime). Empty iff the keys are equal.
 */
export function diffFingerprints(a: StageFingerprint, b: StageFingerprint): FingerprintChange[] {
  const out: FingerprintChange[] = [];
  if (a.engine !== b.engine) out.push({ kind: 'engine', old: a.engine, new: b.engine });
  if (canonicalJson(a.stage) !== canonicalJson(b.stage)) out.push({ kind: 'code', old: a.stage, new: b.stage });
  for (const k of unionKeys(a.params, b.params)) diffJson(k, a.params[k], b.params[k], out);
  for (const k of unionKeys(a.inputs, b.inputs)) {
    const change = entryChange(a.inputs[k], b.inputs[k]);
    if (change) out.push({ kind: 'input', path: k, change });
  }
  for (const k of unionKeys(a.upstream, b.upstream)) {
    const change = entryChange(a.upstream[k], b.upstream[k]);
    if (change) out.push({ kind: 'upstream', stage: k, change });
  }
  for (const k of unionKeys(a.env, b.env)) if (a.env[k] !== b.env[k]) out.push({ kind: 'env', name: k, old: a.env[k], new: b.env[k] });
  for (const k of unionKeys(a.runtime, b.runtime)) if (a.runtime[k] !== b.runtime[k]) out.push({ kind: 'runtime', field: k, old: a.runtime[k], new: b.runtime[k] });
  return out;
}

function unionKeys(a: object, b: object): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
}

function entryChange(a: string | undefined, b: string | undefined): InputChange | undefined {
  if (a === b) return undefined;
  if (a === undefined || a === 'missing') return 'added';
  if (b === undefined || b === 'missing') return 'removed';
  return 'modified';
}

function isPlainObject(v: JsonValue | undefined): v is { [k: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Pushes leaf-level param differences; arrays compare whole. */
function diffJson(p: string, a: JsonValue | undefined, b: JsonValue | undefined, out: FingerprintChange[]): void {
  if (isPlainObject(a) && isPlainObject(b)) {
    for (const k of unionKeys(a, b)) diffJson(`${p}.${k}`, a[k], b[k], out);
    return;
  }
  if (a === undefined && b === undefined) return;
  if (a !== undefined && b !== undefined && canonicalJson(a) === canonicalJson(b)) return;
  out.push({ kind: 'param', path: p, old: a, new: b });
}
