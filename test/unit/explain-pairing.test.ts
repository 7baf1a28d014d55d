/** `pipeline explain`: a `with.*` value that only echoes a params edit is folded under it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pairWithEcho } from '../../src/change-echo.js';
import type { FingerprintChange } from '../../src/fingerprint.js';

const param = (path: string, old: number, now: number): FingerprintChange => ({ kind: 'param', path, old, new: now });

test('with.lr repeating params train.lr is folded under it; an edited with: value and other kinds stay', () => {
  const changes: FingerprintChange[] = [
    param('train.lr', 0.002, 0.003),
    param('with.lr', 0.002, 0.003),
    param('with.batch_size', 32, 64),
    { kind: 'upstream', stage: 'resize', change: 'modified' },
  ];
  const lines = pairWithEcho(changes);
  assert.deepEqual(
    lines.map((l) => [l.change.kind === 'param' ? l.change.path : l.change.kind, l.seenAs]),
    [
      ['train.lr', ['with.lr']],
      ['with.batch_size', []],
      ['upstream', []],
    ],
  );
});

test('two params with the same old and new values each keep the echo named like them', () => {
  const lines = pairWithEcho([param('a.x', 1, 2), param('b.y', 1, 2), param('with.y', 1, 2), param('with.x', 1, 2), param('with.z', 1, 2)]);
  assert.deepEqual(
    lines.map((l) => [l.change.kind === 'param' ? l.change.path : '', l.seenAs]),
    [
      ['a.x', ['with.x', 'with.z']],
      ['b.y', ['with.y']],
    ],
    'named matches first; an unnamed echo goes to the first param with its values; none lost or printed twice',
  );
});

test("the plan's one-line reason counts a params edit and its with.* echo as one change", async () => {
  const { summarizeChanges } = await import('../../src/plan.js');
  assert.equal(summarizeChanges([param('train.epochs', 12, 8), param('with.epochs', 12, 8)]), 'param train.epochs changed: 12 → 8');
  assert.equal(summarizeChanges([param('train.epochs', 12, 8), param('with.epochs', 12, 8), param('with.batch_size', 32, 64)]), 'param train.epochs changed: 12 → 8 (and 1 more)');
});
