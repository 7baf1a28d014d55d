import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, computeKey, diffFingerprints, engineVersion, type StageFingerprint } from '../../src/fingerprint.js';

const base: StageFingerprint = {
  engine: '0.1.0+fp1',
  stage: { kind: 'builtin', name: 'resize', version: '1' },
  params: { with: { size: [224, 224], mode: 'cover' }, 'train.lr': 0.01 },
  inputs: { 'data/raw': 'a'.repeat(64), 'labels.csv': 'b'.repeat(64) },
  upstream: { ingest: 'c'.repeat(64) },
  env: { SEED: '1' },
  runtime: { platform: 'linux', arch: 'x64', tfjsBackend: 'wasm' },
};

test('key is stable under object key order at every depth', () => {
  const reordered: StageFingerprint = {
    runtime: { tfjsBackend: 'wasm', arch: 'x64', platform: 'linux' },
    env: { SEED: '1' },
    upstream: { ingest: 'c'.repeat(64) },
    inputs: { 'labels.csv': 'b'.repeat(64), 'data/raw': 'a'.repeat(64) },
    params: { 'train.lr': 0.01, with: { mode: 'cover', size: [224, 224] } },
    stage: { version: '1', name: 'resize', kind: 'builtin' },
    engine: '0.1.0+fp1',
  };
  assert.equal(computeKey(reordered), computeKey(base));
  assert.match(computeKey(base), /^[0-9a-f]{64}$/);
  assert.equal(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] }), '{"a":[{"c":2,"d":1}],"b":1}');
  assert.match(engineVersion(), /^\d+\.\d+\.\d+.*\+fp\d+$/);
});

test('every field changes the key, and diffFingerprints names exactly that change', () => {
  const cases: [string, StageFingerprint, unknown[]][] = [
    ['engine', { ...base, engine: '0.2.0+fp1' }, [{ kind: 'engine', old: '0.1.0+fp1', new: '0.2.0+fp1' }]],
    ['code', { ...base, stage: { kind: 'builtin', name: 'resize', version: '2' } }, [{ kind: 'code', old: base.stage, new: { kind: 'builtin', name: 'resize', version: '2' } }]],
    ['param', { ...base, params: { ...base.params, 'train.lr': 0.02 } }, [{ kind: 'param', path: 'train.lr', old: 0.01, new: 0.02 }]],
    ['with', { ...base, params: { ...base.params, with: { size: [128, 128], mode: 'cover' } } }, [{ kind: 'param', path: 'with.size', old: [224, 224], new: [128, 128] }]],
    ['input modified', { ...base, inputs: { ...base.inputs, 'labels.csv': 'd'.repeat(64) } }, [{ kind: 'input', path: 'labels.csv', change: 'modified' }]],
    ['input missing', { ...base, inputs: { ...base.inputs, 'labels.csv': 'missing' } }, [{ kind: 'input', path: 'labels.csv', change: 'removed' }]],
    ['input added', { ...base, inputs: { ...base.inputs, 'extra.txt': 'e'.repeat(64) } }, [{ kind: 'input', path: 'extra.txt', change: 'added' }]],
    ['upstream', { ...base, upstream: { ingest: 'f'.repeat(64) } }, [{ kind: 'upstream', stage: 'ingest', change: 'modified' }]],
    ['env', { ...base, env: { SEED: '2' } }, [{ kind: 'env', name: 'SEED', old: '1', new: '2' }]],
    ['runtime', { ...base, runtime: { ...base.runtime, tfjsBackend: 'tensorflow' } }, [{ kind: 'runtime', field: 'tfjsBackend', old: 'wasm', new: 'tensorflow' }]],
    ['cmd argv', { ...base, stage: { kind: 'cmd', argv: ['python', 'x.py'], cwd: '.' } }, [{ kind: 'code', old: base.stage, new: { kind: 'cmd', argv: ['python', 'x.py'], cwd: '.' } }]],
  ];
  const keys = new Set([computeKey(base)]);
  for (const [name, fp, expected] of cases) {
    assert.notEqual(computeKey(fp), computeKey(base), name);
    keys.add(computeKey(fp));
    assert.deepEqual(diffFingerprints(base, fp), expected, name);
  }
  assert.equal(keys.size, cases.length + 1, 'all keys distinct');
  assert.deepEqual(diffFingerprints(base, structuredClone(base)), []);
});

test('argv is hashed structurally: ["a b"] and ["a", "b"] differ', () => {
  const one = { ...base, stage: { kind: 'cmd' as const, argv: ['echo', 'a b'], cwd: '.' } };
  const two = { ...base, stage: { kind: 'cmd' as const, argv: ['echo', 'a', 'b'], cwd: '.' } };
  assert.notEqual(computeKey(one), computeKey(two));
});

test('nested param diffs report leaf paths; arrays compare whole', () => {
  const a = { ...base, params: { train: { opt: { lr: 1, beta: 0.9 }, layers: [1, 2] } } };
  const b = { ...base, params: { train: { opt: { lr: 1, beta: 0.99 }, layers: [1, 2, 3], extra: true } } };
  assert.deepEqual(diffFingerprints(a, b), [
    { kind: 'param', path: 'train.extra', old: undefined, new: true },
    { kind: 'param', path: 'train.layers', old: [1, 2], new: [1, 2, 3] },
    { kind: 'param', path: 'train.opt.beta', old: 0.9, new: 0.99 },
  ]);
});

test('non-JSON numbers are a bug', () => {
  assert.throws(() => computeKey({ ...base, params: { x: Number.NaN } }));
});
