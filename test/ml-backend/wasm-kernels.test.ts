/**
 * The wasm training kernels against the `cpu` backend's numbers, on random
 * inputs over strides, paddings, dilations and channel multipliers, and a
 * small CNN that must learn on wasm.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../stages/ml/backend.js';
import { WASM_KERNEL_OVERRIDES, WASM_TRAINING_KERNELS, registerWasmTrainingKernels } from '../../stages/ml/wasm-kernels/index.js';
import { FUSED_TRAINING_KERNELS, registerFusedTrainingKernels } from '../../stages/ml/wasm-kernels/fused-train.js';
import type * as tfjs from '@tensorflow/tfjs';

const init = await initBackend({ device: 'cpu', backend: 'wasm', threads: 1 });
assert.ok(init.ok, JSON.stringify(!init.ok && init.error));
const { tf } = init.value;

/** Deterministic pseudo-random values in [-1, 1). */
function rand(shape: number[], seed: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

type Inputs = Record<string, { shape: number[]; values: Float32Array | Int32Array; dtype?: 'float32' | 'int32' }>;

async function runOn(backend: 'cpu' | 'wasm', kernel: string, inputs: Inputs, attrs: Record<string, unknown>): Promise<{ shape: number[]; values: Float32Array }> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const ins = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.values, v.shape, v.dtype ?? 'float32')]));
    const out = tf.engine().runKernel(kernel, ins, attrs as never) as import('@tensorflow/tfjs').Tensor;
    return { shape: out.shape, values: out.dataSync() as Float32Array };
  });
}

function assertClose(actual: { shape: number[]; values: Float32Array }, expected: { shape: number[]; values: Float32Array }, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  let scale = 0;
  for (const v of expected.values) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < expected.values.length; i++) {
    const d = Math.abs(actual.values[i]! - expected.values[i]!);
    if (d > 1e-4 * Math.max(1, scale)) assert.fail(`${what}: element ${i}: wasm ${actual.values[i]} vs cpu ${expected.values[i]} (scale ${scale})`);
  }
}

async function compare(kernel: string, inputs: Inputs, attrs: Record<string, unknown>, what: string): Promise<void> {
  const expected = await runOn('cpu', kernel, inputs, attrs);
  const actual = await runOn('wasm', kernel, inputs, attrs);
  assertClose(actual, expected, `${kernel} ${what}`);
}

function outSize(inSize: number, k: number, s: number, d: number, pad: unknown): number {
  const ke = (k - 1) * d + 1;
  if (pad === 'same') return Math.ceil(inSize / s);
  if (pad === 'valid') return Math.ceil((inSize - ke + 1) / s);
  const p = pad as number;
  return Math.floor((inSize + 2 * p - ke) / s) + 1;
}

const PADS: unknown[] = ['same', 'valid', 1];

/**
 * The cpu backprop kernels ignore `dilations` (tfjs-core never asks for dilated
 * gradients), so dilated cases are checked against the cpu result for the
 * equivalent undilated filter of size (k-1)·d+1 with zeros between the taps.
 */
function dilateFilter(values: Float32Array, [kh, kw, c, m]: number[], d: number): { shape: number[]; values: Float32Array } {
  const eh = (kh! - 1) * d + 1;
  const ew = (kw! - 1) * d + 1;
  const out = new Float32Array(eh * ew * c! * m!);
  for (let i = 0; i < kh!; i++)
    for (let j = 0; j < kw!; j++)
      for (let q = 0; q < c! * m!; q++) out[(i * d * ew + j * d) * c! * m! + q] = values[(i * kw! + j) * c! * m! + q]!;
  return { shape: [eh, ew, c!, m!], values: out };
}

function undilateFilter(r: { shape: number[]; values: Float32Array }, d: number): { shape: number[]; values: Float32Array } {
  const [eh, ew, c, m] = r.shape as [number, number, number, number];
  const kh = (eh - 1) / d + 1;
  const kw = (ew - 1) / d + 1;
  const out = new Float32Array(kh * kw * c * m);
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++)
      for (let q = 0; q < c * m; q++) out[(i * kw + j) * c * m + q] = r.values[(i * d * ew + j * d) * c * m + q]!;
  return { shape: [kh, kw, c, m], values: out };
}

