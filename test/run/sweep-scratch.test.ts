/**
 * Scratch workspaces for sweep variants (src/sweep/scratch.ts), on real files:
 * private outputs absent, their ancestors and working dirs real, everything
 * else linked through, shared outputs linked before they exist, and removal
 * never reaching through a link.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildScratch, removeScratch } from '../../src/sweep/scratch.js';

async function tmp(): Promise<{ ws: string; root: string } & AsyncDisposable> {
  const ws = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'scratch-ws-')));
  const root = path.join(ws, 'cache', 'sweeps', 'x');
  return { ws, root, [Symbol.asyncDispose]: async () => fs.rmSync(ws, { recursive: true, force: true }) };
}

const write = (file: string, text: string): void => {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
};

test('buildScratch: outputs private, ancestors and cwd real, the rest linked; cache and .pipeline left out', async () => {
  await using t = await tmp();
  write(path.join(t.ws, 'data', 'a.txt'), 'A');
  write(path.join(t.ws, 'out', 'model.bin'), 'OLD MODEL'); // a previous run's output: private
  write(path.join(t.ws, 'out', 'notes.md'), 'user notes');
  write(path.join(t.ws, 'src', 'train.py'), 'print(1)');
  write(path.join(t.ws, '.pipeline', 'lock'), '');
  const dir = path.join(t.root, 'v1');
  await buildScratch({ workspace: t.ws, dir, root: t.root, privatePaths: ['out/model.bin', 'metrics.json'], realDirs: ['src'], links: ['prep/x.txt'], exclude: [path.join(t.ws, 'cache'), path.join(t.ws, '.pipeline')] });

  const l = (rel: string): fs.Stats | undefined => fs.lstatSync(path.join(dir, rel), { throwIfNoEntry: false });
  assert.ok(l('data')!.isSymbolicLink());
  assert.equal(fs.readFileSync(path.join(dir, 'data', 'a.txt'), 'utf8'), 'A');
  assert.ok(l('out')!.isDirectory() && !l('out')!.isSymbolicLink(), 'ancestor of a private output is real');
  assert.equal(l('out/model.bin'), undefined, 'the private output is absent');
  assert.ok(l('out/notes.md')!.isFile(), 'a small file in a real dir is a private copy');
  assert.ok(l('src')!.isDirectory() && !l('src')!.isSymbolicLink(), 'working dir is real');
  assert.ok(l('src/train.py')!.isFile());
  assert.equal(l('cache'), undefined);
  assert.equal(l('.pipeline'), undefined);
  assert.ok(l('prep')!.isSymbolicLink(), 'a shared output not produced yet is linked (dangling)');

  // Writing the private output from the working dir stays in the scratch.
  fs.writeFileSync(path.join(dir, 'src', '..', 'out', 'model.bin'), 'NEW');
  assert.equal(fs.readFileSync(path.join(t.ws, 'out', 'model.bin'), 'utf8'), 'OLD MODEL');
  // The shared output appears through the link once produced in the workspace.
  write(path.join(t.ws, 'prep', 'x.txt'), 'P');
  assert.equal(fs.readFileSync(path.join(dir, 'prep', 'x.txt'), 'utf8'), 'P');

  await removeScratch(t.root, dir);
  assert.equal(fs.existsSync(dir), false);
  assert.equal(fs.readFileSync(path.join(t.ws, 'data', 'a.txt'), 'utf8'), 'A', 'link targets survive removal');
  assert.equal(fs.readFileSync(path.join(t.ws, 'out', 'notes.md'), 'utf8'), 'user notes');
  assert.equal(fs.readFileSync(path.join(t.ws, 'src', 'train.py'), 'utf8'), 'print(1)');
  assert.equal(fs.readFileSync(path.join(t.ws, 'prep', 'x.txt'), 'utf8'), 'P');
});

test('buildScratch: small files in real dirs are copied (mode kept, realpath stays inside), big ones and shared outputs linked, within a budget', async () => {
  await using t = await tmp();
  write(path.join(t.ws, 'run.sh'), '#!/bin/sh\necho hi\n');
  fs.chmodSync(path.join(t.ws, 'run.sh'), 0o755);
  write(path.join(t.ws, 'big.bin'), 'x'.repeat(2000));
  write(path.join(t.ws, 'a.txt'), 'a'.repeat(300));
  write(path.join(t.ws, 'b.txt'), 'b'.repeat(300));
  write(path.join(t.ws, 'prep.txt'), 'shared output');
  const dir = path.join(t.root, 'v1');
  await buildScratch({ workspace: t.ws, dir, root: t.root, privatePaths: ['model.txt'], realDirs: [], links: ['prep.txt'], exclude: [path.join(t.ws, 'cache')], copyMaxBytes: 1000, copyBudgetBytes: 500 });
  const l = (rel: string): fs.Stats => fs.lstatSync(path.join(dir, rel));
  assert.ok(l('run.sh').isFile());
  assert.equal(l('run.sh').mode & 0o777, 0o755, 'mode bits kept');
  assert.equal(fs.realpathSync(path.join(dir, 'run.sh')), path.join(dir, 'run.sh'), 'a script resolving its real path stays in the scratch dir');
  assert.ok(l('big.bin').isSymbolicLink(), 'over copyMaxBytes: linked');
  assert.ok(l('prep.txt').isSymbolicLink(), 'a shared output is always a link');
  // 500 bytes of budget: run.sh (20 B) and one 300 B file are copied, the other is linked.
  assert.deepEqual([l('a.txt').isFile(), l('b.txt').isSymbolicLink()], [true, true]);
  // A copy is private: writing it leaves the workspace file alone.
  fs.writeFileSync(path.join(dir, 'a.txt'), 'changed');
  assert.equal(fs.readFileSync(path.join(t.ws, 'a.txt'), 'utf8'), 'a'.repeat(300));
});

test('removeScratch refuses a directory outside its root', async () => {
  await using t = await tmp();
  await assert.rejects(removeScratch(t.root, t.ws), /is not inside/);
  assert.ok(fs.existsSync(t.ws));
});
