import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listFlag, parseArgs } from '../../src/cli/args.js';

const spec = {
  stage: { type: 'list', greedy: true },
  set: { type: 'list', short: 'S' },
  jobs: { type: 'number', short: 'j' },
  dry: { type: 'boolean' },
  cache: { type: 'string' },
} as const;

test('flags, values, short aliases, greedy lists, positionals', () => {
  const r = parseArgs(['p.yaml', '--stage', 'a', 'b', '--dry', '-S', 'x=1', '-Sy=2', '--jobs=3', '--cache', 'c', '--', '--not-a-flag'], spec);
  assert.ok(r.ok);
  assert.deepEqual(r.value.flags, { stage: ['a', 'b'], dry: true, set: ['x=1', 'y=2'], jobs: 3, cache: 'c' });
  assert.deepEqual(r.value.positionals, ['p.yaml', '--not-a-flag']);
});

test('a greedy list stops at a pipeline file name; lists also split on commas', () => {
  const r = parseArgs(['--stage', 'a', 'b,c', 'pipelines/x.yaml'], spec);
  assert.ok(r.ok);
  assert.deepEqual(listFlag(r.value, 'stage'), ['a', 'b', 'c']);
  assert.deepEqual(r.value.positionals, ['pipelines/x.yaml']);
});

test('usage mistakes are messages', () => {
  assert.deepEqual(parseArgs(['--nope'], spec), { ok: false, error: 'unknown option --nope' });
  assert.deepEqual(parseArgs(['-q'], spec), { ok: false, error: 'unknown option -q' });
  assert.deepEqual(parseArgs(['--jobs', '0'], spec), { ok: false, error: 'option --jobs needs a positive integer, got "0"' });
  assert.deepEqual(parseArgs(['--cache'], spec), { ok: false, error: 'option --cache needs a value' });
  assert.deepEqual(parseArgs(['--dry=yes'], spec), { ok: false, error: 'option --dry takes no value' });
});