test('registerWasmTrainingKernels is idempotent and covers the kernels wasm lacks', () => {
  for (const name of Object.keys(WASM_TRAINING_KERNELS)) assert.ok(tf.getKernel(name, 'wasm'), `${name} registered`);
  for (const name of Object.keys(WASM_KERNEL_OVERRIDES)) assert.ok(tf.getKernel(name, 'wasm'), `${name} still registered`);
  assert.deepEqual(registerWasmTrainingKernels(tf), []);
});

test('Conv2DBackpropFilter matches cpu over strides, paddings and filter sizes', async () => {
  let seed = 1;
  for (const [k, s] of [[3, 1], [3, 2], [1, 1], [5, 3], [2, 2]] as const) {
    for (const pad of PADS) {
      const [b, h, w, cin, cout] = [2, 11, 9, 3, 5];
      const oh = outSize(h, k, s, 1, pad);
      const ow = outSize(w, k, s, 1, pad);
      await compare(
        'Conv2DBackpropFilter',
        { x: { shape: [b, h, w, cin], values: rand([b, h, w, cin], seed++) }, dy: { shape: [b, oh, ow, cout], values: rand([b, oh, ow, cout], seed++) } },
        { strides: [s, s], pad, dataFormat: 'NHWC', filterShape: [k, k, cin, cout] },
        `k=${k} s=${s} pad=${String(pad)}`,
      );
    }
  }
});

test('DepthwiseConv2dNativeBackpropFilter matches cpu over strides, dilations, paddings and multipliers', async () => {
  let seed = 100;
  for (const [k, s, d, m] of [[3, 1, 1, 1], [3, 2, 1, 1], [3, 1, 2, 2], [5, 2, 1, 2], [1, 1, 1, 3]] as const) {
    for (const pad of PADS) {
      if (s > 1 && d > 1) continue;
      const [b, h, w, cin] = [2, 10, 9, 4];
      const oh = outSize(h, k, s, d, pad);
      const ow = outSize(w, k, s, d, pad);
      const inputs: Inputs = { x: { shape: [b, h, w, cin], values: rand([b, h, w, cin], seed++) }, dy: { shape: [b, oh, ow, cin * m], values: rand([b, oh, ow, cin * m], seed++) } };
      const what = `DepthwiseConv2dNativeBackpropFilter k=${k} s=${s} d=${d} m=${m} pad=${String(pad)}`;
      const attrs = { strides: [s, s], dilations: [d, d], pad, filterShape: [k, k, cin, m] };
      if (d === 1) {
        await compare('DepthwiseConv2dNativeBackpropFilter', inputs, attrs, what);
      } else {
        const ek = (k - 1) * d + 1;
        const expected = undilateFilter(await runOn('cpu', 'DepthwiseConv2dNativeBackpropFilter', inputs, { ...attrs, dilations: [1, 1], filterShape: [ek, ek, cin, m] }), d);
        assertClose(await runOn('wasm', 'DepthwiseConv2dNativeBackpropFilter', inputs, attrs), expected, what);
      }
    }
  }
});

