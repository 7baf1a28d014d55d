import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HashMemo } from '../../src/hash/memo.js';

const h = (c: string): string => c.repeat(64);
const e = (n: number, c: string) => ({ size: n, mtimeMs: 1000.25 + n, ctimeMs: 2000.5 + n, ino: 1e15 + n, hash: h(c) });

test('memo round trip: exact signatures hit, any difference misses; set/delete/prune persist; visit order is the save order', () => {
  const m = HashMemo.empty();
  m.set('/w/a', e(1, 'a'));
  m.set('/w/d/b', e(2, 'b'));
  m.set('/w/d/c', e(3, 'c'));
  m.set('/x/z', e(4, 'd'));
  const m2 = HashMemo.decode(m.encode(123));
  assert.equal(m2.savedAtMs, 123);
  assert.deepEqual([...m2.keys()], ['/w/a', '/w/d/b', '/w/d/c', '/x/z']);
  assert.equal(m2.lookup('/w/d/b', 2, 1002.25, 2002.5, 1e15 + 2), h('b'));
  assert.equal(m2.lookup('/w/d/b', 2, 1002.25, 2002.5, 1e15 + 3), undefined, 'other inode');
  assert.equal(m2.lookup('/w/d/b', 2, 1002.26, 2002.5, 1e15 + 2), undefined, 'other mtime');
  assert.equal(m2.lookup('/w/d/b', 2, 1002.25, 2002.6, 1e15 + 2), undefined, 'other ctime');
  assert.equal(m2.lookup('/w/d/b', 9, 1002.25, 2002.5, 1e15 + 2), undefined, 'other size');

  // Visit c then a (out of saved order), replace a, delete z; prune unvisited under /w/d/ drops nothing visited.
  m2.lookup('/w/d/c', 3, 1003.25, 2003.5, 1e15 + 3);
  m2.set('/w/a', e(10, 'e'));
  assert.equal(m2.delete('/x/z'), true);
  assert.equal(m2.delete('/x/z'), false);
  assert.equal(m2.pruneUnvisitedUnder(['/w/d/']), 0, 'b was looked up above, c too');
  const m3 = HashMemo.decode(m2.encode(456));
  assert.deepEqual([...m3.keys()], ['/w/d/b', '/w/d/c', '/w/a'], 'visit order (b, c, then the re-set a), z gone');
  assert.equal(m3.lookup('/w/a', 10, 1010.25, 2010.5, 1e15 + 10), h('e'));
  assert.equal(m3.count, 3);

  // A fresh session that only visits c: pruning under /w/d/ drops b, keeps a (not under the root).
  const m4 = HashMemo.decode(m3.encode(789));
  m4.lookup('/w/d/c', 3, 1003.25, 2003.5, 1e15 + 3);
  assert.equal(m4.pruneUnvisitedUnder(['/w/d/']), 1);
  assert.deepEqual([...HashMemo.decode(m4.encode(1)).keys()].sort(), ['/w/a', '/w/d/c']);
});

test('a memo buffer at an unaligned offset decodes (typed-array views need 8-byte alignment)', () => {
  const m = HashMemo.empty();
  m.set('/p', e(5, 'f'));
  const enc = m.encode(1);
  const padded = Buffer.alloc(enc.length + 3);
  enc.copy(padded, 3);
  const d = HashMemo.decode(padded.subarray(3));
  assert.equal(d.lookup('/p', 5, 1005.25, 2005.5, 1e15 + 5), h('f'));
});

test('re-saving after random lookups, sets, deletes and prunes keeps every live entry, in the documented order (block copies of runs included)', () => {
  let seed = 7;
  const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
  const hex = '0123456789abcdef';
  /** The model: path → entry, in save order. */
  let model = new Map<string, ReturnType<typeof e>>();
  let m = HashMemo.empty();
  for (let i = 0; i < 40; i++) {
    const p = `/d${i % 3}/f-${i}-é`; // non-ASCII: path bytes are UTF-8
    const v = { ...e(i, hex[i % 16]!), hash: hex[i % 16]!.repeat(32) + hex[(i * 7) % 16]!.repeat(32) };
    m.set(p, v);
    model.set(p, v);
  }
  for (let round = 0; round < 30; round++) {
    m = HashMemo.decode(m.encode(round));
    assert.deepEqual([...m.keys()], [...model.keys()], `round ${round}: order`);
    const loaded = [...model.keys()];
    const visit: string[] = [];
    const next = new Map(model);
    // Mostly in-order visits with gaps (runs), some out of order, a few new, replaced and deleted entries.
    for (let i = 0; i < loaded.length; i++) {
      const p = loaded[i]!;
      const op = rnd(10);
      if (op < 6) {
        const v = model.get(p)!;
        assert.equal(m.lookup(p, v.size, v.mtimeMs, v.ctimeMs, v.ino), v.hash);
        if (!visit.includes(p)) visit.push(p);
      } else if (op === 6) {
        const v = { ...e(1000 + round * 100 + i, hex[rnd(16)]!) };
        m.set(p, v);
        next.set(p, v);
        if (!visit.includes(p)) visit.push(p);
      } else if (op === 7) {
        m.delete(p);
        next.delete(p);
      } else if (op === 8) {
        const q = `/new/${round}-${i}`;
        const v = e(5000 + round * 100 + i, hex[rnd(16)]!);
        m.set(q, v);
        next.set(q, v);
        visit.push(q);
      }
      // op 9: not visited this round
    }
    if (round % 5 === 4) {
      const dropped = loaded.filter((p) => p.startsWith('/d1/') && !visit.includes(p) && next.has(p));
      assert.equal(m.pruneUnvisitedUnder(['/d1/']), dropped.length);
      for (const p of dropped) next.delete(p);
    }
    // Save order: first visits, then the other loaded entries in loaded order, then the rest.
    const order = [...visit.filter((p) => next.has(p)), ...loaded.filter((p) => next.has(p) && !visit.includes(p))];
    for (const p of next.keys()) if (!order.includes(p)) order.push(p);
    model = new Map(order.map((p) => [p, next.get(p)!]));
  }
  const final = HashMemo.decode(m.encode(99));
  assert.deepEqual([...final.keys()], [...model.keys()]);
  for (const [p, v] of model) assert.equal(final.lookup(p, v.size, v.mtimeMs, v.ctimeMs, v.ino), v.hash, p);
});

test('sizeOf: the size get would give (loaded, added, replaced, deleted), and it counts as a visit for the save order', () => {
  const m = HashMemo.empty();
  m.set('/a', e(1, 'a'));
  m.set('/b', e(2, 'b'));
  m.set('/c', e(3, 'c'));
  const d = HashMemo.decode(m.encode(1));
  assert.equal(d.sizeOf('/c'), 3);
  assert.equal(d.sizeOf('/nope'), undefined);
  d.set('/b', e(20, 'f'));
  assert.equal(d.sizeOf('/b'), 20);
  d.delete('/a');
  assert.equal(d.sizeOf('/a'), undefined);
  assert.deepEqual([...HashMemo.decode(d.encode(2)).keys()], ['/c', '/b'], 'c visited first by sizeOf, then the re-set b');
});
