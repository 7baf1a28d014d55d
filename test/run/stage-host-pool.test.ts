/**
 * Warm stage hosts (issue 3): real child processes running the real `ingest`,
 * `resize` and `partition` stages on real PNGs. A host that ran a light data
 * stage cleanly runs the next one; a failed, cancelled, crashed or
 * non-sharing stage never leaves a host to reuse; idle hosts neither keep the
 * engine alive nor outlive it; `refer` names item-cache entries instead of
 * linking them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { HostPool, type BuiltinRunSpec } from '../../src/stage-host/host.js';
import { retireReason, HOST_RSS_LIMIT_BYTES } from '../../src/stage-host/policy.js';

async function workspace(images: number): Promise<AsyncDisposable & { dir: string; staging(): string }> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'host-pool-'));
  for (let i = 0; i < images; i++) {
    const cls = i % 2 === 0 ? 'a' : 'b';
    await fsp.mkdir(path.join(dir, 'img', cls), { recursive: true });
    await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: (i * 37) % 256, g: 40, b: 90 } } })
      .png()
      .toFile(path.join(dir, 'img', cls, `${i}.png`));
  }
  let n = 0;
  return {
    dir,
    staging() {
      const s = path.join(dir, `staging-${n++}`);
      fs.mkdirSync(s);
      return s;
    },
    [Symbol.asyncDispose]: () => fsp.rm(dir, { recursive: true, force: true }),
  };
}

type W = Awaited<ReturnType<typeof workspace>>;
const ingestSpec = (w: W, extra: Partial<BuiltinRunSpec> = {}): BuiltinRunSpec => ({
  stageId: 'ingest',
  stageName: 'ingest',
  params: { source: 'img', include: ['**/*'], exclude: [], on_invalid: 'skip', max_pixels: 1_000_000, follow_symlinks: false },
  inputs: {},
  outDir: w.staging(),
  workspace: w.dir,
  cacheDir: path.join(w.dir, 'cache'),
  seed: 0,
  ...extra,
});

/** `resize` to 4x4 (or `partition`) of the ingest output in `ingestDir`, in workspace `w`. */
const resizeSpec = (w: W, ingestDir: string, extra: Partial<BuiltinRunSpec> = {}): BuiltinRunSpec => ({ ...ingestSpec(w), stageId: 'resize', stageName: 'resize', params: { size: [4, 4] }, inputs: { ingest: ingestDir }, ...extra });
const partitionSpec = (w: W, ingestDir: string): BuiltinRunSpec => ({ ...ingestSpec(w), stageId: 'partition', stageName: 'partition', params: {}, inputs: { ingest: ingestDir } });

