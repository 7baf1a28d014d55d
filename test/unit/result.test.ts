import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ok, err } from '../../src/result.js';

test('ok and err build tagged results', () => {
  assert.deepEqual(ok(1), { ok: true, value: 1 });
  assert.deepEqual(err('x'), { ok: false, error: 'x' });
});
