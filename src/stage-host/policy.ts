/**
 * When a stage host process may run another stage after one has finished
 * (the "warm host" of `host.ts`), decided inside the child (`child.ts`) once
 * the stage has returned. A host that may not is retired and a later stage
 * gets a fresh process, exactly as if there were no reuse.
 *
 * It does not fork, kill or talk IPC.
 */
import fs from 'node:fs';

/**
 * Built-in stages that may share a host process, one after another. They use
 * only sharp and the file system: no tfjs backend (whose backend choice and
 * wasm thread count are process-wide and fixed at first use), no worker
 * pool, no process settings, and they spawn nothing. Every other stage runs
 * in a process of its own that exits afterwards, and a host that ran one is
 * never reused.
 */
export const SHARED_HOST_STAGES: ReadonlySet<string> = new Set(['ingest', 'resize', 'partition']);

/**
 * What a shared-host stage's `prepare` sets up that lasts in the process and
 * serves another stage too: `sharp` for the stages that decode images (libvips
 * loaded and warmed). A host that prepared or ran a stage of some warmth is
 * handed to a stage of the same warmth first (`HostPool`), and a host
 * prewarmed for stages that will get such a host need not prepare that
 * warmth again.
 */
const HOST_WARMTH: ReadonlyMap<string, string> = new Map([
  ['ingest', 'sharp'],
  ['resize', 'sharp'],
]);

/** The warmth of `stageName` (see `HOST_WARMTH`), if any. */
export function warmthOf(stageName: string): string | undefined {
  return HOST_WARMTH.get(stageName);
}

/** Whether `stageName` may run in a reused host (see `SHARED_HOST_STAGES`). */
export function canShareHost(stageName: string): boolean {
  return SHARED_HOST_STAGES.has(stageName);
}

/**
 * A host whose resident memory is above this after a stage is retired, so one
 * stage's memory never stays charged to the next (a 10k-image resize peaks
 * far below it; see bench/data.bench.ts).
 */
export const HOST_RSS_LIMIT_BYTES = 1 << 30;

/**
 * Kinds of `process.getActiveResourcesInfo()` an idle host has anyway: its
 * IPC and stdio pipes, and writes still in flight on them.
 */
const IDLE_RESOURCES: ReadonlySet<string> = new Set(['PipeWrap', 'TTYWrap', 'WriteWrap', 'ShutdownWrap']);

/** Why a host that just ran `stageName` must not take another stage, or undefined when it may. */
export function retireReason(stageName: string, facts: { readonly resources: readonly string[]; readonly rss: number; readonly childPids: readonly number[] }): string | undefined {
  if (!canShareHost(stageName)) return `stage ${stageName} does not share its process`;
  const stray = facts.resources.filter((r) => !IDLE_RESOURCES.has(r));
  if (stray.length > 0) return `left work behind: ${[...new Set(stray)].join(', ')}`;
  if (facts.rss > HOST_RSS_LIMIT_BYTES) return `resident memory ${Math.round(facts.rss / 2 ** 20)} MiB`;
  if (facts.childPids.length > 0) return `left child processes ${facts.childPids.join(', ')}`;
  return undefined;
}

/** Child processes of this process's main thread (Linux `/proc`; empty where it cannot tell). */
export function ownChildPids(): number[] {
  try {
    const text = fs.readFileSync(`/proc/self/task/${process.pid}/children`, 'utf8').trim();
    return text === '' ? [] : text.split(/\s+/).map(Number);
  } catch {
    return [];
  }
}