test('DepthwiseConv2dNativeBackpropInput matches cpu over strides, dilations, paddings and multipliers', async () => {
  let seed = 200;
  for (const [k, s, d, m] of [[3, 1, 1, 1], [3, 2, 1, 1], [3, 1, 2, 1], [5, 2, 1, 2], [1, 1, 1, 3], [3, 3, 1, 1], [2, 2, 1, 1]] as const) {
    for (const pad of PADS) {
      if (s > 1 && d > 1) continue;
      const [b, h, w, cin] = [2, 10, 9, 4];
      const oh = outSize(h, k, s, d, pad);
      const ow = outSize(w, k, s, d, pad);
      const dy = { shape: [b, oh, ow, cin * m], values: rand([b, oh, ow, cin * m], seed++) };
      const filter = { shape: [k, k, cin, m], values: rand([k, k, cin, m], seed++) };
      const attrs = { strides: [s, s], dilations: [d, d], pad, inputShape: [b, h, w, cin] };
      const what = `DepthwiseConv2dNativeBackpropInput k=${k} s=${s} d=${d} m=${m} pad=${String(pad)}`;
      const expected = await runOn('cpu', 'DepthwiseConv2dNativeBackpropInput', { dy, filter: d === 1 ? filter : dilateFilter(filter.values, filter.shape, d) }, { ...attrs, dilations: [1, 1] });
      assertClose(await runOn('wasm', 'DepthwiseConv2dNativeBackpropInput', { dy, filter }, attrs), expected, what);
    }
  }
});

test('Conv2DBackpropInput (XNNPACK override) matches cpu over strides, paddings and filter sizes', async () => {
  let seed = 300;
  for (const [k, s] of [[3, 1], [3, 2], [1, 1], [5, 3], [2, 2], [1, 2]] as const) {
    for (const pad of PADS) {
      const [b, h, w, cin, cout] = [2, 11, 9, 3, 5];
      const oh = outSize(h, k, s, 1, pad);
      const ow = outSize(w, k, s, 1, pad);
      await compare(
        'Conv2DBackpropInput',
        { dy: { shape: [b, oh, ow, cout], values: rand([b, oh, ow, cout], seed++) }, filter: { shape: [k, k, cin, cout], values: rand([k, k, cin, cout], seed++) } },
        { strides: [s, s], pad, dataFormat: 'NHWC', inputShape: [b, h, w, cin] },
        `k=${k} s=${s} pad=${String(pad)}`,
      );
    }
  }
});

test('BatchMatMul and _FusedMatMul with transposed operands (XNNPACK override) match cpu', async () => {
  let seed = 400;
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    for (const batch of [[1], [3], [1, 1]]) {
      const [m, k, n] = [7, 13, 5];
      const aShape = [...batch, ...(ta ? [k, m] : [m, k])];
      const bShape = [...batch, ...(tb ? [n, k] : [k, n])];
      const inputs: Inputs = { a: { shape: aShape, values: rand(aShape, seed++) }, b: { shape: bShape, values: rand(bShape, seed++) } };
      await compare('BatchMatMul', inputs, { transposeA: ta, transposeB: tb }, `ta=${ta} tb=${tb} batch=${batch.join('x')}`);
      if (batch.length === 1) {
        await compare(
          '_FusedMatMul',
          { ...inputs, bias: { shape: [n], values: rand([n], seed++) } },
          { transposeA: ta, transposeB: tb, activation: 'relu' },
          `fused ta=${ta} tb=${tb} batch=${batch.join('x')}`,
        );
      }
    }
  }
});

test('Tile (block-copy override) matches cpu for float32, int32 and bool', async () => {
  const cases: [number[], number[]][] = [[[1, 1, 1, 5], [2, 3, 4, 1]], [[2, 3], [3, 2]], [[4, 1], [1, 20]], [[3], [5]], [[2, 1, 3], [1, 0, 2]], [[2, 2, 2], [1, 1, 1]]];
  let seed = 500;
  for (const [shape, reps] of cases) {
    const values = rand(shape, seed++);
    await compare('Tile', { x: { shape, values } }, { reps }, `f32 ${shape} x ${reps}`);
    const ints = Int32Array.from(values, (v) => Math.round(v * 100));
    const want = await runOn('cpu', 'Tile', { x: { shape, values: ints, dtype: 'int32' } }, { reps });
    const got = await runOn('wasm', 'Tile', { x: { shape, values: ints, dtype: 'int32' } }, { reps });
    assert.deepEqual(Array.from(got.values), Array.from(want.values), `i32 ${shape} x ${reps}`);
  }
  await tf.setBackend('wasm');
  const b = tf.tidy(() => tf.tile(tf.tensor2d([[true, false]], [1, 2], 'bool'), [2, 2]).arraySync());
  assert.deepEqual(b, [[1, 0, 1, 0], [1, 0, 1, 0]]);
});

