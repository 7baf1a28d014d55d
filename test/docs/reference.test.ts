import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { stageReferenceFromRepo } from '../../src/docs/build.js';
import { describeType, renderStageReference } from '../../src/docs/stage-reference.js';

test('docs/stages.md is generated from schemas/stages and up to date (run `npm run docs` to fix)', async () => {
  const committed = await fs.readFile(path.join(packageRoot, 'docs', 'stages.md'), 'utf8');
  assert.equal(committed, await stageReferenceFromRepo());
});

test('reference rows show types, defaults, required params and nested params', () => {
  const md = renderStageReference([
    {
      name: 'demo',
      inputs: ['ingest'],
      optionalInputs: [],
      schema: {
        description: 'Demo stage.',
        required: ['source'],
        properties: {
          source: { type: 'string', description: 'Where | from.' },
          size: { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 2, maxItems: 2, default: [8, 8] },
          fit: { enum: ['cover', 'fill'], default: 'cover' },
          stop: { type: 'object', properties: { patience: { type: 'integer', minimum: 0, default: 3 } } },
        },
      },
    },
  ]);
  assert.match(md, /\| `source` \| string \| \*\*required\*\* \| Where \\\| from\. \|/);
  assert.match(md, /\| `size` \| 2 × integer ≥ 1 \| `\[8,8\]` \| {2}\|/);
  assert.match(md, /\| `fit` \| "cover" \\\| "fill" \| `"cover"` \|/);
  assert.match(md, /\| `stop\.patience` \| integer ≥ 0 \| `3` \|/);
  assert.match(md, /Inputs: `ingest`\./);
  assert.equal(describeType({}, { oneOf: [{ type: 'number' }, { type: 'array', items: { type: 'number' } }] }), 'number or list of number');
});
