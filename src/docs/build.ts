/**
 * Reads the stage schemas and the registry's input slots and renders the
 * reference (see `stage-reference.ts`). The only I/O of the docs generator.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { schemasDir } from '../paths.js';
import { renderStageReference, type SchemaNode } from './stage-reference.js';

/** The order stages appear in: the pipeline's natural flow. */
const ORDER = ['ingest', 'resize', 'partition', 'augment', 'build-model', 'features', 'train', 'evaluate', 'predict'];

export async function stageReferenceFromRepo(): Promise<string> {
  const { builtinStages } = await import('../../stages/registry.js');
  const names = [...builtinStages.keys()].sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b));
  const stages = await Promise.all(
    names.map(async (name) => {
      const s = builtinStages.get(name)!;
      const schema = JSON.parse(await fs.readFile(path.join(schemasDir, 'stages', `${name}.json`), 'utf8')) as SchemaNode;
      return { name, schema, inputs: s.inputs, optionalInputs: s.optionalInputs ?? [] };
    }),
  );
  return renderStageReference(stages);
}
