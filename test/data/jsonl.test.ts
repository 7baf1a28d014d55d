/** ingest's `jsonl` (one `JSON.stringify` of the whole array, split at row boundaries) writes exactly what one call per row writes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonl } from '../../stages/ingest.js';

test('jsonl equals JSON.stringify(row) + newline per row, whatever the strings hold', () => {
  const nasty = ['},{"', '"},{"path":"x"}', '\\', '\\"},{\\"', 'a\nb\r\u2028', '}', '{', 'é🙂', ''];
  const rows = [
    ...nasty.map((s, i) => ({ path: s, rel: `${s}/${i}`, label: s, bytes: i, ok: i % 2 === 0 })),
    { sha256: 'ab', labels: ['x', '},{"', 'y'], rels: [] as string[] },
    { rel: 'r', keptRel: 'k', split: undefined, n: Number.NaN },
    { only: '},{"only":"' },
  ];
  assert.equal(
    jsonl(rows),
    rows.map((r) => JSON.stringify(r) + '\n').join(''),
  );
  assert.equal(jsonl([]), '');
  assert.equal(jsonl([{ a: 1 }]), '{"a":1}\n');
});
