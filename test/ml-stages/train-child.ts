/**
 * Child process for the resume test: runs the real train stage with the
 * context given as JSON in argv[2] (paths, params, seed), so the parent can
 * SIGKILL it mid-training. Prints `done` when the stage finished.
 */
import { trainStage, type TrainParams } from '../../stages/train.js';
import { directoryItemCache } from '../../src/cache/item-cache.js';
import { recordingLogger } from '../helpers/stage-context.js';

const cfg = JSON.parse(process.argv[2]!) as { params: TrainParams; inputs: Record<string, string>; outDir: string; cacheDir: string; workspace: string; seed: number };
const log = recordingLogger();
await trainStage.run({
  stageId: 'train',
  params: cfg.params,
  inputs: cfg.inputs,
  outDir: cfg.outDir,
  workspace: cfg.workspace,
  items: directoryItemCache(`${cfg.cacheDir}/items/train`),
  cacheDir: cfg.cacheDir,
  seed: cfg.seed,
  log: { ...log, info: (m: string) => process.stdout.write(`${m}\n`) },
  signal: new AbortController().signal,
});
process.stdout.write('done\n');