test('Sum (leading-axes override) matches cpu, with and without keepDims, and other axes', async () => {
  let seed = 600;
  for (const [shape, axis] of [[[6, 5, 4, 3], [0, 1, 2]], [[6, 5, 4, 3], [0]], [[6, 5, 4, 3], [1, 0]], [[6, 5, 4, 3], [3]], [[6, 5, 4, 3], [0, 2]], [[7, 9], [-2]], [[8], [0]]] as [number[], number[]][]) {
    for (const keepDims of [false, true]) {
      await compare('Sum', { x: { shape, values: rand(shape, seed++) } }, { axis, keepDims }, `${shape} axis ${axis} keepDims ${keepDims}`);
    }
  }
});

test('MaxPoolGrad (JS override) matches cpu over pool sizes, strides and paddings, with ties', async () => {
  let seed = 700;
  for (const [f, s] of [[2, 2], [3, 2], [3, 1], [2, 1], [1, 1]] as const) {
    for (const pad of ['valid', 'same', 1] as const) {
      if (typeof pad === 'number' && pad >= f) continue;
      const shape = [2, 9, 8, 3];
      const values = rand(shape, seed++).map((v) => Math.round(v * 4) / 4); // quantised: many ties
      await tf.setBackend('cpu');
      const out = tf.tidy(() => tf.maxPool(tf.tensor4d(values, shape as [number, number, number, number]), f, s, pad));
      const outShape = out.shape;
      const outValues = out.dataSync() as Float32Array;
      out.dispose();
      await compare(
        'MaxPoolGrad',
        { dy: { shape: outShape, values: rand(outShape, seed++) }, input: { shape, values }, output: { shape: outShape, values: outValues } },
        { filterSize: [f, f], strides: [s, s], pad },
        `f=${f} s=${s} pad=${pad}`,
      );
    }
  }
});

test('UnsortedSegmentSum matches cpu, including out-of-range ids', async () => {
  await compare(
    'UnsortedSegmentSum',
    { x: { shape: [6, 3, 2], values: rand([6, 3, 2], 7) }, segmentIds: { shape: [6], values: new Int32Array([2, 0, 2, -1, 4, 1]), dtype: 'int32' } },
    { numSegments: 4 },
    'rank 3',
  );
});

test('gradients of conv2d / depthwise / gather through tf.grads match cpu', async () => {
  const x0 = rand([2, 8, 8, 3], 11);
  const f0 = rand([3, 3, 3, 4], 12);
  const d0 = rand([3, 3, 4, 2], 13);
  const e0 = rand([5, 4], 14);
  const grads = async (backend: 'cpu' | 'wasm') => {
    await tf.setBackend(backend);
    return tf.tidy(() => {
      const g = tf.grads((x: import('@tensorflow/tfjs').Tensor, f: import('@tensorflow/tfjs').Tensor, d: import('@tensorflow/tfjs').Tensor, e: import('@tensorflow/tfjs').Tensor) => {
        const y = tf.conv2d(x as import('@tensorflow/tfjs').Tensor4D, f as import('@tensorflow/tfjs').Tensor4D, 2, 'same');
        const z = tf.depthwiseConv2d(y, d as import('@tensorflow/tfjs').Tensor4D, 1, 'same');
        const emb = tf.gather(e, tf.tensor1d([1, 3, 3, 0], 'int32'));
        return tf.add(tf.sum(tf.square(z)), tf.sum(tf.mul(emb, emb)));
      });
      return g([tf.tensor(x0, [2, 8, 8, 3]), tf.tensor(f0, [3, 3, 3, 4]), tf.tensor(d0, [3, 3, 4, 2]), tf.tensor(e0, [5, 4])]).map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
    });
  };
  const want = await grads('cpu');
  const got = await grads('wasm');
  for (let i = 0; i < want.length; i++) assertClose(got[i]!, want[i]!, `grad ${i}`);
});

