/**
 * Shared plumbing of the model stages: backend initialisation from the common
 * `device` / `backend` / `threads` params, with the choice logged once.
 *
 * This module does not pick a backend itself (backend.ts does).
 */
import { err, ok, type Result } from '../../src/result.js';
import { initBackend, type BackendChoice, type BackendName, type Device } from './backend.js';
import type { Tf } from './backbones/spec.js';
import type { StageLogger } from '../types.js';

/** Params every model stage accepts. */
export interface ComputeParams {
  readonly device: Device;
  /** Force a backend (`tensorflow`, `wasm`, `cpu`); null = auto order. */
  readonly backend: BackendName | null;
  /** wasm threads; null = all cores (max 8). */
  readonly threads: number | null;
}

/** Initialises the backend, logging the choice and its notes. */
export async function stageBackend(p: ComputeParams, log: StageLogger): Promise<Result<{ tf: Tf; choice: BackendChoice }, string>> {
  const r = await initBackend({ device: p.device, ...(p.backend !== null ? { backend: p.backend } : {}), ...(p.threads !== null ? { threads: p.threads } : {}) });
  if (!r.ok) return err(`${r.error.message}${r.error.notes.length > 0 ? ` (${r.error.notes.join('; ')})` : ''}`);
  const { choice } = r.value;
  log.info(backendLine(choice));
  return ok({ tf: r.value.tf as unknown as Tf, choice });
}

/**
 * One log line for the chosen backend and why the ones before it were
 * skipped: `backend wasm (@tensorflow/tfjs-backend-wasm), 2 threads; skipped
 * tfjs-node-gpu: not installed; tfjs-node: not installed`.
 */
export function backendLine(choice: BackendChoice): string {
  const head = `backend ${choice.name} (${choice.package}), ${choice.threads} thread${choice.threads === 1 ? '' : 's'}${choice.gpu ? ', GPU' : ''}`;
  const skipped = choice.notes.map((n) => n.replace(/ -> falling back$/, ''));
  return skipped.length === 0 ? head : `${head}; skipped ${skipped.join('; ')}`;
}

/** The `backend` field of a StageResult. */
export function backendResult(choice: BackendChoice): { name: string; threads: number } {
  return { name: choice.name, threads: choice.threads };
}

/** JSON-schema fragment for the compute params (copied into each stage schema). */
export const COMPUTE_DEFAULTS: ComputeParams = { device: 'auto', backend: null, threads: null };
