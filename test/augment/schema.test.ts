import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { resolveAugmentParams, type AugmentParams } from '../../stages/lib/augment/params.js';

const schema = JSON.parse(fs.readFileSync(path.resolve('schemas', 'stages', 'augment.json'), 'utf8')) as object;
const validate = new Ajv({ useDefaults: true, allErrors: true }).compile(schema);

test('schema defaults are the Keras ImageDataGenerator defaults (everything off)', () => {
  const p: Record<string, unknown> = {};
  assert.equal(validate(p), true);
  assert.deepEqual(p, {
    rotation_range: 0,
    width_shift_range: 0,
    height_shift_range: 0,
    shear_range: 0,
    zoom_range: 0,
    channel_shift_range: 0,
    brightness_range: null,
    horizontal_flip: false,
    vertical_flip: false,
    fill_mode: 'nearest',
    cval: 0,
    interpolation_order: 1,
    copies: 1,
    preview_per_class: 2,
  });
  // and the resolver, given nothing, lands on the same config
  assert.deepEqual(resolveAugmentParams(p as AugmentParams), resolveAugmentParams({}));
  assert.deepEqual(resolveAugmentParams({}).config.zoomRange, [1, 1]);
});

test('schema accepts the seed recipe and the list / pair forms', () => {
  for (const p of [
    { rotation_range: 15, width_shift_range: 0.15, height_shift_range: 0.15, shear_range: 0.15, zoom_range: 0.15, channel_shift_range: 1, horizontal_flip: true },
    { width_shift_range: [-3, 0, 3], height_shift_range: 4, zoom_range: [0.8, 1.1], brightness_range: [0.5, 1.5], fill_mode: 'wrap', cval: 128, interpolation_order: 0, copies: 5, seed: 11, preview_per_class: 0 },
  ]) {
    assert.equal(validate(p), true, JSON.stringify(validate.errors));
  }
});

test('schema rejects bad values with their paths', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ fill_mode: 'mirror' }, '/fill_mode'],
    [{ copies: 0 }, '/copies'],
    [{ zoom_range: [0.9] }, '/zoom_range'],
    [{ brightness_range: 1.2 }, '/brightness_range'],
    [{ cval: 300 }, '/cval'],
    [{ interpolation_order: 3 }, '/interpolation_order'],
    [{ rotation_range: -5 }, '/rotation_range'],
    [{ rotation: 15 }, ''],
  ];
  for (const [p, where] of cases) {
    assert.equal(validate(p), false, JSON.stringify(p));
    assert.ok(validate.errors!.some((e) => e.instancePath === where), `${JSON.stringify(p)}: ${JSON.stringify(validate.errors)}`);
  }
});
