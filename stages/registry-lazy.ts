/**
 * The built-in stages by `uses:` name, each module imported only when asked
 * for: for a process that runs one stage (the stage host, `src/stage-host/child.ts`),
 * which then loads that stage's own import graph and nothing else (the eager
 * `registry.ts` loads every built-in module, ~50 files, to run a 10-file one).
 *
 * The list mirrors `registry.ts`, the one code that needs every stage's
 * metadata at once (a test checks both name the same stages and resolve to
 * the very same objects). Adding a stage means a line in each.
 *
 * Importing this module imports no stage module and has no side effects.
 */
import type { BuiltinStage } from './types.js';

/** `uses:` name → import of the module defining that stage. */
const LOADERS: ReadonlyMap<string, () => Promise<BuiltinStage<any>>> = new Map<string, () => Promise<BuiltinStage<any>>>([
  ['ingest', async () => (await import('./ingest.js')).ingestStage],
  ['resize', async () => (await import('./resize.js')).resizeStage],
  ['partition', async () => (await import('./partition.js')).partitionStage],
  ['augment', async () => (await import('./augment.js')).augmentStage],
  ['build-model', async () => (await import('./build-model.js')).buildModelStage],
  ['features', async () => (await import('./features.js')).featuresStage],
  ['train', async () => (await import('./train.js')).trainStage],
  ['evaluate', async () => (await import('./evaluate.js')).evaluateStage],
  ['predict', async () => (await import('./predict.js')).predictStage],
]);

/** Every built-in stage name, in `registry.ts` order. */
export const builtinStageNames: readonly string[] = [...LOADERS.keys()];

/** The built-in stage called `name`, importing only its module (and what that imports); undefined for an unknown name. */
export async function loadBuiltinStage(name: string): Promise<BuiltinStage<any> | undefined> {
  return LOADERS.get(name)?.();
}
