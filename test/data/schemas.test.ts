import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { schemasDir } from '../../src/paths.js';
import { INGEST_DEFAULTS } from '../../stages/ingest.js';
import { RESIZE_DEFAULTS } from '../../stages/resize.js';
import { PARTITION_DEFAULTS } from '../../stages/partition.js';
import { globToRegExp, pathFilter } from '../../stages/lib/globs.js';
import { parseCsv } from '../../stages/lib/source-list.js';
import { sniffFormat } from '../../stages/lib/probe.js';

function schema(name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(schemasDir, 'stages', `${name}.json`), 'utf8')) as Record<string, unknown>;
}

function withDefaults(name: string, params: Record<string, unknown>): { valid: boolean; params: Record<string, unknown>; errors: string[] } {
  const ajv = new Ajv({ useDefaults: true, allErrors: true });
  const validate = ajv.compile(schema(name));
  const copy = structuredClone(params);
  const valid = validate(copy);
  return { valid, params: copy, errors: (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`) };
}

test('data stage schemas: defaults applied by ajv equal the TypeScript defaults', () => {
  assert.deepEqual(withDefaults('ingest', { source: 'images' }).params, { source: 'images', ...INGEST_DEFAULTS });
  assert.deepEqual(withDefaults('resize', {}).params, RESIZE_DEFAULTS);
  assert.deepEqual(withDefaults('partition', {}).params, PARTITION_DEFAULTS);
});

test('data stage schemas reject bad params with the offending path', () => {
  assert.equal(withDefaults('ingest', {}).valid, false);
  assert.equal(withDefaults('ingest', { source: 'a', manifest: 'b.csv' }).valid, false);
  assert.ok(withDefaults('ingest', { manifest: 'list.txt' }).errors.some((e) => e.startsWith('/manifest')));
  assert.ok(withDefaults('ingest', { source: 'a', on_invalid: 'ignore' }).errors.some((e) => e.startsWith('/on_invalid')));
  assert.ok(withDefaults('resize', { size: [224] }).errors.some((e) => e.startsWith('/size')));
  assert.ok(withDefaults('resize', { background: 'white' }).errors.some((e) => e.startsWith('/background')));
  assert.ok(withDefaults('resize', { channels: 4 }).errors.some((e) => e.startsWith('/channels')));
  assert.ok(withDefaults('resize', { kernel: 'bilinear' }).errors.some((e) => e.startsWith('/kernel')));
  assert.ok(withDefaults('partition', { ratios: [0.5, -0.1, 0.6] }).errors.some((e) => e.startsWith('/ratios/1')));
  assert.ok(withDefaults('partition', { ratio: [1, 0, 0] }).errors.some((e) => /additional/.test(e)));
});

test('globs: **, *, ?, classes and braces over / paths', () => {
  const m = (g: string, p: string) => globToRegExp(g).test(p);
  assert.ok(m('**/*', 'a/b/c.png'));
  assert.ok(m('**/*.png', 'x.png') && m('**/*.png', 'a/b/x.png') && !m('**/*.png', 'a/x.jpg'));
  assert.ok(m('a/**', 'a/b/c') && !m('a/**', 'b/a/c'));
  assert.ok(m('*.{jpg,jpeg}', 'x.jpeg') && !m('*.{jpg,jpeg}', 'd/x.jpg'));
  assert.ok(m('img?.png', 'img1.png') && !m('img?.png', 'img10.png'));
  assert.ok(m('[!.]*', 'abc') && !m('[!.]*', '.abc'));
  assert.ok(m('**/.*', '.DS_Store') && m('**/.*', 'cat/.DS_Store') && !m('**/.*', 'cat/x.png'));
  assert.ok(m('a+b(1).png', 'a+b(1).png') && !m('a.png', 'aXpng'));
  const f = pathFilter(['**/*.png'], ['skip/**']);
  assert.ok(f.accepts('a/1.png') && !f.accepts('skip/1.png') && !f.accepts('a/1.jpg'));
});

test('parseCsv: quotes, doubled quotes, CRLF, line and column numbers', () => {
  const recs = parseCsv('path,label\r\n"a,b.png","say ""hi"""\nc.png,x\n');
  assert.deepEqual(recs.map((r) => [r.line, r.cells.map((c) => [c.value, c.col])]), [
    [1, [['path', 1], ['label', 6]]],
    [2, [['a,b.png', 1], ['say "hi"', 11]]],
    [3, [['c.png', 1], ['x', 7]]],
  ]);
});

test('sniffFormat: signatures of formats sharp cannot decode are still recognised', () => {
  assert.equal(sniffFormat(Buffer.from('BM\0\0')), 'bmp');
  assert.equal(sniffFormat(Buffer.from('8BPS\0\0')), 'psd');
  assert.equal(sniffFormat(Buffer.from('%PDF-1.7')), 'pdf');
  assert.equal(sniffFormat(Buffer.from('\0\0\0\x18ftypheic', 'latin1')), 'heif');
  assert.equal(sniffFormat(Buffer.from('hello')), undefined);
});
