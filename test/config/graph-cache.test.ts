/**
 * The analysed-graph cache, observed from fresh processes: a repeated load
 * does not even import the YAML parser, and any change to the pipeline, a
 * params file, a schema file or the -S overrides is seen.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { schemasDir } from '../../src/paths.js';
import { codeDigest, writeCachedGraph } from '../../src/config/graph-cache.js';

const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-gcache-')));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const schemas = path.join(dir, 'schemas');
fs.mkdirSync(schemas);
fs.copyFileSync(path.join(schemasDir, 'pipeline.schema.json'), path.join(schemas, 'pipeline.schema.json'));
const graphCacheDir = path.join(dir, 'graphs');
const pipeline = path.join(dir, 'pipeline.yaml');
fs.writeFileSync(pipeline, 'name: x\nparams_files: [p.yaml]\nstages:\n  a: {cmd: "echo ${params.msg}"}\n');
fs.writeFileSync(path.join(dir, 'p.yaml'), 'msg: one\n');

/** Loads in a fresh process; reports the argv of stage a, or the first error, and whether `yaml` was imported. */
function loadFresh(overrides: { path: string; value: unknown }[] = []): { result: string; yamlLoaded: boolean } {
  const script = `
    import { loadPipeline } from ${JSON.stringify(new URL('../../src/config/load.js', import.meta.url).href)};
    const r = await loadPipeline(${JSON.stringify(pipeline)}, { schemasDir: ${JSON.stringify(schemas)}, graphCacheDir: ${JSON.stringify(graphCacheDir)}, overrides: ${JSON.stringify(overrides)} });
    const req = (await import('node:module')).createRequire(import.meta.url);
    const yamlLoaded = Object.keys(req.cache).some((k) => k.includes('/node_modules/yaml/'));
    console.log(JSON.stringify({ result: r.ok ? r.value.stages.get('a').argv.join(' ') : r.error[0].message, yamlLoaded }));`;
  const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout) as { result: string; yamlLoaded: boolean };
}

/**
 * A load expected to hit the cache. In a shared checkout other builds may
 * rewrite stage code meanwhile (a legitimate miss), so when the code digest
 * changed during the attempt, prime again and retry.
 */
function loadExpectingHit(overrides: { path: string; value: unknown }[] = []): { result: string; yamlLoaded: boolean } {
  for (let attempt = 0; ; attempt++) {
    const before = codeDigest().content();
    if (attempt > 0) loadFresh(overrides); // prime again after a code change
    const r = loadFresh(overrides);
    // Attempt 0 may miss because code changed since the caller's priming load: always allow one re-prime.
    if (!r.yamlLoaded || attempt >= 4 || (attempt > 0 && codeDigest().content() === before)) return r;
  }
}

test('a repeated load is answered from the cache; every input change is a miss', () => {
  assert.deepEqual(loadFresh(), { result: 'echo one', yamlLoaded: true });
  assert.deepEqual(loadExpectingHit(), { result: 'echo one', yamlLoaded: false }, 'second load: from the cache');
  // Params file edit (same size, so only content can tell).
  fs.writeFileSync(path.join(dir, 'p.yaml'), 'msg: two\n');
  assert.deepEqual(loadFresh(), { result: 'echo two', yamlLoaded: true });
  assert.deepEqual(loadExpectingHit(), { result: 'echo two', yamlLoaded: false });
  // Overrides are part of the key.
  assert.deepEqual(loadFresh([{ path: 'msg', value: 'three' }]), { result: 'echo three', yamlLoaded: true });
  assert.deepEqual(loadExpectingHit([{ path: 'msg', value: 'three' }]), { result: 'echo three', yamlLoaded: false });
  assert.deepEqual(loadExpectingHit(), { result: 'echo two', yamlLoaded: false });
  // Pipeline edit.
  fs.writeFileSync(pipeline, 'name: x\nparams_files: [p.yaml]\nstages:\n  a: {cmd: "echo ${params.msg} !"}\n');
  assert.deepEqual(loadFresh(), { result: 'echo two !', yamlLoaded: true });
  // Schema edit: the pipeline schema now forbids `params_files` items longer than 3 characters.
  const schemaFile = path.join(schemas, 'pipeline.schema.json');
  const schema = JSON.parse(fs.readFileSync(schemaFile, 'utf8'));
  schema.properties.params_files.items.maxLength = 3;
  fs.writeFileSync(schemaFile, JSON.stringify(schema));
  assert.deepEqual(loadFresh(), { result: 'params_files[0] must NOT have more than 3 characters, got string \'p.yaml\'', yamlLoaded: true });
  // Failures are not cached.
  assert.equal(loadFresh().yamlLoaded, true);
});

test('a corrupt cache entry is a miss, not an error', () => {
  for (const f of fs.readdirSync(graphCacheDir)) fs.writeFileSync(path.join(graphCacheDir, f), '{"format": 1, "inputs": [');
  const r = loadFresh();
  assert.equal(r.yamlLoaded, true);
});

test('the cache directory is pruned to the most recent entries', () => {
  const pruneDir = path.join(dir, 'prune');
  fs.mkdirSync(pruneDir);
  for (let i = 0; i < 600; i++) {
    const f = path.join(pruneDir, `old${i}.json`);
    fs.writeFileSync(f, '{}');
    fs.utimesSync(f, new Date(1000 + i), new Date(1000 + i));
  }
  const graph = { name: 'p', file: pipeline, workspace: dir, params: {}, stages: new Map(), configFiles: [pipeline] };
  writeCachedGraph(path.join(pruneDir, 'new.json'), graph, [pipeline], pipeline, fs.readFileSync(pipeline, 'utf8'));
  const left = fs.readdirSync(pruneDir);
  assert.equal(left.length, 256);
  assert.ok(left.includes('new.json'), 'the entry just written survives');
  assert.ok(left.includes('old599.json') && !left.includes('old0.json'), 'the oldest go first');
});
