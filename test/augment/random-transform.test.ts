import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getRandomTransform } from '../../stages/lib/augment/random-transform.js';
import { resolveAugmentParams, type AugmentParams } from '../../stages/lib/augment/params.js';
import { Xoshiro128, variantRandom, type RandomSource } from '../../stages/lib/augment/rng.js';

/** A RandomSource that replays a script and fails on any draw of the wrong kind or past the end. */
function scripted(script: readonly (['random', number] | ['randint', number, number])[]): RandomSource & { readonly used: number } {
  let i = 0;
  return {
    get used() {
      return i;
    },
    random() {
      const step = script[i++];
      assert.ok(step !== undefined && step[0] === 'random', `draw ${i - 1}: expected ${JSON.stringify(step)}, Keras code asked for random()`);
      return step[1];
    },
    randint(n) {
      const step = script[i++];
      assert.ok(step !== undefined && step[0] === 'randint', `draw ${i - 1}: expected ${JSON.stringify(step)}, Keras code asked for randint(${n})`);
      assert.equal(n, step[1], `draw ${i - 1}: randint bound`);
      return step[2];
    },
  };
}

const near = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-9, `${a} != ${b}`);
const cfg = (p: AugmentParams) => resolveAugmentParams(p).config;

const recipe: AugmentParams = {
  rotation_range: 15,
  width_shift_range: 0.15,
  height_shift_range: 0.15,
  shear_range: 0.15,
  zoom_range: 0.15,
  channel_shift_range: 1,
  horizontal_flip: true,
};

test('seed recipe: draws in Keras order theta, tx, ty, shear, zx, zy, flip_h, flip_v, channel shift', () => {
  const rng = scripted([
    ['random', 0.1], // theta = -15 + 30 * 0.1
    ['random', 0.2], // tx = (-0.15 + 0.3 * 0.2) * height
    ['random', 0.3], // ty = (-0.15 + 0.3 * 0.3) * width
    ['random', 0.4], // shear = -0.15 + 0.3 * 0.4
    ['random', 0.5], // zx = 0.85 + 0.3 * 0.5
    ['random', 0.6], // zy = 0.85 + 0.3 * 0.6
    ['random', 0.3], // flip_horizontal: 0.3 < 0.5 and horizontal_flip
    ['random', 0.1], // flip_vertical: drawn although vertical_flip is off
    ['random', 0.9], // channel shift = -1 + 2 * 0.9
  ]);
  const p = getRandomTransform(cfg(recipe), 200, 100, rng);
  assert.equal(rng.used, 9);
  near(p.theta, -12);
  near(p.tx, -0.09 * 200); // height shift uses the image height
  near(p.ty, -0.06 * 100); // width shift uses the width
  near(p.shear, -0.03);
  near(p.zx, 1.0);
  near(p.zy, 1.03);
  assert.equal(p.flipHorizontal, true);
  assert.equal(p.flipVertical, false);
  near(p.channelShiftIntensity!, 0.8);
  assert.equal(p.brightness, null);
});

test('all off: only the two flip draws are made, and they yield false', () => {
  const rng = scripted([
    ['random', 0.0],
    ['random', 0.0],
  ]);
  const p = getRandomTransform(cfg({}), 8, 8, rng);
  assert.equal(rng.used, 2);
  assert.deepEqual(p, { theta: 0, tx: 0, ty: 0, shear: 0, zx: 1, zy: 1, flipHorizontal: false, flipVertical: false, channelShiftIntensity: null, brightness: null });
});

test('integer pixel shifts draw randint(r) then a sign; lists draw a choice then a sign', () => {
  const rng = scripted([
    ['randint', 3, 2], // tx = choice(3) = 2 (height_shift_range = 3, a Python int)
    ['randint', 2, 0], // sign choice([-1, 1]) -> -1
    ['randint', 2, 1], // ty = choice([0.1, 0.2]) -> 0.2
    ['randint', 2, 1], // sign +1; max < 1 so * width
    ['random', 0.9],
    ['random', 0.9],
    ['random', 0.25], // brightness = 0.5 + 1.0 * 0.25
  ]);
  const p = getRandomTransform(cfg({ height_shift_range: 3, width_shift_range: [0.1, 0.2], vertical_flip: true, brightness_range: [0.5, 1.5] }), 10, 50, rng);
  assert.equal(rng.used, 7);
  assert.equal(p.tx, -2);
  near(p.ty, 0.2 * 50);
  assert.equal(p.flipVertical, false);
  near(p.brightness!, 0.75);
});

test('a fractional pixel range >= 1 is uniform and not scaled; zoom [lo, hi] draws zx then zy', () => {
  const rng = scripted([
    ['random', 0.75], // tx = -2.5 + 5 * 0.75
    ['random', 0.0], // zx = 0.5
    ['random', 1 - 2 ** -53], // zy ~ 2
    ['random', 0.5],
    ['random', 0.5],
  ]);
  const p = getRandomTransform(cfg({ height_shift_range: 2.5, zoom_range: [0.5, 2] }), 10, 10, rng);
  near(p.tx, 1.25);
  near(p.zx, 0.5);
  near(p.zy, 2);
});

test('variant streams are deterministic per (seed, sha, k) and differ across each', () => {
  const a = variantRandom(1, 'ab'.repeat(32), 0);
  const b = variantRandom(1, 'ab'.repeat(32), 0);
  const seqA = Array.from({ length: 5 }, () => a.random());
  assert.deepEqual(seqA, Array.from({ length: 5 }, () => b.random()));
  for (const other of [variantRandom(2, 'ab'.repeat(32), 0), variantRandom(1, 'cd'.repeat(32), 0), variantRandom(1, 'ab'.repeat(32), 1)]) {
    assert.notDeepEqual(Array.from({ length: 5 }, () => other.random()), seqA);
  }
  for (const v of seqA) assert.ok(v >= 0 && v < 1);
});

test('xoshiro128** matches the reference output for state [1, 2, 3, 4]', () => {
  // Reference values from the C implementation (xoshiro128starstar.c) seeded with s = {1, 2, 3, 4}.
  const g = new Xoshiro128([1, 2, 3, 4]);
  assert.deepEqual(Array.from({ length: 6 }, () => g.nextUint32()), [11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
});

test('randint is in range and roughly uniform', () => {
  const g = new Xoshiro128([5, 6, 7, 8]);
  const counts = [0, 0, 0];
  for (let i = 0; i < 3000; i++) counts[g.randint(3)]!++;
  for (const c of counts) assert.ok(c > 850 && c < 1150, `counts ${counts}`);
});
