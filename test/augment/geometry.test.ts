import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyTransform, applyTransformFloat, type WarpOptions } from '../../stages/lib/augment/apply.js';
import { IDENTITY_TRANSFORM, type TransformParams } from '../../stages/lib/augment/random-transform.js';
import { samplingMatrix } from '../../stages/lib/augment/affine.js';
import type { FillMode } from '../../stages/lib/augment/params.js';

const bilinear = (fillMode: FillMode = 'nearest', cval = 0): WarpOptions => ({ fillMode, cval, interpolationOrder: 1 });
const t = (p: Partial<TransformParams>): TransformParams => ({ ...IDENTITY_TRANSFORM, ...p });
const gray = (height: number, width: number) => ({ height, width, channels: 1 });
/** 4x4 single-channel image with value 4*row + col. */
const ramp4 = Uint8Array.from({ length: 16 }, (_, i) => i);

function assertClose(actual: ArrayLike<number>, expected: readonly number[], eps = 1e-4): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= eps, `index ${i}: got ${actual[i]}, expected ${expected[i]} (all: ${Array.from(actual).join(',')})`);
  }
}

test('horizontal flip of a 3x3 mirrors each row', () => {
  const src = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(Array.from(applyTransform(src, gray(3, 3), t({ flipHorizontal: true }), bilinear())), [3, 2, 1, 6, 5, 4, 9, 8, 7]);
});

