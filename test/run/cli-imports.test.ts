/**
 * What the engine process itself loads: a run of a pipeline that uses
 * ingest and partition imports those two stage modules (through
 * `stages/registry-lazy.ts`) and no other built-in (the model stages pull in
 * far more code), once its analysed graph is cached. A real CLI process, a
 * real pipeline on real PNGs, an ESM resolve hook recording every module.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { repoRoot } from '../helpers/rig.js';
import { moduleRecorder } from '../helpers/module-recorder.js';


test('a run loads only the built-in stage modules its pipeline uses', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cli-imports-'));
  try {
    for (let i = 0; i < 4; i++) {
      await fs.mkdir(path.join(dir, 'img', `c${i % 2}`), { recursive: true });
      await sharp({ create: { width: 9, height: 7, channels: 3, background: { r: 60 * i, g: 9, b: 99 } } }).png().toFile(path.join(dir, 'img', `c${i % 2}`, `${i}.png`));
    }
    await fs.writeFile(path.join(dir, 'pipeline.yaml'), 'name: imports\nstages:\n  ingest:\n    uses: ingest\n    with:\n      source: img\n  partition:\n    uses: partition\n');
    const cli = path.join(repoRoot, 'bin', 'pipeline.js');
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env.PIPELINE_CACHE;
    const first = spawnSync(process.execPath, [cli, 'run'], { cwd: dir, env, encoding: 'utf8', timeout: 120_000 });
    assert.equal(first.status, 0, first.stderr);
    // Edit the source so the stages run again (keys computed, records read and written), with the graph cached.
    await sharp({ create: { width: 9, height: 7, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toFile(path.join(dir, 'img', 'c0', 'new.png'));
    const log = path.join(dir, 'modules.log');
    const again = spawnSync(process.execPath, ['--no-warnings', '--import', moduleRecorder(log), cli, 'run'], { cwd: dir, env, encoding: 'utf8', timeout: 120_000 });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout + again.stderr, /ingest ran/);
    const modules = (await fs.readFile(log, 'utf8')).split('\n').filter(Boolean);
    const stageModules = [...new Set(modules.map((u) => /\/dist\/stages\/([^/]+)\.js$/.exec(u)?.[1]).filter((m): m is string => m !== undefined))].sort();
    assert.deepEqual(stageModules, ['ingest', 'partition', 'registry-lazy']);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
