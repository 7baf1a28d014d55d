/**
 * Runtime facts in built-in stages' fingerprints (issue 2 §4): the real
 * readers against the installed sharp / tfjs packages, which stages declare
 * which facts, that cmd stages get none (their keys do not change), and how
 * `explain` words a runtime change.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { imageRuntimeFacts, installedPackage, tfjsRuntimeFacts } from '../../stages/lib/runtime-facts.js';
import { builtinStages } from '../../stages/registry.js';
import { describeChange, fingerprintStage, registryRuntimeFacts } from '../../src/plan.js';
import { computeKey, diffFingerprints } from '../../src/fingerprint.js';
import { loadPipeline } from '../../src/config/load.js';
import { openEngine } from '../../src/runner.js';
import type { StageId } from '../../src/pipeline.js';

const require = createRequire(import.meta.url);

test('imageRuntimeFacts reads the sharp and libvips versions sharp itself reports, without loading sharp', () => {
  const facts = imageRuntimeFacts();
  assert.ok(!Object.keys(require.cache).some((f) => f.includes(`${path.sep}node_modules${path.sep}sharp${path.sep}`)), 'sharp not loaded by the facts');
  const sharp = require('sharp') as { versions: { sharp: string; vips: string } };
  assert.deepEqual(facts, { sharp: sharp.versions.sharp, libvips: sharp.versions.vips });
});

test('tfjsRuntimeFacts: the installed tfjs version and the backend family initBackend would pick', () => {
  const tfjs = (require('@tensorflow/tfjs') as { version: { tfjs: string } }).version.tfjs;
  const hasNode = installedPackage('@tensorflow/tfjs-node')?.version === tfjs;
  const hasGpu = installedPackage('@tensorflow/tfjs-node-gpu')?.version === tfjs;
  const auto = tfjsRuntimeFacts({ device: 'auto', backend: null });
  assert.equal(auto.tfjs, tfjs);
  assert.equal(auto.tfjsBackend, hasGpu ? 'tensorflow-gpu' : hasNode ? 'tensorflow' : 'wasm');
  assert.equal(tfjsRuntimeFacts({ device: 'cpu', backend: null }).tfjsBackend, hasNode ? 'tensorflow' : 'wasm', 'device cpu never picks the GPU package');
  assert.equal(tfjsRuntimeFacts({ device: 'auto', backend: 'cpu' }).tfjsBackend, 'cpu');
  assert.equal(tfjsRuntimeFacts({ device: 'auto', backend: 'wasm' }).tfjsBackend, 'wasm');
  assert.equal(tfjsRuntimeFacts({ device: 'gpu', backend: null }).tfjsBackend, 'tensorflow-gpu');
  assert.equal(installedPackage('@tensorflow/no-such-package-here'), undefined);
});

test('image stages declare sharp/libvips, model stages tfjs/tfjsBackend, partition nothing', async () => {
  const compute = { device: 'auto', backend: null, threads: null };
  const want: Record<string, string[]> = {
    ingest: ['libvips', 'sharp'],
    resize: ['libvips', 'sharp'],
    augment: ['libvips', 'sharp'],
    partition: [],
    'build-model': ['tfjs', 'tfjsBackend'],
    features: ['tfjs', 'tfjsBackend'],
    train: ['tfjs', 'tfjsBackend'],
    evaluate: ['libvips', 'sharp', 'tfjs', 'tfjsBackend'],
    predict: ['libvips', 'sharp', 'tfjs', 'tfjsBackend'],
  };
  assert.deepEqual([...builtinStages.keys()].sort(), Object.keys(want).sort(), 'every built-in is covered');
  for (const [name, keys] of Object.entries(want)) {
    const facts = await registryRuntimeFacts(name, compute);
    assert.deepEqual(Object.keys(facts).sort(), keys, name);
    for (const k of keys) assert.match(facts[k]!, /^[\w.-]+$/, `${name}.${k}`);
  }
  // A backend param changes the model stages' facts.
  assert.equal((await registryRuntimeFacts('train', { ...compute, backend: 'cpu' })).tfjsBackend, 'cpu');
});

test('fingerprints: a built-in gets its facts in runtime beside platform/arch; a cmd stage only platform/arch', async () => {
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'rt-facts-')));
  try {
    await fs.mkdir(path.join(dir, 'images', 'a'), { recursive: true });
    await fs.writeFile(
      path.join(dir, 'pipeline.yaml'),
      JSON.stringify({
        name: 'rt',
        stages: {
          ingest: { uses: 'ingest', with: { source: 'images' } },
          split: { uses: 'partition' },
          tool: { cmd: [process.execPath, '-e', '1'], outs: ['o.txt'] },
        },
      }),
    );
    const g = await loadPipeline(path.join(dir, 'pipeline.yaml'), { graphCacheDir: false });
    assert.ok(g.ok, JSON.stringify(!g.ok && g.error));
    const eng = await openEngine(g.value, path.join(dir, 'cache'));
    const node = (id: string) => g.value.stages.get(id as StageId)!;
    const ingest = await fingerprintStage(node('ingest'), eng.deps, new Map());
    assert.deepEqual(ingest.runtime, { ...imageRuntimeFacts(), platform: process.platform, arch: process.arch });
    const tool = await fingerprintStage(node('tool'), eng.deps, new Map());
    assert.deepEqual(tool.runtime, { platform: process.platform, arch: process.arch }, 'cmd stage keys are unchanged');
    const split = await fingerprintStage(node('split'), eng.deps, new Map([['ingest' as StageId, 'x']]));
    assert.deepEqual(split.runtime, { platform: process.platform, arch: process.arch });

    // The injection seam: a different sharp makes a different key, and the change reads plainly.
    const older = await fingerprintStage(node('ingest'), { ...eng.deps, builtinRuntime: async () => ({ ...imageRuntimeFacts(), sharp: '0.34.1' }) }, new Map());
    assert.notEqual(computeKey(older), computeKey(ingest));
    const changes = diffFingerprints(older, ingest);
    assert.deepEqual(changes, [{ kind: 'runtime', field: 'sharp', old: '0.34.1', new: imageRuntimeFacts().sharp }]);
    assert.equal(describeChange(changes[0]!), `runtime sharp changed: 0.34.1 → ${imageRuntimeFacts().sharp}`);
    assert.equal(describeChange({ kind: 'runtime', field: 'tfjsBackend', old: undefined, new: 'wasm' }), 'runtime tfjsBackend changed: (unset) → wasm');
    await eng.hasher.save().catch(() => {});
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
