/**
 * A stage host loads only what the stage it runs needs: the real child
 * (`src/stage-host/child.ts`), forked as `host.ts` forks it, with a module
 * resolve hook that records every module it loads. A `partition` host must
 * not load another stage's module, tfjs or sharp; an `ingest` host not the
 * model stages or tfjs. A host started with `--prepare=ingest` loads ingest
 * and sharp while idle, before any request. And `registry-lazy.ts` names
 * exactly the stages of `registry.ts`, resolving to the very same objects.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { childEntry } from '../../src/stage-host/host.js';
import type { ChildMessage, RunRequest } from '../../src/stage-host/protocol.js';
import { builtinStages } from '../../stages/registry.js';
import { builtinStageNames, loadBuiltinStage } from '../../stages/registry-lazy.js';
import { moduleRecorder } from '../helpers/module-recorder.js';


/**
 * CommonJS preload: when the host exits, appends every CommonJS module it
 * loaded (sharp and tfjs come through `createRequire`, which the ESM hook does
 * not see) to `log`.
 */
function cjsRecorder(log: string): string {
  return `const fs = require('node:fs');
process.on('exit', () => fs.appendFileSync(${JSON.stringify(log)}, Object.keys(require.cache).map((f) => 'file://' + f + '\\n').join('')));
`;
}

/** Runs one request in a freshly forked host (until it exits); returns its answer and every module it loaded. */
async function runInHost(dir: string, req: RunRequest): Promise<{ answer: ChildMessage; modules: string[] }> {
  const log = path.join(dir, `modules-${req.stageName}.log`);
  const preload = path.join(dir, `record-${req.stageName}.cjs`);
  await fs.writeFile(preload, cjsRecorder(log));
  const child = fork(childEntry, [], {
    execArgv: ['--no-warnings', '--import', moduleRecorder(log), '--require', preload],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'json',
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const answer = await new Promise<ChildMessage>((resolve, reject) => {
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'result' || m.type === 'error') resolve(m);
    });
    child.on('exit', (code) => reject(new Error(`host exited (${code}) before answering: ${stderr}`)));
    child.send(req);
  });
  child.disconnect(); // an idle host exits when the engine disconnects
  await exited;
  return { answer, modules: (await fs.readFile(log, 'utf8')).split('\n').filter(Boolean) };
}

/** Stage modules (`stages/<name>.js` directly under stages/) among loaded URLs. */
function stageModules(modules: readonly string[]): string[] {
  return [...new Set(modules.map((u) => /\/dist\/stages\/([^/]+)\.js$/.exec(u)?.[1]).filter((m): m is string => m !== undefined))].sort();
}

