import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCommand } from '../../src/exec/cmd.js';

const node = process.execPath;

/** True while `pid` runs (a zombie awaiting its reaper counts as dead). */
async function isAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return !/\) Z /.test(stat);
}

async function tempDir(): Promise<AsyncDisposable & { dir: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'exec-cmd-'));
  return { dir, [Symbol.asyncDispose]: () => fs.rm(dir, { recursive: true, force: true }) };
}

test('a shell-looking argument reaches the program as one argv element', async () => {
  await using t = await tempDir();
  const lines: string[] = [];
  const evil = '"; rm -rf ~; echo pwned > pwned.txt';
  const out = await runCommand({
    argv: [node, '-e', 'console.log(JSON.stringify(process.argv.slice(1)))', evil, '$(touch x)'],
    cwd: t.dir,
    env: {},
    onLine: (_s, l) => lines.push(l),
  });
  assert.deepEqual(out, { kind: 'exited', code: 0 });
  assert.deepEqual(JSON.parse(lines[0]), [evil, '$(touch x)']);
  assert.deepEqual(await fs.readdir(t.dir), [], 'nothing else ran');
});

test('stdout and stderr arrive as lines per stream, including an unterminated last line', async () => {
  await using t = await tempDir();
  const got: string[] = [];
  const out = await runCommand({
    argv: [node, '-e', 'process.stdout.write("a\\r\\nb\\n"); process.stderr.write("warn1\\n"); process.stdout.write("tail")'],
    cwd: t.dir,
    env: {},
    onLine: (s, l) => got.push(`${s}:${l}`),
  });
  assert.deepEqual(out, { kind: 'exited', code: 0 });
  assert.deepEqual(got.filter((g) => g.startsWith('stdout')), ['stdout:a', 'stdout:b', 'stdout:tail']);
  assert.deepEqual(got.filter((g) => g.startsWith('stderr')), ['stderr:warn1']);
});

test('exit code, env and cwd are passed through', async () => {
  await using t = await tempDir();
  const got: string[] = [];
  const out = await runCommand({
    argv: [node, '-e', 'console.log(process.env.MY_VAR, process.cwd(), typeof process.env.PATH); process.exit(7)'],
    cwd: t.dir,
    env: { MY_VAR: 'hello' },
    onLine: (_s, l) => got.push(l),
  });
  assert.deepEqual(out, { kind: 'exited', code: 7 });
  assert.equal(got[0], `hello ${await fs.realpath(t.dir)} string`);
});

test('a missing program is a spawn error naming it', async () => {
  await using t = await tempDir();
  const out = await runCommand({ argv: ['definitely-not-a-program-xyz'], cwd: t.dir, env: {} });
  assert.deepEqual(out, { kind: 'spawn-error', message: 'command not found: definitely-not-a-program-xyz' });
});

test('cancel kills the whole process group, grandchildren included', async () => {
  await using t = await tempDir();
  const ac = new AbortController();
  const pidFile = path.join(t.dir, 'grandchild.pid');
  const script = `
    const { spawn } = require('node:child_process');
    const g = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(g.pid));
    console.log('ready');
    setInterval(() => {}, 1000);`;
  const out = await runCommand({
    argv: [node, '-e', script],
    cwd: t.dir,
    env: {},
    signal: ac.signal,
    onLine: (_s, l) => {
      if (l === 'ready') ac.abort();
    },
  });
  assert.deepEqual(out, { kind: 'cancelled' });
  const gpid = Number(await fs.readFile(pidFile, 'utf8'));
  // Give the kernel a moment to reap; then the grandchild must be gone.
  let alive = true;
  for (let i = 0; i < 100 && alive; i++) {
    alive = await isAlive(gpid);
    if (alive) await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(alive, false, 'grandchild was killed with the group');
});