// --- Fused training kernels (wasm-kernels/fused-train.ts): wasm and cpu against tfjs ops on cpu. ---

type Out = { shape: number[]; values: Float32Array };
const asOut = (t: tfjs.Tensor): Out => ({ shape: t.shape, values: Float32Array.from(t.dataSync() as Float32Array) });

async function fusedOn(backend: 'cpu' | 'wasm', kernel: string, inputs: Inputs, attrs: Record<string, unknown>): Promise<Out[]> {
  await tf.setBackend(backend);
  registerFusedTrainingKernels(tf, backend);
  return tf.tidy(() => {
    const ins = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.values, v.shape, v.dtype ?? 'float32')]));
    const out = tf.engine().runKernel(kernel, ins, attrs as never) as tfjs.Tensor | tfjs.Tensor[];
    return (Array.isArray(out) ? out : [out]).map(asOut);
  });
}

test('fused kernels register for wasm and cpu, idempotently', async () => {
  for (const b of ['wasm', 'cpu']) {
    registerFusedTrainingKernels(tf, b);
    for (const name of Object.keys(FUSED_TRAINING_KERNELS)) assert.ok(tf.getKernel(name, b), `${name} on ${b}`);
    assert.deepEqual(registerFusedTrainingKernels(tf, b), []);
  }
});

test('FgBatchNormTrain / FgBatchNormTrainGrad (with and without ReLU) match tfjs moments, batchNorm and gradients', async () => {
  let seed = 900;
  for (const shape of [[3, 5, 4, 6], [7, 3]]) {
    const c = shape.at(-1)!;
    const x = rand(shape, seed++).map((v) => v * 3 + 0.5);
    const gamma = rand([c], seed++).map((v) => 1 + 0.5 * v);
    const beta = rand([c], seed++);
    const dy = rand(shape, seed++);
    const eps = 1e-3;
    for (const relu of [false, true]) {
      await tf.setBackend('cpu');
      const want = tf.tidy(() => {
        const axes = shape.slice(0, -1).map((_, i) => i);
        const f = (xi: tfjs.Tensor, g: tfjs.Tensor, b: tfjs.Tensor): tfjs.Tensor => {
          const { mean, variance } = tf.moments(xi, axes);
          const y = tf.batchNorm(xi, mean, variance, b, g, eps);
          return relu ? tf.relu(y) : y;
        };
        const [xt, gt, bt, dyt] = [tf.tensor(x, shape), tf.tensor1d(gamma), tf.tensor1d(beta), tf.tensor(dy, shape)];
        const { mean, variance } = tf.moments(xt, axes);
        const grads = tf.grads(f)([xt, gt, bt], dyt);
        return { y: asOut(f(xt, gt, bt)), mean: asOut(mean), variance: asOut(variance), grads: grads.map(asOut) };
      });
      for (const backend of ['wasm', 'cpu'] as const) {
        const what = `${backend} shape ${shape.join('x')} relu ${relu}`;
        const [y, mean, variance, invstd] = await fusedOn(backend, 'FgBatchNormTrain', { x: { shape, values: x }, gamma: { shape: [c], values: gamma }, beta: { shape: [c], values: beta } }, { epsilon: eps, relu });
        assertClose(y!, want.y, `FgBatchNormTrain y ${what}`);
        assertClose(mean!, want.mean, `FgBatchNormTrain mean ${what}`);
        assertClose(variance!, want.variance, `FgBatchNormTrain variance ${what}`);
        assertClose(invstd!, { shape: [c], values: want.variance.values.map((v) => 1 / Math.sqrt(v + eps)) }, `FgBatchNormTrain invstd ${what}`);
        const grads = await fusedOn(
          backend,
          'FgBatchNormTrainGrad',
          { dy: { shape, values: dy }, x: { shape, values: x }, mean: mean!, invstd: invstd!, gamma: { shape: [c], values: gamma }, beta: { shape: [c], values: beta } },
          { relu },
        );
        grads.forEach((g, i) => assertClose(g, want.grads[i]!, `FgBatchNormTrainGrad ${['dx', 'dgamma', 'dbeta'][i]} ${what}`));
      }
    }
  }
});

