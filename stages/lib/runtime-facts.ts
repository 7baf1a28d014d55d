/**
 * Cheap runtime facts for built-in stages' fingerprints (`BuiltinStage.runtimeFacts`):
 * the versions of the native libraries that compute a stage's outputs, and
 * which tfjs backend family a model stage's `device` / `backend` params will
 * resolve to. A change of any of them makes the stage stale, and
 * `pipeline explain` names it (`runtime sharp changed: 0.34.1 → 0.34.2`).
 *
 * Everything is read from package.json files on disk (a few small reads per
 * process, memoised): this module never loads sharp, tfjs or a tfjs backend
 * package, since a no-op run must stay fast. So the backend family is a
 * prediction from what is installed (`tensorflow-gpu` when tfjs-node-gpu
 * resolves, `tensorflow` for tfjs-node, else `wasm`, else `cpu`), not proof
 * that it initialises; whether a GPU is actually visible is not known here.
 * The reads are memoised for the life of the process: a long `watch` session
 * notices a package upgraded under it only when restarted.
 *
 * Does not decide freshness and does not pick or initialise a backend
 * (`ml/backend.ts` does that when the stage runs).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** `name@version` of an installed package, found by walking the node_modules dirs Node would search (package not loaded). */
interface InstalledPackage {
  readonly dir: string;
  readonly version: string;
  readonly json: Record<string, unknown>;
}

const found = new Map<string, InstalledPackage | null>();

/** The package.json of `name` as Node would resolve it from this module, or undefined when not installed. Memoised. */
export function installedPackage(name: string): InstalledPackage | undefined {
  const hit = found.get(name);
  if (hit !== undefined) return hit ?? undefined;
  let result: InstalledPackage | null = null;
  for (const base of require.resolve.paths(name) ?? []) {
    const dir = path.join(base, name);
    let text: string;
    try {
      text = fs.readFileSync(path.join(dir, 'package.json'), 'utf8');
    } catch {
      continue;
    }
    try {
      const json = JSON.parse(text) as Record<string, unknown>;
      if (typeof json.version === 'string') result = { dir, version: json.version, json };
    } catch {
      /* unreadable package.json: treat as not installed */
    }
    break;
  }
  found.set(name, result);
  return result ?? undefined;
}

let imageFacts: Readonly<Record<string, string>> | undefined;

/**
 * `{sharp, libvips}` versions for stages that decode or resize with sharp.
 * libvips comes from the prebuilt `@img/sharp-libvips-<platform>-<arch>`
 * package sharp uses (its versions.json, the same figure as
 * `sharp.versions.vips`), else the minimum sharp pins in `config.libvips`.
 * `'missing'` when sharp is not installed.
 */
export function imageRuntimeFacts(): Readonly<Record<string, string>> {
  if (imageFacts) return imageFacts;
  const sharp = installedPackage('sharp');
  if (!sharp) return (imageFacts = { sharp: 'missing', libvips: 'missing' });
  return (imageFacts = { sharp: sharp.version, libvips: libvipsVersion(sharp) });
}

function libvipsVersion(sharp: InstalledPackage): string {
  const req = createRequire(path.join(sharp.dir, 'package.json'));
  for (const libc of process.platform === 'linux' ? ['', 'musl'] : ['']) {
    const pkg = `@img/sharp-libvips-${process.platform}${libc}-${process.arch}`;
    for (const base of req.resolve.paths(pkg) ?? []) {
      try {
        const v = (JSON.parse(fs.readFileSync(path.join(base, pkg, 'versions.json'), 'utf8')) as { vips?: unknown }).vips;
        if (typeof v === 'string') return v;
      } catch {
        /* not here */
      }
    }
  }
  const pinned = (sharp.json.config as { libvips?: unknown } | undefined)?.libvips;
  return typeof pinned === 'string' ? (/\d+\.\d+\.\d+/.exec(pinned)?.[0] ?? pinned) : 'unknown';
}

/** The params of a model stage that decide its backend (a subset of `ml/runtime.ts` ComputeParams). */
export interface BackendParams {
  readonly device?: string | null;
  readonly backend?: string | null;
}

/**
 * `{tfjs, tfjsBackend}` for model stages: the tfjs version and the backend
 * family `device` / `backend` will resolve to, following `initBackend`'s
 * order (module doc: installed packages only, nothing loaded). A tensorflow
 * package whose version differs from tfjs's is skipped, as `initBackend`
 * skips it. `tfjsBackend` is `tensorflow-gpu`, `tensorflow`, `wasm` or `cpu`.
 */
export function tfjsRuntimeFacts(p: BackendParams): Readonly<Record<string, string>> {
  const tfjs = installedPackage('@tensorflow/tfjs')?.version ?? 'missing';
  return { tfjs, tfjsBackend: backendFamily(p, tfjs) };
}

function backendFamily(p: BackendParams, tfjs: string): string {
  const usable = (pkg: string): boolean => installedPackage(pkg)?.version === tfjs;
  const device = p.device ?? 'auto';
  // device gpu either gets tfjs-node-gpu or fails: the family is fixed.
  if (device === 'gpu') return 'tensorflow-gpu';
  const order = typeof p.backend === 'string' ? [p.backend] : ['tensorflow', 'wasm', 'cpu'];
  for (const name of order) {
    if (name === 'tensorflow') {
      if (device === 'auto' && usable('@tensorflow/tfjs-node-gpu')) return 'tensorflow-gpu';
      if (usable('@tensorflow/tfjs-node')) return 'tensorflow';
      if (order.length === 1) return 'tensorflow'; // asked for explicitly: the stage fails without it
    } else if (name === 'wasm') {
      if (installedPackage('@tensorflow/tfjs-backend-wasm') !== undefined || order.length === 1) return 'wasm';
    } else return name;
  }
  return 'cpu';
}
