/**
 * The probe memo's entry format (stages/lib/probe-memo.ts): outcomes round
 * trip and are found by their hash (and only by it); a damaged entry reads as
 * empty or as misses, never as a wrong outcome or an endless probe; through
 * ingest, a base in the JSON form of earlier versions is still used (no
 * re-probe) and is rewritten once in the binary form, and a corrupt binary base costs a re-probe of every file, with the
 * same outputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stageRig } from '../helpers/stage-context.js';
import { INGEST_DEFAULTS, ingestStage, ingestParams, probeMemoKeys, type IngestParams } from '../../stages/ingest.js';
import { ProbeMemo, decodeProbeOutcomes, encodeProbeOutcomes, type CachedProbe } from '../../stages/lib/probe-memo.js';
import { directoryItemCache, itemEntryFile } from '../../src/cache/item-cache.js';
import { ingestOutputs, pngOf, writeTree } from './fixtures.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const KEYS = { base: 'b'.repeat(64), delta: 'd'.repeat(64) };
/** A temp item cache, removed on dispose. */
async function tempItems() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'probe-memo-'));
  return { items: directoryItemCache(dir), async [Symbol.asyncDispose]() { await fs.rm(dir, { recursive: true, force: true }); } };
}

/** 3,000 outcomes: three shapes of accepted image and two failures, each sha256 distinct. */
function sampleOutcomes(): Map<string, CachedProbe> {
  const m = new Map<string, CachedProbe>();
  for (let i = 0; i < 3000; i++) {
    const o: CachedProbe =
      i % 500 === 7
        ? { ok: false, failure: { reason: 'truncated', detail: `premature end (${i % 2})` } }
        : { ok: true, info: { width: 100 + (i % 3), height: 2 ** 20 + 1, format: i % 3 === 0 ? 'png' : 'jpeg' } };
    m.set(sha(`x${i}`), o);
  }
  return m;
}

test('probe memo format: outcomes round trip, are found by their sha256 only, and share one object per outcome', async () => {
  await using t = await tempItems();
  const outcomes = sampleOutcomes();
  const encoded = encodeProbeOutcomes(outcomes);
  assert.deepEqual(decodeProbeOutcomes(encoded), outcomes);
  // Bytes not 4-aligned in their ArrayBuffer (the integers are then copied, not viewed).
  const unaligned = Buffer.concat([Buffer.alloc(1), encoded]).subarray(1);
  assert.equal(unaligned.byteOffset % 4, 1);
  assert.deepEqual(decodeProbeOutcomes(unaligned), outcomes);
  assert.deepEqual(decodeProbeOutcomes(encodeProbeOutcomes(new Map())), new Map());
  assert.throws(() => encodeProbeOutcomes(new Map([['ABC', { ok: false, failure: { reason: 'empty', detail: '' } }]])), /not a sha256/);

  // Half in the base, half in the delta: every outcome is found in either.
  const all = [...outcomes];
  await t.items.put(KEYS.base, encodeProbeOutcomes(new Map(all.slice(0, 1500))));
  await t.items.put(KEYS.delta, encodeProbeOutcomes(new Map(all.slice(1500))));
  const memo = await ProbeMemo.load(t.items, KEYS);
  for (const [k, o] of all) assert.deepEqual(memo.get(k), o, k);
  const [[a0, o0], [a3, o3]] = [all[1]!, all[4]!]; // both 101 x (2^20+1) jpeg
  assert.deepEqual(o0, o3);
  assert.equal(memo.get(a0), memo.get(a3), 'one shared object');
  // Misses: an unknown hash, one differing in its last digit only, upper case, a prefix, nonsense.
  const known = all[0]![0];
  for (const miss of [sha('unknown'), known.slice(0, 63) + (known[63] === '0' ? '1' : '0'), known.toUpperCase(), known.slice(0, 40), '', 'z'.repeat(64)]) {
    assert.equal(memo.get(miss), undefined, miss);
  }
});

