/**
 * The published pipeline schema: a proper draft-07 JSON Schema (ajv strict
 * mode), a description on every property, and an editor block that wires
 * each built-in's `with:` to schemas/stages/<name>.json by a relative $ref.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { schemasDir } from '../../src/paths.js';

const require = createRequire(import.meta.url);
const schema = JSON.parse(fs.readFileSync(path.join(schemasDir, 'pipeline.schema.json'), 'utf8')) as Record<string, any>;

test('draft-07, compiles in ajv strict mode (no unknown keywords; without the editor block)', () => {
  assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  const Ajv = require('ajv').default;
  const base = structuredClone(schema);
  delete base.definitions.builtinStage.allOf;
  const ajv = new Ajv({ strict: true, allowUnionTypes: true, allErrors: true }); // union types are standard JSON Schema
  const validate = ajv.compile(base);
  assert.equal(validate({ name: 'x', stages: { a: { cmd: 'echo' }, b: { uses: 'resize', with: {} } } }), true);
  assert.equal(validate({ name: 'x', stages: { a: { cmd: 'echo', uses: 'resize' } } }), false);
});

test('every property has a description', () => {
  const missing: string[] = [];
  const visit = (node: unknown, where: string): void => {
    if (Array.isArray(node)) return node.forEach((n, i) => visit(n, `${where}[${i}]`));
    if (node === null || typeof node !== 'object') return;
    const obj = node as Record<string, unknown>;
    if (obj.properties && typeof obj.properties === 'object') {
      for (const [k, v] of Object.entries(obj.properties as Record<string, any>)) {
        // Editor if/then stubs (`uses: {const}` / `with: {$ref}`) only narrow already-described properties.
        const isStub = v && (v.const !== undefined || v.$ref !== undefined || v.enum !== undefined) && Object.keys(v).length === 1;
        if (!isStub && typeof v?.description !== 'string') missing.push(`${where}.properties.${k}`);
      }
    }
    for (const [k, v] of Object.entries(obj)) visit(v, `${where}.${k}`);
  };
  visit(schema, '#');
  assert.deepEqual(missing, []);
});

test('editor block: uses: completes built-in names, with: refs the stage schema files that exist', () => {
  const names = fs.readdirSync(path.join(schemasDir, 'stages')).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
  const allOf = schema.definitions.builtinStage.allOf as any[];
  assert.deepEqual(allOf[0], { properties: { uses: { enum: names } } });
  for (const name of names) {
    const entry = allOf.find((e) => e.if?.properties?.uses?.const === name);
    assert.ok(entry, `no if/then for ${name}`);
    const ref = entry.then.properties.with.$ref as string;
    assert.ok(fs.existsSync(path.join(schemasDir, ref)), `${ref} does not exist next to the schema`);
  }
  // The whole schema, with stage schemas registered under their relative ids, compiles (as an editor would resolve it).
  const Ajv = require('ajv').default;
  const ajv = new Ajv({ strict: false });
  for (const name of names) ajv.addSchema(JSON.parse(fs.readFileSync(path.join(schemasDir, 'stages', `${name}.json`), 'utf8')), `stages/${name}.json`);
  const validate = ajv.compile(schema);
  assert.equal(validate({ name: 'x', stages: { a: { uses: 'nope' } } }), false, 'uses: is an enum for editors');
});
