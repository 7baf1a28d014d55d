import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTable, parseFilter, pickMetrics, renderTable } from '../../src/experiments/table.js';
import { record, three } from './fixtures.js';

test('exp list shows only params that differ, then metrics (golden text)', () => {
  const out = renderTable(buildTable(three), 'text');
  assert.equal(
    out,
    [
      'id       name      created              status     train.lr  resize.size  evaluate.accuracy  train.loss',
      '-------  --------  -------------------  ---------  --------  -----------  -----------------  ----------',
      'a1b2c3d  baseline  2026-11-28 10:01:00  succeeded  0.001     [32,32]                   0.81        0.52',
      'b2c3d4e            2026-11-28 10:02:00  succeeded  0.01      [32,32]                   0.86        0.41',
      'c3d4e5f            2026-11-28 10:03:00  failed     0.01      [64,64]                 0.8312        0.44',
      '',
    ].join('\n'),
  );
});

test('exp list sorts descending, filters and limits', () => {
  const f = parseFilter('evaluate.accuracy>0.82');
  assert.ok(f.ok);
  const t = buildTable(three, { sort: '-evaluate.accuracy', filters: [f.value] });
  assert.deepEqual(t.rows.map((r) => r.values['id']), ['b2c3d4e', 'c3d4e5f']);
  // only two rows left, and they share train.lr, so only resize.size differs
  assert.deepEqual(t.paramColumns, ['resize.size']);
  const limited = buildTable(three, { limit: 1 });
  assert.deepEqual(limited.rows.map((r) => r.values['id']), ['c3d4e5f']);
  const byParam = parseFilter('train.lr=0.001');
  assert.ok(byParam.ok);
  assert.deepEqual(buildTable(three, { filters: [byParam.value] }).rows.map((r) => r.values['id']), ['a1b2c3d']);
});

test('exp list renders CSV and Markdown (golden)', () => {
  const t = buildTable(three.slice(0, 2));
  assert.equal(
    renderTable(t, 'csv'),
    'id,name,created,status,train.lr,evaluate.accuracy,train.loss\na1b2c3d,baseline,2026-11-28 10:01:00,succeeded,0.001,0.81,0.52\nb2c3d4e,,2026-11-28 10:02:00,succeeded,0.01,0.86,0.41\n',
  );
  assert.equal(
    renderTable(t, 'md'),
    '| id | name | created | status | train.lr | evaluate.accuracy | train.loss |\n|---|---|---|---|---|---:|---:|\n| a1b2c3d | baseline | 2026-11-28 10:01:00 | succeeded | 0.001 | 0.81 | 0.52 |\n| b2c3d4e |  | 2026-11-28 10:02:00 | succeeded | 0.01 | 0.86 | 0.41 |\n',
  );
});

test('invalid filters are reported, not thrown', () => {
  const f = parseFilter('accuracy');
  assert.equal(f.ok, false);
});

test('a param named like a metric gets its own column, params.X, with the param value (not the metric)', () => {
  // The quickstart's param train.epochs and the train stage's metric `epochs` (early stopping can make them differ).
  const rows = [
    record('a1b2c3d', 1, { train: { epochs: 12 } }, { 'train.epochs': 7, 'evaluate.accuracy': 0.6 }),
    record('b2c3d4e', 2, { train: { epochs: 8 } }, { 'train.epochs': 8, 'evaluate.accuracy': 0.7 }),
  ];
  const t = buildTable(rows);
  assert.deepEqual(t.paramColumns, ['params.train.epochs']);
  assert.deepEqual(t.metricColumns, ['evaluate.accuracy', 'train.epochs']);
  assert.deepEqual(t.rows.map((r) => [r.values['params.train.epochs'], r.values['train.epochs']]), [[12, 7], [8, 8]]);
  const f = parseFilter('params.train.epochs=12');
  assert.ok(f.ok);
  assert.deepEqual(buildTable(rows, { filters: [f.value] }).rows.map((r) => r.values['id']), ['a1b2c3d']);
  assert.deepEqual(buildTable(rows, { sort: 'params.train.epochs' }).rows.map((r) => r.values['id']), ['b2c3d4e', 'a1b2c3d']);
});

test('rows from several pipelines (one shared cache) get a pipeline column; an empty params tree adds no column', () => {
  const other = record('d4e5f6a', 4, {}, { 'evaluate.accuracy': 0.5 }, { pipeline: { name: 'other', file: '/w/other.yaml', workspace: '/w' } });
  const t = buildTable([three[0]!, other]);
  assert.deepEqual(t.columns.slice(0, 5), ['id', 'name', 'pipeline', 'created', 'status']);
  assert.deepEqual(t.rows.map((r) => r.values['pipeline']), ['demo', 'other']);
  assert.ok(!t.columns.includes(''), 'no column named ""');
  assert.ok(!buildTable(three).columns.includes('pipeline'), 'one pipeline: no column');
});

test('metric columns: those that differ; none differ: the last stage (in run order) that reports any; --all-metrics: all', () => {
  const stages = { ingest: { key: 'k1', status: 'ran', durationMs: 0, metrics: {} }, evaluate: { key: 'k2', status: 'ran', durationMs: 0, metrics: {} }, report: { key: 'k3', status: 'ran', durationMs: 0, metrics: {} } };
  const same = { 'ingest.images': 400, 'evaluate.accuracy': 0.8, 'evaluate.loss': 0.4 };
  const a = record('a1b2c3d', 1, {}, same, { stages });
  const b = record('b2c3d4e', 2, {}, { ...same, 'ingest.images': 401 }, { stages });
  const names = Object.keys(same);
  assert.deepEqual(pickMetrics([a, b], names, false), ['ingest.images']);
  assert.deepEqual(pickMetrics([a, a], names, false), ['evaluate.accuracy', 'evaluate.loss'], 'report (no metrics) skipped: evaluate');
  assert.deepEqual(pickMetrics([a, b], names, true), ['evaluate.accuracy', 'evaluate.loss', 'ingest.images']);
  assert.deepEqual(buildTable([a, b], { allMetrics: true }).metricColumns, ['evaluate.accuracy', 'evaluate.loss', 'ingest.images']);
});
