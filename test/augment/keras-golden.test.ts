/**
 * Bit-exactness against the real libraries Keras calls. `keras-golden.json`
 * holds float32 outputs computed (outside this repo) by Keras' own
 * `apply_affine_transform` on scipy.ndimage (48 warps of a 6x7 RGB image:
 * rotation, shifts, shear, zoom, 90 degrees, large shifts; every fill mode;
 * orders 0 and 1) and by Keras' channel shift, flips and Pillow brightness
 * (50 cases on those warp outputs). See the fixture's `about` field for versions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { applyTransform, applyTransformFloat } from '../../stages/lib/augment/apply.js';
import { IDENTITY_TRANSFORM, type TransformParams } from '../../stages/lib/augment/random-transform.js';
import type { FillMode, InterpolationOrder } from '../../stages/lib/augment/params.js';

interface WarpCase {
  readonly params: Partial<TransformParams>;
  readonly fill_mode: FillMode;
  readonly cval: number;
  readonly order: InterpolationOrder;
  readonly out: number[];
}
interface ColourCase {
  readonly warp: Omit<WarpCase, 'out'>;
  readonly color: { channel_shift_intensity: number | null; flip_horizontal: boolean; flip_vertical: boolean; brightness: number | null };
  readonly out: number[];
}
const golden = JSON.parse(fs.readFileSync(path.resolve('test', 'augment', 'keras-golden.json'), 'utf8')) as {
  shape: [number, number, number];
  image: number[];
  warps: WarpCase[];
  colour: ColourCase[];
};
const [height, width, channels] = golden.shape;
const shape = { height, width, channels };
const image = Uint8Array.from(golden.image);

function mismatches(actual: Float32Array, expected: readonly number[]): string {
  const bad: string[] = [];
  for (let i = 0; i < expected.length; i++) if (actual[i] !== expected[i]) bad.push(`[${i}] ${actual[i]} != ${expected[i]}`);
  return bad.slice(0, 5).join('; ') + (bad.length > 5 ? ` (+${bad.length - 5} more)` : '');
}

test('warps equal scipy.ndimage.affine_transform under Keras matrices, bit for bit (48 cases)', () => {
  assert.equal(golden.warps.length, 48);
  for (const c of golden.warps) {
    const out = applyTransformFloat(image, shape, { ...IDENTITY_TRANSFORM, ...c.params }, { fillMode: c.fill_mode, cval: c.cval, interpolationOrder: c.order });
    assert.equal(mismatches(out, c.out), '', `${JSON.stringify(c.params)} ${c.fill_mode} order ${c.order}`);
    // and the uint8 path stores exactly those values rounded half to even
    const stored = applyTransform(image, shape, { ...IDENTITY_TRANSFORM, ...c.params }, { fillMode: c.fill_mode, cval: c.cval, interpolationOrder: c.order });
    assert.deepEqual(Array.from(stored), Array.from(Uint8ClampedArray.from(c.out)));
  }
});

test('channel shift, flips and Pillow brightness equal Keras, bit for bit (50 cases)', () => {
  assert.equal(golden.colour.length, 50);
  for (const c of golden.colour) {
    const params: TransformParams = {
      ...IDENTITY_TRANSFORM,
      ...c.warp.params,
      channelShiftIntensity: c.color.channel_shift_intensity,
      flipHorizontal: c.color.flip_horizontal,
      flipVertical: c.color.flip_vertical,
      brightness: c.color.brightness,
    };
    const opts = { fillMode: c.warp.fill_mode, cval: c.warp.cval, interpolationOrder: c.warp.order };
    assert.equal(mismatches(applyTransformFloat(image, shape, params, opts), c.out), '', `${JSON.stringify(c.color)} on ${JSON.stringify(c.warp)}`);
    assert.deepEqual(Array.from(applyTransform(image, shape, params, opts)), Array.from(Uint8ClampedArray.from(c.out)));
  }
});