test('vertical flip of a 3x3 RGB image mirrors rows and keeps channel order', () => {
  const src = Uint8Array.from({ length: 27 }, (_, i) => i);
  const out = applyTransform(src, { height: 3, width: 3, channels: 3 }, t({ flipVertical: true }), bilinear());
  assert.deepEqual(Array.from(out.subarray(0, 9)), [18, 19, 20, 21, 22, 23, 24, 25, 26]);
  assert.deepEqual(Array.from(out.subarray(18, 27)), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
});

test('theta = 90 on a 4x4 is an exact quarter turn: out[r][c] = in[c][3 - r]', () => {
  // Keras: rotation matrix about the centre (1.5, 1.5), axes swapped for HWC.
  const out = applyTransform(ramp4, gray(4, 4), t({ theta: 90 }), bilinear());
  assert.deepEqual(Array.from(out), [3, 7, 11, 15, 2, 6, 10, 14, 1, 5, 9, 13, 0, 4, 8, 12]);
  // Before quantisation the float result is within float noise of the same (cos 90deg is 6e-17 in float64).
  assertClose(applyTransformFloat(ramp4, gray(4, 4), t({ theta: 90 }), bilinear()), [3, 7, 11, 15, 2, 6, 10, 14, 1, 5, 9, 13, 0, 4, 8, 12]);
});

test('theta = -90 turns the other way: out[r][c] = in[3 - c][r]', () => {
  const out = applyTransform(ramp4, gray(4, 4), t({ theta: -90 }), bilinear());
  assert.deepEqual(Array.from(out), [12, 8, 4, 0, 13, 9, 5, 1, 14, 10, 6, 2, 15, 11, 7, 3]);
});

// Keras quirk (axes swapped for channels-last): tx, the height-shift draw, moves along columns.
// A 1x5 row [10 20 30 40 50] sampled at c + tx.
const row5 = Uint8Array.from([10, 20, 30, 40, 50]);
const shiftCases: { mode: FillMode; plus2: number[]; minus2: number[]; minusHalf: number[] }[] = [
  // nearest: a a a | a b c d e | e e e
  { mode: 'nearest', plus2: [30, 40, 50, 50, 50], minus2: [10, 10, 10, 20, 30], minusHalf: [10, 15, 25, 35, 45] },
  // constant (cval 7): anything outside [0, 4] is cval, never blended
  { mode: 'constant', plus2: [30, 40, 50, 7, 7], minus2: [7, 7, 10, 20, 30], minusHalf: [7, 15, 25, 35, 45] },
  // reflect: b a | a b c d e | e d  (half-sample symmetric)
  { mode: 'reflect', plus2: [30, 40, 50, 50, 40], minus2: [20, 10, 10, 20, 30], minusHalf: [10, 15, 25, 35, 45] },
  // wrap (scipy legacy, period n - 1 = 4): ... d e | a b c d e | b c ...
  { mode: 'wrap', plus2: [30, 40, 50, 20, 30], minus2: [30, 40, 10, 20, 30], minusHalf: [45, 15, 25, 35, 45] },
];
for (const { mode, plus2, minus2, minusHalf } of shiftCases) {
  test(`shift by +2, -2 and -0.5 pixels with fill_mode ${mode}`, () => {
    const opts = bilinear(mode, 7);
    assert.deepEqual(Array.from(applyTransform(row5, gray(1, 5), t({ tx: 2 }), opts)), plus2);
    assert.deepEqual(Array.from(applyTransform(row5, gray(1, 5), t({ tx: -2 }), opts)), minus2);
    assertClose(applyTransformFloat(row5, gray(1, 5), t({ tx: -0.5 }), opts), minusHalf, 0);
  });
}

test('ty (the width-shift draw) moves along rows of a 4x4, with nearest fill', () => {
  const out = applyTransform(ramp4, gray(4, 4), t({ ty: 1 }), bilinear());
  assert.deepEqual(Array.from(out), [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 12, 13, 14, 15]);
});

test('zoom 0.5 (2x magnification) about the centre of a 4x4: out = 2r + 0.5c + 3.75', () => {
  // input point = 0.5 * out + 0.75 on both axes; bilinear on a linear ramp is exact.
  const expected = [0, 1, 2, 3].flatMap((r) => [0, 1, 2, 3].map((c) => 2 * r + 0.5 * c + 3.75));
  assertClose(applyTransformFloat(ramp4, gray(4, 4), t({ zx: 0.5, zy: 0.5 }), bilinear()), expected, 0);
  // zx scales columns, zy rows (after Keras' axis swap).
  const colsOnly = [0, 1, 2, 3].flatMap((r) => [0, 1, 2, 3].map((c) => 4 * r + 0.5 * c + 0.75));
  assertClose(applyTransformFloat(ramp4, gray(4, 4), t({ zx: 0.5 }), bilinear()), colsOnly, 0);
});

test('zoom 2 (zoom out) with constant fill shows cval around a shrunken image', () => {
  // input = 2 * out - 1.5: -1.5, 0.5, 2.5, 4.5 -> only the middle 2x2 is inside.
  const out = applyTransformFloat(ramp4, gray(4, 4), t({ zx: 2, zy: 2 }), bilinear('constant', 0));
  const mid = (r: number, c: number): number => 4 * r + c;
  assertClose(out, [0, 0, 0, 0, 0, mid(0.5, 0.5), mid(0.5, 2.5), 0, 0, mid(2.5, 0.5), mid(2.5, 2.5), 0, 0, 0, 0, 0], 0);
});

test('shear sign follows Keras: a positive shear samples the top row to the right (content moves left)', () => {
  // Keras shear matrix [[1, -sin s, 0], [0, cos s, 0]] in (x=col, y=row): in_col = c - sin(s) * (r - 1.5).
  // An image constant down each column (value 10 * col) makes the result depend on in_col only.
  const cols = Uint8Array.from({ length: 16 }, (_, i) => 10 * (i % 4));
  const out = applyTransformFloat(cols, gray(4, 4), t({ shear: 30 }), bilinear());
  assertClose(out.subarray(0, 4), [7.5, 17.5, 27.5, 30]); // in_col = c + 0.75, right edge clamps
  assertClose(out.subarray(12, 16), [0, 2.5, 12.5, 22.5]); // in_col = c - 0.75, left edge clamps
  const m = samplingMatrix(t({ shear: 30 }), 4, 4)!;
  assert.ok(Math.abs(m.cr + 0.5) < 1e-12 && Math.abs(m.rr - Math.cos(Math.PI / 6)) < 1e-12);
});

test('channel shift adds to every channel and clips to the image min/max', () => {
  const src = Uint8Array.from([10, 100, 200, 50, 60, 70]); // 1x2 RGB, min 10, max 200
  assertClose(applyTransformFloat(src, { height: 1, width: 2, channels: 3 }, t({ channelShiftIntensity: 20 }), bilinear()), [30, 120, 200, 70, 80, 90], 0);
  assertClose(applyTransformFloat(src, { height: 1, width: 2, channels: 3 }, t({ channelShiftIntensity: -45 }), bilinear()), [10, 55, 155, 10, 15, 25], 0);
});

test('brightness truncates to uint8 then multiplies as PIL does (clipping above 1)', () => {
  const src = Uint8Array.from([0, 1, 3, 100, 200, 255]);
  // factor 0.5: trunc(0.5 * v); factor 1.5: min(255, trunc(1.5 * v))
  assert.deepEqual(Array.from(applyTransform(src, gray(1, 6), t({ brightness: 0.5 }), bilinear())), [0, 0, 1, 50, 100, 127]);
  assert.deepEqual(Array.from(applyTransform(src, gray(1, 6), t({ brightness: 1.5 }), bilinear())), [0, 1, 4, 150, 255, 255]);
  // A channel shift of 0.75 gives 10.75, 20.75, ...: stored alone they round up, but brightness first truncates to uint8.
  assert.deepEqual(Array.from(applyTransform(row5, gray(1, 5), t({ channelShiftIntensity: 0.75 }), bilinear())), [11, 21, 31, 41, 50]);
  assert.deepEqual(Array.from(applyTransform(row5, gray(1, 5), t({ channelShiftIntensity: 0.75, brightness: 1.0 }), bilinear())), [10, 20, 30, 40, 50]);
});

test('order of operations: flips apply after channel shift, brightness last', () => {
  const src = Uint8Array.from([10, 20, 30, 40]); // 1x4 gray
  const out = applyTransformFloat(src, gray(1, 4), t({ channelShiftIntensity: 15, flipHorizontal: true, brightness: 0.5 }), bilinear());
  // shift+clip: [25, 35, 40, 40]; flip: [40, 40, 35, 25]; brightness 0.5: [20, 20, 17, 12]
  assertClose(out, [20, 20, 17, 12], 0);
});

test('uint8 storage rounds half to even', () => {
  // tx = 0.5 on [1 2 3 4]: 1.5, 2.5, 3.5, 4 -> 2, 2, 4, 4
  assert.deepEqual(Array.from(applyTransform(Uint8Array.from([1, 2, 3, 4]), gray(1, 4), t({ tx: 0.5 }), bilinear())), [2, 2, 4, 4]);
});

test('interpolation_order 0 picks the nearest sample', () => {
  const out = applyTransform(row5, gray(1, 5), t({ tx: 0.4 }), { fillMode: 'nearest', cval: 0, interpolationOrder: 0 });
  assert.deepEqual(Array.from(out), [10, 20, 30, 40, 50]);
  const out2 = applyTransform(row5, gray(1, 5), t({ tx: 0.6 }), { fillMode: 'nearest', cval: 0, interpolationOrder: 0 });
  assert.deepEqual(Array.from(out2), [20, 30, 40, 50, 50]);
});

test('the uint8 fast path equals rounding the float reference path, for every option combination', () => {
  const shape = { height: 9, width: 7, channels: 3 };
  const src = Uint8Array.from({ length: 9 * 7 * 3 }, (_, i) => (i * 37 + (i >> 3) * 11) & 255);
  let cases = 0;
  for (const fillMode of ['nearest', 'constant', 'reflect', 'wrap'] as const) {
    for (const flipHorizontal of [false, true]) {
      for (const flipVertical of [false, true]) {
        for (const channelShiftIntensity of [null, 3.3, -7.25]) {
          for (const brightness of [null, 0.7, 1.3]) {
            const p = t({ theta: 11, tx: 1.3, ty: -2.2, shear: 4, zx: 1.1, zy: 0.9, flipHorizontal, flipVertical, channelShiftIntensity, brightness });
            const opts = bilinear(fillMode, 99);
            const expected = Uint8ClampedArray.from(applyTransformFloat(src, shape, p, opts));
            assert.deepEqual(Array.from(applyTransform(src, shape, p, opts)), Array.from(expected), JSON.stringify({ fillMode, flipHorizontal, flipVertical, channelShiftIntensity, brightness }));
            cases++;
          }
        }
      }
    }
  }
  assert.equal(cases, 144);
});

test('an RGB warp equals three single-channel warps (Keras warps channel by channel)', () => {
  const shape = { height: 6, width: 8, channels: 3 };
  const src = Uint8Array.from({ length: 6 * 8 * 3 }, (_, i) => (i * 53 + 7) & 255);
  for (const fillMode of ['nearest', 'constant', 'reflect', 'wrap'] as const) {
    const p = t({ theta: -23, tx: 2.7, ty: 1.1, zx: 0.8, zy: 1.25 });
    const rgb = applyTransformFloat(src, shape, p, bilinear(fillMode, 5));
    for (let k = 0; k < 3; k++) {
      const plane = src.filter((_, i) => i % 3 === k);
      const single = applyTransformFloat(plane, gray(6, 8), p, bilinear(fillMode, 5));
      assert.deepEqual(Array.from(rgb.filter((_, i) => i % 3 === k)), Array.from(single), `${fillMode} channel ${k}`);
    }
  }
});

test('a 1x1 image survives every mode (scipy maps any coordinate of a length-1 axis to 0)', () => {
  for (const fillMode of ['nearest', 'constant', 'reflect', 'wrap'] as const) {
    assert.deepEqual(Array.from(applyTransform(Uint8Array.from([9, 99, 199]), { height: 1, width: 1, channels: 3 }, t({ theta: 30, zx: 1.2 }), bilinear(fillMode, 0))), [9, 99, 199], fillMode);
  }
  // shifted off the single pixel: constant gives cval, the others the pixel
  assert.deepEqual(Array.from(applyTransform(Uint8Array.from([9]), gray(1, 1), t({ tx: 3 }), bilinear('constant', 42))), [42]);
  assert.deepEqual(Array.from(applyTransform(Uint8Array.from([9]), gray(1, 1), t({ tx: 3 }), bilinear('wrap', 42))), [9]);
});

test('a reused scratch buffer leaves no trace between calls', () => {
  const shape = { height: 5, width: 6, channels: 3 };
  const src = Uint8Array.from({ length: 90 }, (_, i) => (i * 29 + 3) & 255);
  const scratch = new Float32Array(90).fill(1234);
  const sequence = [
    t({ theta: 40, zx: 1.6, zy: 1.6 }),
    t({ flipHorizontal: true, channelShiftIntensity: 5 }),
    t({ tx: 9, ty: -9 }),
    t({ shear: 12, brightness: 0.8 }),
    t({}),
  ];
  for (const fillMode of ['constant', 'nearest'] as const) {
    for (const p of sequence) {
      assert.deepEqual(Array.from(applyTransform(src, shape, p, bilinear(fillMode, 3), scratch)), Array.from(applyTransform(src, shape, p, bilinear(fillMode, 3))));
    }
  }
});
