/**
 * Analysis results (not errors): topological order, needs, outDirs, argv,
 * param reads, interpolation types, injection safety, foreach/matrix ids,
 * path-inferred edges, input slots, resources. Uses the test registry.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { BuiltinStageNode, CmdStageNode, PipelineGraph, StageId } from '../../src/pipeline.js';
import { configRig } from '../config/rig.js';

const rig = configRig();
after(() => rig.dispose());

function stage<K extends 'builtin' | 'cmd'>(g: PipelineGraph, id: string, kind: K): K extends 'builtin' ? BuiltinStageNode : CmdStageNode {
  const s = g.stages.get(id as StageId);
  assert.ok(s, `no stage ${id}`);
  assert.equal(s.kind, kind);
  return s as K extends 'builtin' ? BuiltinStageNode : CmdStageNode;
}

test('quickstart: order, needs, outDirs, with defaults, file deps, params, outs, metrics', async () => {
  const g = await rig.graph(
    [
      'name: quickstart',
      'cache: ./cache',
      'params:',
      '  train: {lr: 0.001, epochs: 5}',
      'stages:',
      '  report:',
      '    cmd: [python3, scripts/report.py, --lr, "${params.train.lr}"]',
      '    deps: [scripts/report.py, "data/*.csv", {stage: train}, {stage: train, output: model.json}]',
      '    outs: [report.txt, {path: big/, cache: false}]',
      '    metrics: [report-metrics.json]',
      '    params: [train.epochs]',
      '    env: {FOO: bar, N: 3}',
      '    resources: {gpu: 1}',
      '    interrupt: false',
      '    description: free text',
      '  images:',
      '    uses: ingest',
      '    with: {source: data/sample}',
      '  small:',
      '    uses: resize',
      '    with: {size: [32, 32]}',
      '    inputs: {images: images}',
      '    out: out/resized',
      '  features:',
      '    uses: resize',
      '  train:',
      '    uses: train',
      '    with: {lr: "${params.train.lr}", device: gpu}',
      '    resources: {mem: 2}',
    ].join('\n'),
  );
  assert.equal(g.name, 'quickstart');
  assert.equal(g.file, path.join(rig.dir, 'pipeline.yaml'));
  assert.equal(g.workspace, rig.dir);
  assert.equal(g.cacheDir, path.join(rig.dir, 'cache'));
  assert.deepEqual(g.configFiles, [path.join(rig.dir, 'pipeline.yaml')]);
  // Topological, ties by file order: images before small before features (declared order), train after features, report last.
  assert.deepEqual([...g.stages.keys()], ['images', 'small', 'features', 'train', 'report']);
  const images = stage(g, 'images', 'builtin');
  assert.deepEqual(images.deps.map((d) => d.kind === 'path' && d.path), ['data/sample']);
  assert.equal(images.outDir, 'out/images');
  const small = stage(g, 'small', 'builtin');
  assert.equal(small.outDir, 'out/resized');
  assert.deepEqual(small.with, { size: [32, 32], interpolation: 'bilinear' });
  assert.deepEqual(small.inputs, { images: 'images' });
  assert.deepEqual(small.needs, ['images']);
  const features = stage(g, 'features', 'builtin');
  assert.deepEqual(features.with, { size: [224, 224], interpolation: 'bilinear' });
  assert.deepEqual(features.inputs, { images: 'images' }, 'unmapped required slot defaults to the stage named like it');
  const train = stage(g, 'train', 'builtin');
  assert.deepEqual(train.with, { lr: 0.001, device: 'gpu', epochs: 10 });
  assert.deepEqual(train.params, [{ path: 'train.lr', value: 0.001 }]);
  assert.deepEqual(train.resources, { gpu: 1, mem: 2 }, 'stage.resources(params) merged with declared');
  assert.deepEqual(train.inputs, { features: 'features' });
  assert.equal(train.interrupt, true);
  const report = stage(g, 'report', 'cmd');
  assert.deepEqual(report.argv, ['python3', 'scripts/report.py', '--lr', '0.001']);
  assert.equal(report.cwd, '.');
  assert.deepEqual(report.needs, ['train']);
  assert.deepEqual(
    report.deps.map((d) => (d.kind === 'path' ? d.path : `${d.stage}:${d.output ?? '*'}`)),
    ['scripts/report.py', 'data/*.csv', 'train:*', 'train:model.json'],
  );
  assert.deepEqual(report.outs.map((o) => [o.path, o.cache]), [['report.txt', true], ['big', false]]);
  assert.deepEqual(report.metrics, ['report-metrics.json']);
  assert.deepEqual(report.params, [{ path: 'train.epochs', value: 5 }, { path: 'train.lr', value: 0.001 }]);
  assert.deepEqual(report.env, { FOO: 'bar', N: '3' });
  assert.deepEqual(report.resources, { gpu: 1 });
  assert.equal(report.interrupt, false);
  assert.equal(report.description, 'free text');
  // Locations point at the stage keys.
  assert.equal(rig.dir && g.stages.get('report' as StageId)!.loc.offset, 'name: quickstart\ncache: ./cache\nparams:\n  train: {lr: 0.001, epochs: 5}\nstages:\n  '.length);
});

test('interpolation: a lone ${...} keeps its type, embedded ones stringify, $${ is literal', async () => {
  const g = await rig.graph(
    [
      'name: x',
      'params:',
      '  train: {lr: 0.5, layers: [{units: 8}, {units: 4}], tag: v1}',
      '  flag: true',
      'stages:',
      '  features: {cmd: [make], outs: [feat]}',
      '  train:',
      '    uses: train',
      '    with: {lr: "${params.train.lr}", layers: "${params.train.layers}"}',
      '  show:',
      '    cmd: [echo, "lr=${params.train.lr}", "${params.train.layers}", "${params.flag}", "$${params.train.lr}", "${params.train.tag}-${params.train.lr}"]',
      '    env: {LAYERS: "${params.train.layers.1.units}"}',
    ].join('\n'),
  );
  const train = stage(g, 'train', 'builtin');
  assert.equal(train.with.lr, 0.5);
  assert.deepEqual(train.with.layers, [{ units: 8 }, { units: 4 }]);
  assert.deepEqual(train.params.map((p) => p.path), ['train.layers', 'train.lr']);
  const show = stage(g, 'show', 'cmd');
  assert.deepEqual(show.argv, ['echo', 'lr=0.5', '[{"units":8},{"units":4}]', 'true', '${params.train.lr}', 'v1-0.5']);
  assert.deepEqual(show.env, { LAYERS: '4' });
  assert.deepEqual(show.params.map((p) => p.path), ['flag', 'train.layers', 'train.layers.1.units', 'train.lr', 'train.tag']);
});

test('injection: a param value with shell syntax stays exactly one argv element (string and list cmd)', async () => {
  rig.write({ 'evil.yaml': 'evil: "; rm -rf ~"\nquoted: "a \\"b\\" \'c\' $(d) `e`"\n' });
  const g = await rig.graph(
    [
      'name: x',
      'params_files: [evil.yaml]',
      'stages:',
      '  s:',
      '    cmd: echo ${params.evil} "x ${params.quoted}" done',
      '  l:',
      '    cmd: [echo, "${params.evil}", "${params.quoted}"]',
    ].join('\n'),
  );
  assert.deepEqual(stage(g, 's', 'cmd').argv, ['echo', '; rm -rf ~', 'x a "b" \'c\' $(d) `e`', 'done']);
  assert.deepEqual(stage(g, 'l', 'cmd').argv, ['echo', '; rm -rf ~', 'a "b" \'c\' $(d) `e`']);
});

test('cmd strings split shell-like without a shell: quotes, escapes, quoted operators', async () => {
  const g = await rig.graph(['name: x', 'stages:', `  a: {cmd: "python3 -c 'print(1 + 2)' \\"two words\\" a\\\\ b '>' x"}`].join('\n'));
  assert.deepEqual(stage(g, 'a', 'cmd').argv, ['python3', '-c', 'print(1 + 2)', 'two words', 'a b', '>', 'x']);
});

test('matrix expands to the cartesian product in file order; foreach of scalars and of objects', async () => {
  const g = await rig.graph(
    [
      'name: x',
      'params: {sizes: [8, 16]}',
      'stages:',
      '  sweep:',
      '    matrix: {lr: [0.1, 0.01], bs: [16, 32]}',
      '    cmd: [train, --lr, "${item.lr}", --bs, "${item.bs}"]',
      '    outs: ["models/${item.lr}-${item.bs}"]',
      '  per:',
      '    foreach: [a, b]',
      '    cmd: [echo, "${item}"]',
      '  objs:',
      '    foreach: [{name: cat, n: 1}, {name: dog, n: 2}]',
      '    cmd: [echo, "${item.name}"]',
      '  sized:',
      '    foreach: "${params.sizes}"',
      '    uses: resize',
      '    with: {size: ["${item}", "${item}"]}',
      '    inputs: {images: per@a}',
      '  after:',
      '    cmd: [collect]',
      '    needs: [sweep]',
    ].join('\n'),
  );
  assert.deepEqual(
    [...g.stages.keys()],
    ['sweep@lr=0.1,bs=16', 'sweep@lr=0.1,bs=32', 'sweep@lr=0.01,bs=16', 'sweep@lr=0.01,bs=32', 'per@a', 'per@b', 'objs@0', 'objs@1', 'sized@8', 'sized@16', 'after'],
  );
  assert.deepEqual(stage(g, 'sweep@lr=0.01,bs=32', 'cmd').argv, ['train', '--lr', '0.01', '--bs', '32']);
  assert.deepEqual(stage(g, 'sweep@lr=0.01,bs=32', 'cmd').outs.map((o) => o.path), ['models/0.01-32']);
  assert.deepEqual(stage(g, 'per@b', 'cmd').argv, ['echo', 'b']);
  assert.deepEqual(stage(g, 'objs@1', 'cmd').argv, ['echo', 'dog']);
  const sized = stage(g, 'sized@16', 'builtin');
  assert.deepEqual(sized.with.size, [16, 16], '${item} keeps the number type');
  assert.equal(sized.outDir, 'out/sized@16');
  assert.deepEqual(stage(g, 'after', 'cmd').needs, ['sweep@lr=0.01,bs=16', 'sweep@lr=0.01,bs=32', 'sweep@lr=0.1,bs=16', 'sweep@lr=0.1,bs=32']);
});

test('edges: ${stages.x.out} and path deps inside other stages\' outputs (DVC-style), globs', async () => {
  const g = await rig.graph(
    [
      'name: x',
      'stages:',
      '  consume:',
      '    cmd: [cat, "${stages.produce.out}/a.txt", "${stages.images.out}"]',
      '  produce:',
      '    cmd: [make]',
      '    outs: [data/prepared, extra.txt]',
      '  glob:',
      '    cmd: [wc]',
      '    deps: ["data/**/*.csv"]',
      '  parent:',
      '    cmd: [du]',
      '    deps: [data]',
      '  unrelated:',
      '    cmd: [ls]',
      '    deps: ["*.md", data2/x]',
      '  images:',
      '    uses: ingest',
      '    with: {source: data/prepared/images}',
    ].join('\n'),
  );
  assert.deepEqual(stage(g, 'consume', 'cmd').argv, ['cat', 'data/prepared/a.txt', 'out/images']);
  assert.deepEqual(stage(g, 'consume', 'cmd').needs, ['images', 'produce']);
  assert.deepEqual(stage(g, 'glob', 'cmd').needs, ['produce']);
  assert.deepEqual(stage(g, 'parent', 'cmd').needs, ['produce']);
  assert.deepEqual(stage(g, 'unrelated', 'cmd').needs, []);
  assert.deepEqual(stage(g, 'images', 'builtin').needs, ['produce'], 'a built-in\'s fileDeps infer edges too');
  assert.deepEqual([...g.stages.keys()], ['produce', 'glob', 'parent', 'unrelated', 'images', 'consume']);
});

test('optional input slots map only when a stage of that name exists or the mapping is explicit', async () => {
  const base = ['name: x', 'stages:', '  features: {cmd: [f], outs: [f]}', '  train: {uses: train, with: {lr: 1}}'];
  const without = await rig.graph(base.join('\n'));
  assert.deepEqual(stage(without, 'train', 'builtin').inputs, { features: 'features' });
  const withVal = await rig.graph([...base, '  validation: {cmd: [v], outs: [v]}'].join('\n'));
  assert.deepEqual(stage(withVal, 'train', 'builtin').inputs, { features: 'features', validation: 'validation' });
  const explicit = await rig.graph([...base.slice(0, 3), '  val2: {cmd: [v], outs: [v]}', '  train: {uses: train, with: {lr: 1}, inputs: {validation: val2}}'].join('\n'));
  assert.deepEqual(stage(explicit, 'train', 'builtin').inputs, { features: 'features', validation: 'val2' });
  assert.deepEqual(stage(explicit, 'train', 'builtin').needs, ['features', 'val2']);
});
