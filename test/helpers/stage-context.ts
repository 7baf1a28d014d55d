/**
 * Test rig for calling a built-in stage's `run` directly: a real temp
 * workspace, a real directory item cache, and a logger that records messages.
 * Use with `await using rig = await stageRig()`; the temp dir is removed on dispose.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { StageContext, StageLogger } from '../../stages/types.js';
import { directoryItemCache } from '../../src/cache/item-cache.js';

/** A logger that keeps every message for assertions. */
export interface RecordingLogger extends StageLogger {
  readonly infos: string[];
  readonly warnings: string[];
  readonly progressCalls: number;
}

export function recordingLogger(): RecordingLogger {
  const infos: string[] = [];
  const warnings: string[] = [];
  let progressCalls = 0;
  return {
    infos,
    warnings,
    get progressCalls() {
      return progressCalls;
    },
    info: (m) => void infos.push(m),
    warn: (m) => void warnings.push(m),
    progress: () => void progressCalls++,
  };
}

export interface StageRig extends AsyncDisposable {
  /** Temp workspace root. */
  readonly dir: string;
  /** Shared cache dir inside the workspace. */
  readonly cacheDir: string;
  /** Builds a context for one stage run with a fresh, empty out dir. */
  context<P>(stageName: string, params: P, inputs?: Record<string, string>, seed?: number): Promise<StageContext<P> & { log: RecordingLogger }>;
}

export async function stageRig(): Promise<StageRig> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stage-rig-'));
  const cacheDir = path.join(dir, 'cache');
  let runs = 0;
  return {
    dir,
    cacheDir,
    async context(stageName, params, inputs = {}, seed = 0) {
      const outDir = path.join(dir, 'out', `${stageName}-${runs++}`);
      await fs.mkdir(outDir, { recursive: true });
      return {
        stageId: stageName,
        params,
        inputs,
        outDir,
        workspace: dir,
        items: directoryItemCache(path.join(cacheDir, 'items', stageName)),
        cacheDir,
        seed,
        log: recordingLogger(),
        signal: new AbortController().signal,
      };
    },
    async [Symbol.asyncDispose]() {
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
