/**
 * The explicit map of built-in stages (`uses:` name → definition). No import
 * side effects: adding a stage means adding a line here.
 */
import type { BuiltinStage } from './types.js';
import { ingestStage } from './ingest.js';
import { resizeStage } from './resize.js';
import { partitionStage } from './partition.js';
import { augmentStage } from './augment.js';
import { buildModelStage } from './build-model.js';
import { featuresStage } from './features.js';
import { trainStage } from './train.js';
import { evaluateStage } from './evaluate.js';
import { predictStage } from './predict.js';

/** Every built-in stage by name. */
export const builtinStages: ReadonlyMap<string, BuiltinStage<any>> = new Map<string, BuiltinStage<any>>(
  [ingestStage, resizeStage, partitionStage, augmentStage, buildModelStage, featuresStage, trainStage, evaluateStage, predictStage].map(
    (s) => [s.name, s],
  ),
);
