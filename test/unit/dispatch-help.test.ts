/** `pipeline help CMD`, and unknown commands that suggest the right one (typos, DVC habits). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import os from 'node:os';
import { dispatch } from '../../src/cli/dispatch.js';

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d: Buffer) => (o += d.toString()));
  err.on('data', (d: Buffer) => (e += d.toString()));
  const code = await dispatch(argv, { stdout: out, stderr: err, cwd: os.tmpdir(), env: {}, signal: new AbortController().signal });
  return { code, out: o, err: e };
}

test('pipeline help run prints run\'s own help, like pipeline run --help', async () => {
  const viaHelp = await cli(['help', 'run']);
  const direct = await cli(['run', '--help']);
  assert.equal(viaHelp.code, 0);
  assert.match(viaHelp.out, /^usage: pipeline run /);
  assert.equal(viaHelp.out, direct.out);
  assert.match((await cli(['help'])).out, /^usage: pipeline <command>/);
});

test('an unknown command suggests the close one, or what a DVC command is called here', async () => {
  const typo = await cli(['stauts']);
  assert.equal(typo.code, 2);
  assert.match(typo.err, /^pipeline: unknown command "stauts"; did you mean `pipeline status`\?\n/);
  assert.match((await cli(['repro'])).err, /^pipeline: unknown command "repro"; DVC's `dvc repro` is `pipeline run`\n/);
  assert.match((await cli(['gc'])).err, /it is `pipeline cache gc`/);
  assert.match((await cli(['zzz'])).err, /^pipeline: unknown command "zzz"\n\nusage:/);
});
