/**
 * The threaded wasm build under Node (see stages/ml/wasm-threads.ts): the
 * pool really has 2 threads and computes the same numbers as the cpu backend.
 * The process must still exit (the test runner would time out otherwise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../stages/ml/backend.js';

test('wasm with 2 threads: pool size 2, conv and matmul agree with cpu', async () => {
  const r = await initBackend({ device: 'cpu', backend: 'wasm', threads: 2 });
  assert.ok(r.ok);
  const { tf, choice } = r.value;
  assert.equal(choice.name, 'wasm');
  assert.equal(choice.threads, 2, choice.notes.join('|'));
  assert.equal(typeof (globalThis as { Worker?: unknown }).Worker, 'undefined', 'the Worker shim is removed after init');
  const compute = () =>
    tf.tidy(() => {
      const x = tf.randomUniform([4, 32, 32, 16], -1, 1, 'float32', 3) as import('@tensorflow/tfjs').Tensor4D;
      const f = tf.randomUniform([3, 3, 16, 32], -1, 1, 'float32', 4) as import('@tensorflow/tfjs').Tensor4D;
      const y = tf.conv2d(x, f, 1, 'same');
      return tf.matMul(tf.reshape(y, [4, -1]), tf.reshape(y, [4, -1]), false, true).dataSync() as Float32Array;
    });
  const wasm = compute();
  await tf.setBackend('cpu');
  const cpu = compute();
  for (let i = 0; i < cpu.length; i++) assert.ok(Math.abs(wasm[i]! - cpu[i]!) <= 1e-4 * Math.abs(cpu[i]!) + 1e-2, `${i}: ${wasm[i]} vs ${cpu[i]}`);
});