/** Runs `spec` and returns the outcome plus the pid of the host that ran it. */
async function runIn(pool: HostPool, spec: BuiltinRunSpec): Promise<{ kind: string; pid: number; outcome: Awaited<ReturnType<HostPool['run']>> }> {
  let pid = -1;
  const outcome = await pool.run({
    ...spec,
    onSpawn: (p) => {
      pid = p;
      return spec.onSpawn?.(p) ?? (() => {});
    },
  });
  return { kind: outcome.kind, pid, outcome };
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitGone(pid: number, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !alive(pid);
}

test('ingest, resize and partition run one after another in one warm host, with the same outputs as fresh processes', async () => {
  await using w = await workspace(6);
  const pool = new HostPool();
  const fresh = new HostPool({ reuse: false });
  try {
    const ing = await runIn(pool, ingestSpec(w));
    assert.equal(ing.kind, 'ok', JSON.stringify(ing.outcome));
    const ingestDir = path.join(w.dir, 'staging-0');
    const resize = await runIn(pool, resizeSpec(w, ingestDir));
    assert.equal(resize.kind, 'ok', JSON.stringify(resize.outcome));
    const part = await runIn(pool, partitionSpec(w, ingestDir));
    assert.equal(part.kind, 'ok', JSON.stringify(part.outcome));
    assert.equal(resize.pid, ing.pid, 'resize reused the ingest host');
    assert.equal(part.pid, ing.pid, 'partition reused it too');
    assert.equal(pool.spawned, 1);

    // The same three stages in fresh processes write byte-identical outputs.
    const ing2 = await runIn(fresh, ingestSpec(w));
    const ingestDir2 = path.join(w.dir, 'staging-3');
    const part2 = await runIn(fresh, partitionSpec(w, ingestDir2));
    assert.deepEqual([ing2.kind, part2.kind], ['ok', 'ok']);
    assert.notEqual(ing2.pid, part2.pid);
    assert.equal(fresh.spawned, 2);
    for (const [a, b] of [
      ['staging-0', 'staging-3'],
      ['staging-2', 'staging-4'],
    ] as const) {
      for (const f of fs.readdirSync(path.join(w.dir, a))) {
        assert.deepEqual(fs.readFileSync(path.join(w.dir, b, f)), fs.readFileSync(path.join(w.dir, a, f)), `${a}/${f}`);
      }
    }
    assert.ok(await waitGone(part2.pid), 'a fresh process exits after its stage');
  } finally {
    await pool.close();
  }
});

test('a failed stage, a stage that does not share, and a cancelled stage never leave their host for the next one', async () => {
  await using w = await workspace(64);
  const pool = new HostPool();
  try {
    const bad = await runIn(pool, ingestSpec(w, { params: { ...ingestSpec(w).params, source: 'nope', on_invalid: 'fail' } }));
    assert.equal(bad.kind, 'failed');
    assert.ok(await waitGone(bad.pid), 'the failed stage host exits');
    const unknown = await runIn(pool, ingestSpec(w, { stageName: 'no-such-stage' }));
    assert.deepEqual(unknown.outcome, { kind: 'failed', message: 'unknown built-in stage "no-such-stage"' });
    assert.notEqual(unknown.pid, bad.pid);

    const ok = await runIn(pool, ingestSpec(w));
    assert.equal(ok.kind, 'ok');
    assert.ok(alive(ok.pid), 'kept warm');
    // Cancel a stage running in the warm host: its process group is killed, the next stage gets a new host.
    const ac = new AbortController();
    const cancelled = await runIn(pool, ingestSpec(w, { signal: ac.signal, killGraceMs: 50, onSpawn: () => (setImmediate(() => ac.abort()), () => {}) }));
    assert.deepEqual(cancelled.outcome, { kind: 'cancelled' });
    assert.equal(cancelled.pid, ok.pid, 'it ran in the warm host');
    assert.ok(await waitGone(ok.pid), 'the cancelled host is gone');
    const after = await runIn(pool, ingestSpec(w));
    assert.equal(after.kind, 'ok');
    assert.notEqual(after.pid, ok.pid);
  } finally {
    await pool.close();
  }
});

test('a host killed while idle is replaced; one killed mid-stage reports a crash for that stage only', async () => {
  await using w = await workspace(64);
  const pool = new HostPool();
  try {
    const first = await runIn(pool, ingestSpec(w));
    assert.equal(first.kind, 'ok');
    process.kill(first.pid, 'SIGKILL');
    assert.ok(await waitGone(first.pid));
    await new Promise((r) => setTimeout(r, 50));
    const second = await runIn(pool, ingestSpec(w));
    assert.equal(second.kind, 'ok', JSON.stringify(second.outcome));
    assert.notEqual(second.pid, first.pid);

    // A cache of its own: with the first runs' probe memo, 64 images are settled by stats alone, faster than the kill.
    const crashed = await runIn(pool, ingestSpec(w, { cacheDir: path.join(w.dir, 'cache-cold'), onSpawn: (p) => (setImmediate(() => process.kill(p, 'SIGKILL')), () => {}) }));
    assert.deepEqual(crashed.outcome, { kind: 'crashed', message: 'stage process killed by SIGKILL' });
    const third = await runIn(pool, ingestSpec(w));
    assert.equal(third.kind, 'ok');
    assert.notEqual(third.pid, crashed.pid);
  } finally {
    await pool.close();
  }
});

test('prewarm starts a host the next stage uses; idle hosts let the engine exit and then exit themselves', async () => {
  await using w = await workspace(2);
  const pool = new HostPool();
  try {
    assert.equal(pool.prewarm(1, ['ingest', 'train']), 1);
    assert.equal(pool.prewarm(1), 0, 'already one idle');
    const r = await runIn(pool, ingestSpec(w));
    assert.equal(r.kind, 'ok');
    assert.equal(pool.spawned, 1, 'the prewarmed host ran it');
    // It was told to load the stages it may be given that may share a host (train never does).
    assert.deepEqual(fs.readFileSync(`/proc/${r.pid}/cmdline`, 'utf8').split('\0').filter((a) => a.startsWith('--prepare')), ['--prepare=ingest']);
    await pool.close();
    assert.ok(!alive(r.pid), 'close() resolves once the idle host has exited');
  } finally {
    await pool.close();
  }
  // An engine process that leaves a warm host behind exits by itself (nothing refs the host), and the host follows.
  const script = path.join(w.dir, 'engine.mjs');
  const hostModule = new URL('../../src/stage-host/host.js', import.meta.url).href;
  fs.writeFileSync(
    script,
    `import { runBuiltin } from ${JSON.stringify(hostModule)};\n` +
      `let pid;\nconst r = await runBuiltin({ ...JSON.parse(process.argv[2]), onSpawn: (p) => { pid = p; return () => {}; } });\n` +
      // Timed from the stage's result to the engine's exit: startup and the stage itself (slow under load) are not counted.
      `const done = performance.now();\n` +
      `process.on('exit', () => console.log(JSON.stringify({ kind: r.kind, pid, exitAfterMs: performance.now() - done })));\n`,
  );
  const { onSpawn: _, ...spec } = ingestSpec(w);
  const out = spawnSync(process.execPath, [script, JSON.stringify(spec)], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(out.status, 0, out.stderr);
  const { kind, pid, exitAfterMs } = JSON.parse(out.stdout) as { kind: string; pid: number; exitAfterMs: number };
  assert.equal(kind, 'ok');
  // The host's idle timer is 10 s (HostPool idleMs): an engine held by it would exit only after that.
  assert.ok(exitAfterMs < 10_000, `the engine exited ${exitAfterMs.toFixed(0)} ms after the stage: it waited for the idle timeout`);
  assert.ok(await waitGone(pid), 'the idle host exited after its engine');
});

test('retireReason: only light data stages that left nothing behind are reused', () => {
  const clean = { resources: ['PipeWrap', 'PipeWrap', 'WriteWrap'], rss: 200 * 2 ** 20, childPids: [] };
  assert.equal(retireReason('resize', clean), undefined);
  assert.equal(retireReason('train', clean), 'stage train does not share its process');
  assert.equal(retireReason('ingest', { ...clean, resources: ['PipeWrap', 'Timeout', 'Timeout'] }), 'left work behind: Timeout');
  assert.equal(retireReason('ingest', { ...clean, rss: HOST_RSS_LIMIT_BYTES + 1 }), 'resident memory 1024 MiB');
  assert.equal(retireReason('partition', { ...clean, childPids: [4242] }), 'left child processes 4242');
});

test('with offerRefs, resize names its cached entries instead of linking them; without, it links as before', async () => {
  await using w = await workspace(4);
  const pool = new HostPool();
  try {
    const ing = await runIn(pool, ingestSpec(w));
    assert.equal(ing.kind, 'ok');
    const ingestDir = path.join(w.dir, 'staging-0');
    const spec = (offerRefs: boolean): BuiltinRunSpec => resizeSpec(w, ingestDir, { offerRefs });
    const linked = await runIn(pool, spec(false));
    assert.equal(linked.kind, 'ok');
    const linkedDir = path.join(w.dir, 'staging-1');
    const packs = fs.readdirSync(path.join(linkedDir, 'px'), { recursive: true }).map(String).filter((f) => f.endsWith('.px'));
    assert.equal(packs.length, 4);
    assert.equal((linked.outcome as { refs?: unknown }).refs, undefined);

    const referred = await runIn(pool, spec(true));
    assert.equal(referred.kind, 'ok');
    const refDir = path.join(w.dir, 'staging-2');
    assert.deepEqual(fs.readdirSync(refDir), ['index.json'], 'nothing but the index is written');
    const refs = (referred.outcome as { refs?: { path: string; key: string }[] }).refs ?? [];
    assert.deepEqual(refs.map((r) => r.path).sort(), packs.map((p) => `px/${p.split(path.sep).join('/')}`).sort());
    for (const r of refs) {
      const entry = path.join(w.dir, 'cache', 'items', 'resize', r.key.slice(0, 2), r.key);
      assert.deepEqual(fs.readFileSync(entry), fs.readFileSync(path.join(linkedDir, r.path)), r.path);
    }
    assert.deepEqual(fs.readFileSync(path.join(refDir, 'index.json')), fs.readFileSync(path.join(linkedDir, 'index.json')));
  } finally {
    await pool.close();
  }
});

test('retireIdle lets idle hosts exit at once (no waiting); close() then waits for those exits', async () => {
  await using w = await workspace(1);
  const pool = new HostPool();
  try {
    const r = await runIn(pool, ingestSpec(w));
    assert.equal(r.kind, 'ok');
    assert.equal(pool.prewarm(2), 1, 'the host that ran ingest is idle, plus one');
    pool.retireIdle();
    assert.equal(pool.idleCount, 0, 'none left to hand out');
    await pool.close();
    assert.ok(!alive(r.pid), 'close() waited for the retired host to exit');
    assert.equal(pool.prewarm(1), 1, 'the pool stays usable');
  } finally {
    await pool.close();
  }
});

test('an idle host goes to the stage it was prepared for, else to a stage of its warmth (sharp): resize takes the ingest host, partition the one prewarmed for it', async () => {
  await using w = await workspace(4);
  const pool = new HostPool();
  try {
    const ing = await runIn(pool, ingestSpec(w));
    assert.equal(ing.kind, 'ok', JSON.stringify(ing.outcome));
    const ingestDir = path.join(w.dir, 'staging-0');
    // As the engine does while ingest runs: one more host, prepared for the dependent that will not get ingest's.
    assert.equal(pool.prewarm(2, ['partition']), 1);
    // partition asks first: it gets the host prepared for it, not the most recently idle one (ingest's).
    const part = await runIn(pool, partitionSpec(w, ingestDir));
    assert.equal(part.kind, 'ok', JSON.stringify(part.outcome));
    assert.notEqual(part.pid, ing.pid);
    assert.deepEqual(fs.readFileSync(`/proc/${part.pid}/cmdline`, 'utf8').split('\0').filter((a) => a.startsWith('--prepare')), ['--prepare=partition']);
    // Both idle now; resize (sharp) takes the host that has sharp warm: ingest's, though partition's is more recent.
    const resize = await runIn(pool, resizeSpec(w, ingestDir));
    assert.equal(resize.kind, 'ok', JSON.stringify(resize.outcome));
    assert.equal(resize.pid, ing.pid, 'resize went to the ingest host');
    // A stage of no warmth prefers a host without any: partition again takes its own, not the sharp one.
    const part2 = await runIn(pool, partitionSpec(w, ingestDir));
    assert.equal(part2.pid, part.pid);
    assert.equal(pool.spawned, 2);
  } finally {
    await pool.close();
  }
});