test('probe memo format: a damaged entry reads as empty or as misses, never as a wrong outcome or an endless probe', async () => {
  await using t = await tempItems();
  const outcomes = new Map([...sampleOutcomes()].slice(0, 40));
  const good = encodeProbeOutcomes(outcomes);
  const [firstSha] = outcomes.keys();
  const n = good.readUInt32LE(4);
  const slots = good.readUInt32LE(8);
  const tableAt = 16 + good.readUInt32LE(12);
  const damaged: Record<string, Buffer> = {
    truncated: good.subarray(0, good.length - 1),
    'bad magic': Buffer.concat([Buffer.from('IPM2'), good.subarray(4)]),
    'count too large': Buffer.from(good).fill(0xff, 4, 8),
    'side part not JSON': Buffer.from(good).fill(0x78, 16, 17),
    'unknown outcome': Buffer.from(good.toString('latin1').replace('"png"', '"bmp"'), 'latin1'),
    garbage: Buffer.from('not a memo entry at all'),
  };
  for (const [what, raw] of Object.entries(damaged)) assert.equal(decodeProbeOutcomes(raw).size, 0, what);

  // Parts that agree in size but not in content: every slot full of out-of-range indices, or
  // outcome indices out of range. Lookups miss (and end).
  const fullTable = Buffer.from(good);
  for (let s = 0; s < slots; s++) fullTable.writeUInt32LE(n + s, tableAt + 4 * s);
  const badOutcome = Buffer.from(good);
  for (let i = 0; i < n; i++) badOutcome.writeUInt32LE(1000 + i, tableAt + 4 * slots + 4 * i);
  const noEmptySlot = Buffer.from(good);
  for (let s = 0; s < slots; s++) if (noEmptySlot.readUInt32LE(tableAt + 4 * s) === 0xffffffff) noEmptySlot.writeUInt32LE(0, tableAt + 4 * s);
  for (const [what, raw] of Object.entries({ fullTable, badOutcome, noEmptySlot })) {
    await t.items.put(KEYS.base, raw);
    const memo = await ProbeMemo.load(t.items, KEYS);
    assert.equal(memo.get(sha('never stored')), undefined, what);
    const found = memo.get(firstSha!);
    assert.ok(found === undefined || JSON.stringify(found) === JSON.stringify(outcomes.get(firstSha!)), what);
  }
  assert.equal(decodeProbeOutcomes(badOutcome).size, 0, 'records with no outcome are left out');

  // A record whose hash is not lowercase hex (sizes all agree): left out, and a save that re-encodes
  // the entry (here the delta, on every save) keeps the others instead of failing on it.
  const notHex = Buffer.from(good);
  notHex[notHex.length - 1] = 0x5a; // 'Z': the last record's last hex digit
  const lastSha = [...outcomes.keys()].at(-1)!;
  assert.equal(decodeProbeOutcomes(notHex).size, n - 1);
  assert.equal(decodeProbeOutcomes(notHex).has(lastSha), false);
  await t.items.put(KEYS.base, encodeProbeOutcomes(new Map([...sampleOutcomes()].slice(40)))); // large enough to keep the save in the delta
  await t.items.put(KEYS.delta, notHex);
  const memo = await ProbeMemo.load(t.items, KEYS);
  assert.equal(memo.get(lastSha), undefined);
  memo.set(sha('added'), { ok: false, failure: { reason: 'empty', detail: 'file is empty' } });
  await memo.save(t.items, KEYS);
  const delta = decodeProbeOutcomes(await t.items.get(KEYS.delta));
  assert.equal(delta.size, n, 'the other records and the added one');
  assert.equal(delta.has(sha('added')), true);
});

