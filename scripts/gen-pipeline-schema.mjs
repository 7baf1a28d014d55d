#!/usr/bin/env node
// Regenerates the editor-only part of schemas/pipeline.schema.json: the
// `definitions.builtinStage.allOf` block that (1) lists the built-in names for
// `uses:` completion and (2) points each built-in's `with:` at
// schemas/stages/<name>.json via if/then, so yaml-language-server completes
// `with:` keys. The engine's loader strips this block and validates `with:`
// directly against the stage schema (one error per problem, not two).
// Usage: node scripts/gen-pipeline-schema.mjs [--check]
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const schemaFile = join(root, 'schemas', 'pipeline.schema.json');
const names = readdirSync(join(root, 'schemas', 'stages'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -5))
  .sort();
const schema = JSON.parse(readFileSync(schemaFile, 'utf8'));
schema.definitions.builtinStage.allOf = [
  { properties: { uses: { enum: names } } },
  ...names.map((name) => ({
    if: { properties: { uses: { const: name } }, required: ['uses'] },
    then: { properties: { with: { $ref: `stages/${name}.json` } } },
  })),
];
const text = JSON.stringify(schema, null, 2) + '\n';
if (process.argv.includes('--check')) {
  if (readFileSync(schemaFile, 'utf8') !== text) {
    console.error('schemas/pipeline.schema.json is out of date: run node scripts/gen-pipeline-schema.mjs');
    process.exit(1);
  }
} else {
  writeFileSync(schemaFile, text);
  console.log(`wrote ${schemaFile} (${names.length} built-ins: ${names.join(', ')})`);
}
