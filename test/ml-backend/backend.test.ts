/**
 * Backend selection: explicit cpu, auto order with the optional native
 * packages absent (as on this machine), and device gpu without a GPU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpus } from 'node:os';
import { defaultWasmThreads, describeChoice, initBackend } from '../../stages/ml/backend.js';

async function nativeInstalled(pkg: string): Promise<boolean> {
  try {
    await import(pkg);
    return true;
  } catch {
    return false;
  }
}

test('explicit cpu backend', async () => {
  const r = await initBackend({ device: 'cpu', backend: 'cpu' });
  assert.ok(r.ok);
  assert.equal(r.value.choice.name, 'cpu');
  assert.equal(r.value.tf.getBackend(), 'cpu');
  assert.equal(r.value.choice.threads, 1);
  assert.equal(describeChoice(r.value.choice), 'cpu (@tensorflow/tfjs-backend-cpu, 1 thread)');
});

test('device gpu without a usable GPU is an error value naming what to install', async () => {
  const r = await initBackend({ device: 'gpu' });
  if (r.ok) {
    assert.equal(r.value.choice.gpu, true, 'a gpu choice must really be on a GPU');
    return;
  }
  assert.equal(r.error.reason, 'gpu-unavailable');
  assert.match(r.error.message, /tfjs-node-gpu/);
  assert.equal(r.error.notes.length, 1);
  assert.match(r.error.notes[0]!, /^tfjs-node-gpu: (not installed|failed to load|loaded, but)/);
});

test('device gpu with backend wasm is refused', async () => {
  const r = await initBackend({ device: 'gpu', backend: 'wasm' });
  assert.equal(r.ok, false);
});

test('auto falls back past missing native packages to wasm, one note per skipped package', async () => {
  const r = await initBackend({ device: 'auto', threads: 1 });
  assert.ok(r.ok);
  const { choice, tf } = r.value;
  if (!(await nativeInstalled('@tensorflow/tfjs-node')) && !(await nativeInstalled('@tensorflow/tfjs-node-gpu'))) {
    assert.equal(choice.name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.deepEqual(choice.notes, ['tfjs-node-gpu: not installed -> falling back', 'tfjs-node: not installed -> falling back']);
    assert.equal(choice.threads, 1);
    const { backendLine } = await import('../../stages/ml/runtime.js');
    assert.equal(backendLine(choice), 'backend wasm (@tensorflow/tfjs-backend-wasm), 1 thread; skipped tfjs-node-gpu: not installed; tfjs-node: not installed');
    // The wasm binary really computes.
    const y = tf.tidy(() => tf.conv2d(tf.ones([1, 3, 3, 1]) as import('@tensorflow/tfjs').Tensor4D, tf.ones([3, 3, 1, 1]) as import('@tensorflow/tfjs').Tensor4D, 1, 'same').dataSync());
    assert.deepEqual(Array.from(y), [4, 6, 4, 6, 9, 6, 4, 6, 4]);
  } else {
    assert.equal(choice.name, 'tensorflow');
  }
});

test('device cpu skips the GPU package; a second wasm init reports the fixed thread count', async () => {
  const r = await initBackend({ device: 'cpu', backend: 'wasm', threads: 3 });
  assert.ok(r.ok);
  assert.equal(r.value.choice.name, 'wasm');
  assert.equal(r.value.choice.threads, 1);
  assert.ok(r.value.choice.notes.some((n) => /already running with 1 threads/.test(n)), r.value.choice.notes.join('|'));
  assert.ok(!r.value.choice.notes.some((n) => n.includes('gpu')));
});

test('default wasm threads: all cores (max 8) for inference; training drops to 1 only on an oversubscribed machine', () => {
  const cores = Math.min(8, cpus().length);
  assert.equal(defaultWasmThreads(), cores);
  assert.equal(defaultWasmThreads('inference'), cores);
  assert.ok([1, cores].includes(defaultWasmThreads('training')));
});