test('FgMaxPool2x2 / FgMaxPool2x2Grad match tfjs maxPool and its gradient (no ties), and ReLU-zero ties', async () => {
  const shape = [2, 6, 8, 5];
  const x = rand(shape, 950);
  // A window of ReLU zeros (a tie): every zero gets dy (the ReLU mask before it drops them in a CNN).
  for (const off of [0, 5, 8 * 5, 8 * 5 + 5]) x[off] = 0;
  for (const off of [0, 5, 8 * 5, 8 * 5 + 5]) x[off + 1] = -0.5 - off / 1000;
  const dy = rand([2, 3, 4, 5], 951);
  await tf.setBackend('cpu');
  const want = tf.tidy(() => {
    const f = (xi: tfjs.Tensor): tfjs.Tensor => tf.maxPool(xi as tfjs.Tensor4D, 2, 2, 'valid');
    const xt = tf.tensor(x, shape);
    return { y: asOut(f(xt)), dx: asOut(tf.grad(f)(xt, tf.tensor(dy, [2, 3, 4, 5]))) };
  });
  for (const backend of ['wasm', 'cpu'] as const) {
    const [y] = await fusedOn(backend, 'FgMaxPool2x2', { x: { shape, values: x } }, {});
    assertClose(y!, want.y, `FgMaxPool2x2 ${backend}`);
    const [dx] = await fusedOn(backend, 'FgMaxPool2x2Grad', { dy: { shape: [2, 3, 4, 5], values: dy }, x: { shape, values: x }, y: y! }, {});
    const tie = { ...want.dx, values: Float32Array.from(want.dx.values) };
    for (const off of [0, 5, 8 * 5, 8 * 5 + 5]) tie.values[off] = dy[0]!;
    assertClose(dx!, tie, `FgMaxPool2x2Grad ${backend}`);
  }
});

test('FgIm2ColT patches times dy equals the conv filter gradient (same and valid padding, 1 and 3 channels)', async () => {
  let seed = 960;
  for (const [cin, k, pad] of [[1, 3, 'same'], [3, 3, 'valid'], [1, 5, 'same'], [2, 1, 'valid']] as const) {
    const [b, h, w, cout] = [2, 7, 6, 4];
    const p = pad === 'same' ? (k - 1) / 2 : 0;
    const [oh, ow] = [h + 2 * p - k + 1, w + 2 * p - k + 1];
    const x = rand([b, h, w, cin], seed++);
    const dy = rand([b, oh, ow, cout], seed++);
    await tf.setBackend('cpu');
    const want = tf.tidy(() =>
      asOut(tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.tensor4d(x, [b, h, w, cin]), dy: tf.tensor4d(dy, [b, oh, ow, cout]) }, { strides: [1, 1], pad, dataFormat: 'NHWC', filterShape: [k, k, cin, cout] } as never) as tfjs.Tensor),
    );
    for (const backend of ['wasm', 'cpu'] as const) {
      const [patches] = await fusedOn(backend, 'FgIm2ColT', { x: { shape: [b, h, w, cin], values: x } }, { kh: k, kw: k, padTop: p, padLeft: p, outHeight: oh, outWidth: ow });
      assert.deepEqual(patches!.shape, [k * k * cin, b * oh * ow]);
      await tf.setBackend('cpu');
      const got = tf.tidy(() => asOut(tf.reshape(tf.matMul(tf.tensor2d(patches!.values, patches!.shape as [number, number]), tf.tensor2d(dy, [b * oh * ow, cout])), [k, k, cin, cout])));
      assertClose(got, want, `FgIm2ColT ${backend} cin=${cin} k=${k} ${pad}`);
    }
  }
});
