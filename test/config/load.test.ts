/**
 * loadPipeline end to end on real files: params_files deep merge, -S
 * overrides, bad files of every kind as diagnostics (never exceptions), the
 * real registry and the real pipeline schema, and the on-disk validator cache.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { CmdStageNode, StageId } from '../../src/pipeline.js';
import { loadPipeline } from '../../src/config/load.js';
import { formatDiagnostics } from '../../src/diagnostic-printer.js';
import { configRig } from './rig.js';

const rig = configRig();
after(() => rig.dispose());

test('params_files deep-merge over inline params (later wins), -S overrides win over all, all files listed', async () => {
  rig.write({
    'p1.yaml': 'train: {lr: 0.1, opt: {name: adam, beta: 0.9}}\ndata: {dir: a}\n',
    'conf/p2.yaml': 'train: {opt: {beta: 0.5}, layers: [3]}\n',
  });
  const yaml = [
    'name: x',
    'params: {train: {lr: 1, epochs: 5, layers: [1, 2]}, keep: true}',
    'params_files: [p1.yaml, conf/p2.yaml]',
    'stages:',
    '  s: {cmd: [echo, "${params.train.lr}", "${params.train.opt.beta}"], params: [train.epochs, data.dir]}',
  ].join('\n');
  const g = await rig.graph(yaml, { overrides: [{ path: 'train.epochs', value: 7 }, { path: 'data.dir', value: 'b' }] });
  assert.deepEqual(g.params, { train: { lr: 0.1, epochs: 7, layers: [3], opt: { name: 'adam', beta: 0.5 } }, keep: true, data: { dir: 'b' } });
  assert.deepEqual(g.configFiles, ['pipeline.yaml', 'p1.yaml', 'conf/p2.yaml'].map((f) => path.join(rig.dir, f)));
  const s = g.stages.get('s' as StageId) as CmdStageNode;
  assert.deepEqual(s.argv, ['echo', '0.1', '0.5']);
  assert.deepEqual(s.params, [
    { path: 'data.dir', value: 'b' },
    { path: 'train.epochs', value: 7 },
    { path: 'train.lr', value: 0.1 },
    { path: 'train.opt.beta', value: 0.5 },
  ]);
});

test('-S on a param that does not exist is an error with did-you-mean, located at the deepest part that exists', async () => {
  const r = await rig.load('name: x\nparams: {train: {lr: 1}}\nstages:\n  s: {cmd: echo}\n', { overrides: [{ path: 'train.lrr', value: 2 }, { path: 'nope.x', value: 1 }] });
  assert.ok(!r.ok);
  const lines = formatDiagnostics(r.error, { color: false, relativeTo: rig.dir, readSource: (f) => fs.readFileSync(f, 'utf8') })
    .split('\n')
    .filter((l) => l.startsWith('pipeline.yaml'));
  assert.deepEqual(lines, [
    "pipeline.yaml:2:9: error: -S nope.x: no such param (params has no key 'nope')",
    "pipeline.yaml:2:17: error: -S train.lrr: no such param (params.train has no key 'lrr'); did you mean 'train.lr'?",
  ]);
});

test('a missing file, a directory, a binary file: diagnostics, not exceptions', async () => {
  const show = async (file: string): Promise<string> => {
    const r = await loadPipeline(file, {});
    assert.ok(!r.ok);
    return formatDiagnostics(r.error, { color: false, relativeTo: rig.dir, readSource: () => undefined });
  };
  assert.equal(await show(path.join(rig.dir, 'nope.yaml')), 'nope.yaml: error: the pipeline file does not exist\n\n1 error');
  fs.mkdirSync(path.join(rig.dir, 'sub'));
  fs.writeFileSync(path.join(rig.dir, 'sub', 'pipeline.yaml'), 'name: x\n');
  assert.equal(await show(path.join(rig.dir, 'sub')), 'sub: error: the pipeline file is a directory (it contains pipeline.yaml: pass that file)\n\n1 error');
  fs.writeFileSync(path.join(rig.dir, 'bin.yaml'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]));
  assert.equal(await show(path.join(rig.dir, 'bin.yaml')), 'bin.yaml: error: the pipeline file is not a text file\n\n1 error');
});

test('a scalar root and a non-mapping params file are located diagnostics', async () => {
  assert.equal(await rig.diagnose('just text'), ['pipeline.yaml:1:1: error: the pipeline file must be a mapping with name: and stages:, got a string', '  1 | just text', '    | ~~~~~~~~~', '', '1 error'].join('\n'));
  rig.write({ 'list.yaml': '- 1\n- 2\n' });
  assert.equal(
    await rig.diagnose('name: x\nparams_files: [list.yaml]\nstages: {}\n'),
    ['list.yaml:1:1: error: params file must be a mapping, got a list', '  1 | - 1', '    | ~~~', '', '1 error'].join('\n'),
  );
});

test('real registry: unknown built-in suggests a real stage name', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-real-'));
  try {
    fs.writeFileSync(path.join(dir, 'pipeline.yaml'), 'name: x\nstages:\n  a:\n    uses: resise\n');
    const r = await loadPipeline(path.join(dir, 'pipeline.yaml'));
    assert.ok(!r.ok);
    assert.equal(r.error.length, 1);
    assert.equal(r.error[0].reason, 'unknown-builtin');
    assert.equal(r.error[0].message, "unknown built-in stage 'resise'; did you mean 'resize'?");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('real pipeline schema: the documented example validates; the editor block is up to date', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-real-'));
  try {
    const yaml = [
      '# yaml-language-server: $schema=../schemas/pipeline.schema.json',
      'name: quickstart',
      'params: {train: {lr: 0.001}}',
      'stages:',
      '  report:',
      '    cmd: [python3, scripts/report.py, --lr, "${params.train.lr}"]',
      '    cwd: .',
      '    deps: [scripts/report.py, "data/*.csv"]',
      '    outs: [report.txt, {path: big/, cache: false}]',
      '    metrics: [report-metrics.json]',
      '    params: [train.lr]',
      '    env: {FOO: bar}',
      '    resources: {gpu: 1}',
      '    interrupt: false',
      '    description: free text',
      '  sweep:',
      '    matrix: {lr: [0.1, 0.01], bs: [16, 32]}',
      '    cmd: [echo, "${item.lr}"]',
      '  per:',
      '    foreach: [a, b]',
      '    cmd: [echo, "${item}"]',
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'pipeline.yaml'), yaml);
    const r = await loadPipeline(path.join(dir, 'pipeline.yaml'));
    assert.ok(r.ok, r.ok ? '' : formatDiagnostics(r.error, { color: false }));
    assert.equal(r.value.stages.size, 7);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const check = spawnSync(process.execPath, ['scripts/gen-pipeline-schema.mjs', '--check'], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
});

test('compiled validators are cached on disk and reused by a fresh process', async () => {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-vcache-'));
  try {
    rig.write({ 'cached.yaml': 'name: x\nstages:\n  a: {cmd: echo, dep: [x]}\n' });
    // Two fresh processes: the first compiles with ajv and writes the module, the second only requires it.
    const script = `
      import { loadPipeline } from ${JSON.stringify(new URL('../../src/config/load.js', import.meta.url).href)};
      const r = await loadPipeline(${JSON.stringify(path.join(rig.dir, 'cached.yaml'))}, { validatorCacheDir: ${JSON.stringify(cacheDir)} });
      const ajvLoaded = Object.keys((await import('node:module')).createRequire(import.meta.url).cache).some((k) => k.endsWith('/ajv/dist/ajv.js'));
      console.log(JSON.stringify({ ok: r.ok, message: r.ok ? '' : r.error[0].message, ajvLoaded }));`;
    const run = (): unknown => {
      const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      assert.equal(out.status, 0, out.stderr);
      return JSON.parse(out.stdout);
    };
    const message = "unknown key 'dep' in stages.a; did you mean 'deps'?";
    assert.deepEqual(run(), { ok: false, message, ajvLoaded: true });
    assert.equal(fs.readdirSync(cacheDir).filter((f) => f.endsWith('.cjs')).length, 1, 'the pipeline schema validator was written');
    assert.deepEqual(run(), { ok: false, message, ajvLoaded: false });
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});

test('real registry and real stage schema: ingest gets its version, defaults and file deps; oneOf alternatives explained', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-real-'));
  try {
    const { builtinStages } = await import('../../stages/registry.js');
    fs.writeFileSync(path.join(dir, 'pipeline.yaml'), 'name: x\nstages:\n  ingest:\n    uses: ingest\n    with: {source: data/sample}\n');
    const r = await loadPipeline(path.join(dir, 'pipeline.yaml'), { graphCacheDir: false });
    assert.ok(r.ok, r.ok ? '' : formatDiagnostics(r.error, { color: false }));
    const node = r.value.stages.get('ingest' as StageId)!;
    assert.equal(node.kind, 'builtin');
    if (node.kind !== 'builtin') return;
    assert.equal(node.version, builtinStages.get('ingest')!.version);
    assert.equal(node.with.source, 'data/sample');
    assert.ok(Object.keys(node.with).length > 1, 'schema defaults were applied');
    assert.ok(node.deps.some((d) => d.kind === 'path' && d.path === 'data/sample'), 'fileDeps reported the source directory');
    fs.writeFileSync(path.join(dir, 'pipeline.yaml'), 'name: x\nstages:\n  ingest:\n    uses: ingest\n    with: {source: a, manifest: b.csv}\n');
    const bad = await loadPipeline(path.join(dir, 'pipeline.yaml'), { graphCacheDir: false });
    assert.ok(!bad.ok);
    assert.deepEqual(bad.error.map((d) => d.message), ['stages.ingest.with must set only one of: source, manifest']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