test('ingest: a probe memo base in the JSON form of earlier versions is used (no re-probe) and rewritten once in the binary form', async () => {
  await using rig = await stageRig();
  const src = path.join(rig.dir, 'src');
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 6; i++) files[`c${i % 2}/${i}.png`] = await pngOf(4000 + i);
  await writeTree(src, { ...files, 'c1/notes.png': 'not an image' });
  const items = directoryItemCache(path.join(rig.cacheDir, 'items', 'ingest'));
  const keys = probeMemoKeys(INGEST_DEFAULTS.max_pixels);
  // The bytes the earlier code wrote: JSON.stringify of {sha256: {ok, info | failure}}, and '{}' for an empty delta.
  const old: Record<string, unknown> = {};
  for (const b of Object.values(files)) old[createHash('sha256').update(b).digest('hex')] = { ok: true, info: { width: 12, height: 10, format: 'png' } };
  old[createHash('sha256').update('not an image').digest('hex')] = { ok: false, failure: { reason: 'not-an-image', detail: 'OLD DETAIL kept from the JSON memo' } };
  await items.put(keys.base, Buffer.from(JSON.stringify(old)));
  await items.put(keys.delta, Buffer.from('{}'));

  const run = async () => {
    const ctx = await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' }));
    return { result: await ingestStage.run(ctx), out: await ingestOutputs(ctx.outDir) };
  };
  const first = await run();
  assert.equal(first.result.metrics?.['probed'], 0, 'every outcome came from the JSON base');
  assert.equal(first.result.metrics?.['images'], 6);
  assert.match(first.out['rejects.jsonl']!, /OLD DETAIL kept from the JSON memo/);
  // Rewritten in the binary form once, with the same outcomes (the old failure detail too), though nothing was added.
  const converted = await items.get(keys.base);
  assert.equal(converted?.subarray(0, 4).toString('latin1'), 'IPM1', 'the base is now binary');
  assert.deepEqual(decodeProbeOutcomes(converted), decodeProbeOutcomes(Buffer.from(JSON.stringify(old))));
  assert.equal(decodeProbeOutcomes(converted).size, 7);
  const again = await run();
  assert.equal(again.result.metrics?.['probed'], 0);
  assert.deepEqual(again.out, first.out);
  assert.deepEqual(await items.get(keys.base), converted, 'a binary base is not rewritten when nothing is added');

  await writeTree(src, { 'c0/new.png': await pngOf(4100) });
  const grown = await run();
  assert.equal(grown.result.metrics?.['probed'], 1);
  // One new outcome is more than 1/8 of a 7-outcome base: folded in.
  assert.equal(decodeProbeOutcomes(await items.get(keys.base)).size, 8);
  assert.equal(decodeProbeOutcomes(await items.get(keys.delta)).size, 0);
  assert.equal((await run()).result.metrics?.['probed'], 0);
});

test('ingest: a corrupt binary probe memo base loads empty: every file is probed again, with the same outputs', async () => {
  await using rig = await stageRig();
  const src = path.join(rig.dir, 'src');
  const files: Record<string, Buffer | string> = { 'c1/notes.png': 'not an image' };
  for (let i = 0; i < 6; i++) files[`c${i % 2}/${i}.png`] = await pngOf(4200 + i);
  await writeTree(src, files);
  const root = path.join(rig.cacheDir, 'items', 'ingest');
  const items = directoryItemCache(root);
  const keys = probeMemoKeys(INGEST_DEFAULTS.max_pixels);
  const run = async () => {
    const ctx = await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' }));
    return { result: await ingestStage.run(ctx), out: await ingestOutputs(ctx.outDir) };
  };
  const first = await run();
  assert.equal(first.result.metrics?.['probed'], 7);
  const good = (await items.get(keys.base))!;
  assert.equal(decodeProbeOutcomes(good).size, 7);

  // A well-stored entry (its trailer matches) whose content is cut short.
  await items.put(keys.base, good.subarray(0, good.length - 64));
  const reprobed = await run();
  assert.equal(reprobed.result.metrics?.['probed'], 7);
  assert.deepEqual(reprobed.out, first.out);

  // Bytes flipped on disk: the item cache's trailer no longer matches, a miss.
  const file = itemEntryFile(root, keys.base);
  const onDisk = await fs.readFile(file);
  onDisk[onDisk.length - 100] ^= 0xff;
  await fs.chmod(file, 0o644);
  await fs.writeFile(file, onDisk);
  const again = await run();
  assert.equal(again.result.metrics?.['probed'], 7);
  assert.deepEqual(again.out, first.out);
  assert.equal((await run()).result.metrics?.['probed'], 0, 'the rewritten base serves the next run');
});
