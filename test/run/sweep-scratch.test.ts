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
  assert.ok(l('out/notes.md')!.isSymbolicLink());
  assert.ok(l('src')!.isDirectory() && !l('src')!.isSymbolicLink(), 'working dir is real');
  assert.ok(l('src/train.py')!.isSymbolicLink());
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

test('removeScratch refuses a directory outside its root', async () => {
  await using t = await tmp();
  await assert.rejects(removeScratch(t.root, t.ws), /is not inside/);
  assert.ok(fs.existsSync(t.ws));
});
