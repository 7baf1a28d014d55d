/**
 * `hasSignature`: the plain-stat check of a recorded output file signature
 * (materialize's reuse check) agrees with the exact bigint `statSignature`:
 * the same file matches, and a new mtime (even 10 µs apart), size or
 * inode does not. Real files in a temp dir.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { hasSignature, mtimeMsOf, statSignature, type MaterialisedFile } from '../../src/cache/workspace-state.js';
import { tempDir } from './helpers.js';

function recorded(file: string): MaterialisedFile {
  const s = statSignature(file)!;
  return ['f', s.size, s.mtimeNs, s.ino];
}

test('mtimeMsOf gives exactly the mtimeMs a plain stat reports (the fast path of hasSignature holds on this Node)', async () => {
  await using t = await tempDir();
  for (let i = 0; i < 20; i++) {
    const f = path.join(t.dir, `f${i}`);
    fs.writeFileSync(f, String(i));
    if (i % 2 === 1) fs.utimesSync(f, 1_700_000_000.123456 + i, 1_700_000_000.123456 + i);
    const big = fs.lstatSync(f, { bigint: true });
    assert.equal(mtimeMsOf(big.mtimeNs.toString()), fs.lstatSync(f).mtimeMs, `file ${i}`);
  }
  assert.ok(Number.isNaN(mtimeMsOf('not a number')));
});

test('hasSignature: the recorded file matches; another mtime (10 µs apart), size, inode or kind does not', async () => {
  await using t = await tempDir();
  const f = path.join(t.dir, 'out.bin');
  fs.writeFileSync(f, 'abcdef');
  fs.utimesSync(f, 1_700_000_000.5, 1_700_000_000.5);
  const sig = recorded(f);
  assert.equal(hasSignature(f, sig), true);

  fs.utimesSync(f, 1_700_000_000.5, 1_700_000_000.50001);
  assert.equal(hasSignature(f, sig), false, 'mtime 10 µs later');
  fs.utimesSync(f, 1_700_000_000.5, 1_700_000_000.5);
  assert.equal(hasSignature(f, sig), true, 'mtime back');

  fs.writeFileSync(f, 'abcdefg');
  fs.utimesSync(f, 1_700_000_000.5, 1_700_000_000.5);
  assert.equal(hasSignature(f, sig), false, 'size');

  const copy = path.join(t.dir, 'copy.bin');
  fs.writeFileSync(copy, 'abcdef');
  fs.utimesSync(copy, 1_700_000_000.5, 1_700_000_000.5);
  fs.renameSync(copy, f);
  assert.equal(hasSignature(f, sig), false, 'same size and mtime, another inode');
  const now = recorded(f);
  assert.equal(hasSignature(f, now), true);

  // The documented resolution: a nanosecond is below what the double mtimeMs tells apart (as in the hash memo)...
  assert.equal(hasSignature(f, [now[0], now[1], (BigInt(now[2]) + 1n).toString(), now[3]]), true, 'one nanosecond off: within the resolution');
  // ...a microsecond is not, and an unreadable recorded value goes the exact way.
  assert.equal(hasSignature(f, [now[0], now[1], (BigInt(now[2]) + 1000n).toString(), now[3]]), false, 'one microsecond off');
  assert.equal(hasSignature(f, [now[0], now[1], 'garbage', now[3]]), false);

  fs.rmSync(f);
  assert.equal(hasSignature(f, now), false, 'gone');
  fs.mkdirSync(f);
  assert.equal(hasSignature(f, now), false, 'a directory now');
});