/** Loaded modules of the heavy libraries (tfjs, sharp, h5wasm, nsfwjs) and worker_threads. */
const heavy = (modules: readonly string[]) => [...new Set(modules.filter((u) => /node_modules\/(@tensorflow|sharp|h5wasm|nsfwjs)\//.test(u) || u === 'node:worker_threads'))];

test('stage host: an ingest host loads the ingest module only; a partition host the partition module only; neither loads tfjs', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'child-imports-'));
  try {
    for (const [rel, v] of [['img/a/1.png', 10], ['img/a/2.png', 20], ['img/b/3.png', 30], ['img/b/4.png', 40]] as const) {
      await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: v, g: 40, b: 90 } } }).png().toFile(path.join(dir, rel));
    }
    const common = { workspace: dir, cacheDir: path.join(dir, 'cache'), seed: 0, inputs: {} };
    const ingestOut = path.join(dir, 'ingest-out');
    const partitionOut = path.join(dir, 'partition-out');
    await fs.mkdir(ingestOut);
    await fs.mkdir(partitionOut);

    const ingest = await runInHost(dir, { type: 'run', stageId: 'ingest', stageName: 'ingest', params: { source: 'img' }, outDir: ingestOut, ...common });
    assert.equal(ingest.answer.type, 'result', JSON.stringify(ingest.answer));
    assert.deepEqual(stageModules(ingest.modules), ['ingest', 'registry-lazy']);
    // ingest probes with sharp (loaded when the first new file is probed), never with tfjs.
    assert.ok(heavy(ingest.modules).some((u) => u.includes('/sharp/')), 'the recorder saw no sharp: it would not see tfjs either');
    assert.deepEqual(heavy(ingest.modules).filter((u) => !u.includes('/sharp/') && !u.includes('/@img/')), []);

    const partition = await runInHost(dir, { type: 'run', stageId: 'partition', stageName: 'partition', params: {}, outDir: partitionOut, ...common, inputs: { ingest: ingestOut } });
    assert.equal(partition.answer.type, 'result', JSON.stringify(partition.answer));
    assert.deepEqual(stageModules(partition.modules), ['partition', 'registry-lazy']);
    assert.deepEqual(heavy(partition.modules), []);
    assert.ok(!partition.modules.some((u) => u.includes('/stages/ml/')), 'a partition host loaded model code');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('registry-lazy names the stages of registry.ts and resolves each to the same object; an unknown name is undefined', async () => {
  assert.deepEqual([...builtinStageNames], [...builtinStages.keys()]);
  for (const name of builtinStageNames) assert.equal(await loadBuiltinStage(name), builtinStages.get(name), name);
  assert.equal(await loadBuiltinStage('no-such-stage'), undefined);
  assert.equal(await loadBuiltinStage('constructor'), undefined);
});

test('stage host: started with --prepare=ingest it loads the ingest module and sharp while idle, then runs ingest', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'child-prepare-'));
  try {
    await fs.mkdir(path.join(dir, 'img', 'a'), { recursive: true });
    await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toFile(path.join(dir, 'img', 'a', '1.png'));
    const log = path.join(dir, 'loads.log');
    // Appends each CommonJS package the host requires by name (sharp comes through createRequire).
    const preload = path.join(dir, 'record.cjs');
    await fs.writeFile(preload, `const Module = require('node:module'); const fs = require('node:fs'); const load = Module._load;
Module._load = function (request, ...rest) { if (!request.startsWith('.') && !request.startsWith('/') && !request.startsWith('node:')) fs.appendFileSync(${JSON.stringify(log)}, request + '\\n'); return load.call(this, request, ...rest); };
`);
    const child = fork(childEntry, ['--prepare=ingest'], { execArgv: ['--no-warnings', '--import', moduleRecorder(log), '--require', preload], stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'json' });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      // No request sent: wait (bounded) until the idle host has loaded sharp.
      const loaded = async () => (await fs.readFile(log, 'utf8').catch(() => '')).split('\n');
      for (let i = 0; i < 1500 && !(await loaded()).includes('sharp'); i++) await new Promise((r) => setTimeout(r, 20));
      const seen = await loaded();
      assert.ok(seen.includes('sharp'), `sharp not loaded by the idle host:\n${seen.join('\n')}`);
      assert.ok(seen.some((u) => u.endsWith('/dist/stages/ingest.js')), 'ingest module not imported while idle');
      const out = path.join(dir, 'out');
      await fs.mkdir(out);
      const answer = await new Promise<ChildMessage>((resolve) => {
        child.on('message', (m: ChildMessage) => {
          if (m.type === 'result' || m.type === 'error') resolve(m);
        });
        child.send({ type: 'run', stageId: 'ingest', stageName: 'ingest', params: { source: 'img' }, inputs: {}, outDir: out, workspace: dir, cacheDir: path.join(dir, 'cache'), seed: 0 } satisfies RunRequest);
      });
      assert.equal(answer.type, 'result', JSON.stringify(answer));
      assert.equal((answer as { result: { metrics?: Record<string, number> } }).result.metrics?.['images'], 1);
    } finally {
      child.disconnect();
      await exited;
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('ingest prepare: loads sharp and probes its warm-up JPEG (it rejects if that image no longer probes)', async () => {
  const { ingestStage } = await import('../../stages/ingest.js');
  assert.ok(ingestStage.prepare !== undefined);
  await ingestStage.prepare();
});
