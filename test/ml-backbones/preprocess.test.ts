import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { preprocess, PREPROCESSING_KINDS } from '../../stages/ml/backbones/registry.js';

await tf.setBackend('cpu');

/** Two RGB pixels, values chosen so every mode's arithmetic is easy to check by hand. */
const PIXELS = [0, 127.5, 255, 10, 20, 30];

function run(kind: (typeof PREPROCESSING_KINDS)[number]): number[] {
  const x = tf.tensor4d(PIXELS, [1, 1, 2, 3]);
  const y = preprocess(tf, kind, x);
  const out = Array.from(y.dataSync());
  assert.deepEqual(y.shape, [1, 1, 2, 3]);
  assert.ok(!x.isDisposed, 'input is not disposed');
  x.dispose();
  y.dispose();
  return out;
}

function close(got: number[], want: number[]): void {
  assert.equal(got.length, want.length);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) < 1e-4, `[${i}] ${g} vs ${want[i]}`));
}

test('preprocess tf: x/127.5 - 1', () => close(run('tf'), [-1, 0, 1, 10 / 127.5 - 1, 20 / 127.5 - 1, 30 / 127.5 - 1]));

test('preprocess caffe: RGB→BGR minus [103.939, 116.779, 123.68]', () =>
  close(run('caffe'), [255 - 103.939, 127.5 - 116.779, 0 - 123.68, 30 - 103.939, 20 - 116.779, 10 - 123.68]));

test('preprocess unit: x/255', () => close(run('unit'), [0, 0.5, 1, 10 / 255, 20 / 255, 30 / 255]));

test('preprocess none: unchanged copy', () => close(run('none'), PIXELS));

test('preprocess caffe refuses grayscale; no tensors leak', () => {
  const before = tf.memory().numTensors;
  const g = tf.zeros([1, 2, 2, 1]) as tf.Tensor4D;
  assert.throws(() => preprocess(tf, 'caffe', g), /needs 3 channels, got 1/);
  g.dispose();
  for (const k of PREPROCESSING_KINDS) if (k !== 'caffe') run(k);
  assert.equal(tf.memory().numTensors, before);
});
