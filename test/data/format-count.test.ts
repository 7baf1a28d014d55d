/** `formatCount` (stages/lib/format-count.ts) writes exactly what `toLocaleString('en-US')` writes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCount } from '../../stages/lib/format-count.js';

test('formatCount equals toLocaleString("en-US") for integers of every digit count, and falls back for the rest', () => {
  const ns = [0, 1, 9, 10, 99, 100, 999, 1000, 1001, 9999, 10924, 100000, 999999, 1000000, 1234567, 10 ** 12 + 7, Number.MAX_SAFE_INTEGER, -1, -1000, -1234567, 1.5, 1234.25, Infinity, NaN, -0];
  for (const n of ns) assert.equal(formatCount(n), n.toLocaleString('en-US'), String(n));
});
