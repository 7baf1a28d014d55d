/**
 * What `pipeline cache gc` keeps: every key referenced by any workspace state
 * in the cache (the outputs each workspace currently holds; a cache may be
 * shared), the stage keys of the last N recorded experiments, and any extra
 * keep set a caller adds (`addKeepSetProvider`, e.g. pinned experiments).
 *
 * It does not delete anything itself (`CacheStore.gc` does) and does not print.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

/** A source of keys to keep, given the cache dir. */
export type KeepSetProvider = (cacheDir: string) => Promise<Iterable<string>>;

const providers: KeepSetProvider[] = [];

/** Adds a keep-set provider for this process (e.g. the experiments module pinning named experiments). */
export function addKeepSetProvider(p: KeepSetProvider): void {
  providers.push(p);
}

/** Keys referenced by the state of every workspace that used this cache. */
export async function workspaceStateKeys(cacheDir: string): Promise<Set<string>> {
  const keys = new Set<string>();
  const root = path.join(cacheDir, 'workspaces');
  for (const ws of await fs.readdir(root).catch(() => [] as string[])) {
    try {
      const st = JSON.parse(await fs.readFile(path.join(root, ws, 'state.json'), 'utf8')) as { stages?: Record<string, { key?: string }> };
      for (const s of Object.values(st.stages ?? {})) if (typeof s.key === 'string') keys.add(s.key);
    } catch {
      /* no or unreadable state: nothing referenced */
    }
  }
  return keys;
}

/** Stage keys of the `n` most recent experiments recorded in this cache. */
export async function recentExperimentKeys(cacheDir: string, n: number): Promise<Set<string>> {
  const keys = new Set<string>();
  if (n <= 0) return keys;
  const { readExperiments } = await import('../experiments/record.js');
  const all = await readExperiments(cacheDir);
  const recent = [...all].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0)).slice(0, n);
  for (const e of recent) for (const s of Object.values(e.stages)) if (s.key) keys.add(s.key);
  return keys;
}

/** The full keep set for `gc`. */
export async function gcKeepKeys(cacheDir: string, opts: { keepLast?: number; extra?: Iterable<string> } = {}): Promise<Set<string>> {
  const keep = await workspaceStateKeys(cacheDir);
  for (const k of await recentExperimentKeys(cacheDir, opts.keepLast ?? 0)) keep.add(k);
  for (const k of opts.extra ?? []) keep.add(k);
  for (const p of providers) for (const k of await p(cacheDir)) keep.add(k);
  return keep;
}
