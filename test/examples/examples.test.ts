/**
 * Every example in pipelines/ validates against the schema, and runs to
 * completion through the real CLI in a temp copy of the repo layout (with
 * fewer epochs / images via -S, so the suite stays fast): quickstart,
 * custom-stage, fashion-mnist (a few hundred images of the real IDX files)
 * and simpsons (the seed recipe on a tiny generated stand-in dataset, with
 * the offline bundled InceptionV3 weights since tests have no network).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { packageRoot } from '../../src/paths.js';
import { loadPipeline } from '../../src/config/load.js';

const examples = (await fs.readdir(path.join(packageRoot, 'pipelines'))).filter((f) => f.endsWith('.yaml')).sort();
const fmnist = path.resolve(packageRoot, '..', 'shared', 'datasets', 'fashion-mnist');
const haveFmnist = await fs.access(path.join(fmnist, 'train-images-idx3-ubyte.gz')).then(() => true, () => false);

test('the four documented examples exist', () => {
  for (const f of ['quickstart.yaml', 'fashion-mnist.yaml', 'simpsons.yaml', 'custom-stage.yaml']) assert.ok(examples.includes(f), f);
});

for (const f of examples) {
  test(`${f} is valid`, async () => {
    const r = await loadPipeline(path.join(packageRoot, 'pipelines', f));
    assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.error.map((d) => d.message)));
    assert.equal(path.resolve(r.value.cacheDir ?? ''), path.join(packageRoot, 'cache'), 'examples share the repo cache/');
  });
}

/** A temp copy of the repo layout the examples expect: pipelines/ (yaml, scripts, sample data) and scripts/. */
async function layout(): Promise<{ root: string; ws: string } & AsyncDisposable> {
  const root = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'examples-')));
  const ws = path.join(root, 'pipelines');
  await fs.mkdir(path.join(ws, 'data'), { recursive: true });
  for (const f of examples) await fs.copyFile(path.join(packageRoot, 'pipelines', f), path.join(ws, f));
  await fs.cp(path.join(packageRoot, 'pipelines', 'scripts'), path.join(ws, 'scripts'), { recursive: true });
  await fs.cp(path.join(packageRoot, 'pipelines', 'data', 'fashion-mnist-sample'), path.join(ws, 'data', 'fashion-mnist-sample'), { recursive: true });
  await fs.symlink(path.join(packageRoot, 'scripts'), path.join(root, 'scripts'));
  return { root, ws, [Symbol.asyncDispose]: () => fs.rm(root, { recursive: true, force: true }) };
}

function run(ws: string, args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [path.join(packageRoot, 'bin', 'pipeline.js'), ...args], { cwd: ws, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 600_000 });
  return { code: r.status, out: `${r.stdout}\n${r.stderr}` };
}

async function metrics(ws: string, stage: string): Promise<Record<string, number>> {
  return JSON.parse(await fs.readFile(path.join(ws, 'out', stage, 'metrics.json'), 'utf8')) as Record<string, number>;
}

test('quickstart and custom-stage run to completion', async () => {
  await using l = await layout();
  const q = run(l.ws, ['run', 'quickstart.yaml', '-S', 'train.epochs=2']);
  assert.equal(q.code, 0, q.out);
  assert.match(q.out, /evaluate ran/);
  const m = await metrics(l.ws, 'evaluate');
  assert.ok(m['accuracy']! > 0.1, `quickstart test accuracy ${m['accuracy']} above chance`);
  const c = run(l.ws, ['run', 'custom-stage.yaml', '-S', 'train.epochs=1']);
  assert.equal(c.code, 0, c.out);
  const check = JSON.parse(await fs.readFile(path.join(l.ws, 'reports', 'data-check.json'), 'utf8')) as Record<string, number>;
  assert.deepEqual([check['images'], check['classes']], [400, 10]);
  // The user's stage fails the pipeline (and stops training) when its threshold is not met.
  const strict = run(l.ws, ['run', 'custom-stage.yaml', '-S', 'check.min_per_class=50']);
  assert.equal(strict.code, 1, strict.out);
  assert.match(strict.out, /check-data/);
});

test('fashion-mnist runs on a slice of the real IDX files', { skip: haveFmnist ? false : `no ${fmnist}` }, async () => {
  await using l = await layout();
  const r = run(l.ws, ['run', 'fashion-mnist.yaml', '-S', `source=${fmnist}`, '-S', 'limit.train=600', '-S', 'limit.test=200', '-S', 'train.epochs=1']);
  assert.equal(r.code, 0, r.out);
  const m = await metrics(l.ws, 'evaluate');
  assert.equal(m['test_samples'], 200, 'evaluated on the official test images');
});

test('simpsons (the seed recipe) runs on a tiny generated stand-in dataset', async () => {
  await using l = await layout();
  const sharp = (await import('sharp')).default;
  const chars = ['bart_simpson', 'homer_simpson', 'lisa_simpson'];
  for (const [ci, c] of chars.entries()) {
    await fs.mkdir(path.join(l.ws, 'data', 'simpsons_dataset', c), { recursive: true });
    for (let i = 0; i < 10; i++) {
      const bg = { r: (ci * 90 + i * 7) % 256, g: (200 - ci * 60) % 256, b: (i * 23) % 256 };
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="96" height="80"><rect width="96" height="80" fill="rgb(${bg.r},${bg.g},${bg.b})"/><circle cx="${20 + ci * 25}" cy="${30 + i}" r="${10 + ci * 4}" fill="#fd0"/></svg>`;
      await sharp(Buffer.from(svg)).jpeg({ quality: 90 }).toFile(path.join(l.ws, 'data', 'simpsons_dataset', c, `pic_${i}.jpg`));
    }
  }
  // Tests have no network: the offline bundled InceptionV3 (299x299) stands in for the ImageNet download.
  const r = run(l.ws, ['run', 'simpsons.yaml', '-S', 'weights=bundled', '-S', 'size=[299,299]', '-S', 'augment.copies=1', '-S', 'train.epochs=1', '-S', 'train.steps_per_epoch=2', '-S', 'train.batch_size=8']);
  assert.equal(r.code, 0, r.out);
  const m = await metrics(l.ws, 'evaluate');
  assert.ok(m['test_samples']! >= 3, 'one test image per class at least');
  const spec = await fs.readFile(path.join(l.ws, 'out', 'build-model', 'summary.txt'), 'utf8');
  assert.match(spec, /inception_v3|mixed10/i);
});
