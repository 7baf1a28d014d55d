import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BACKBONES, loadBackbone } from '../../stages/ml/backbones/registry.js';
import type { WeightsSource } from '../../stages/ml/backbones/spec.js';
import { fetchWeights, verifyWeightsCache } from '../../stages/ml/weights/download.js';
import { loadImagenetWeights, mirrorFromEnv, MIRROR_ENV } from '../../stages/ml/weights/imagenet.js';
import { closedBase, installed, sendCut, sendWithRange, serve, writeKerasLayout } from './fixtures.js';

await tf.setBackend('cpu');

let work: string;
let h5: Buffer;
let h5File: string;
let source: WeightsSource;
let sha256: string;
let srcModel: tf.LayersModel;

before(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'weights-dl-'));
  srcModel = BACKBONES.get('simple_cnn')!.build(tf, { inputShape: [28, 28, 1], seed: 11 });
  h5File = path.join(work, 'simple_cnn_weights.h5');
  writeKerasLayout(srcModel, h5File);
  h5 = await fs.readFile(h5File);
  sha256 = createHash('sha256').update(h5).digest('hex');
  source = {
    base: 'http://placeholder/',
    path: 'simple/simple_cnn_weights.h5',
    fileName: 'simple_cnn_weights.h5',
    bytes: h5.length,
    md5: createHash('md5').update(h5).digest('hex'),
  };
});
after(async () => {
  srcModel.dispose();
  await fs.rm(work, { recursive: true, force: true });
});

async function cacheDir(): Promise<string> {
  return fs.mkdtemp(path.join(work, 'cache-'));
}

test('download: success installs <sha256>/<file>; the second call uses the cache without a request', async () => {
  const srv = await serve((req, res) => sendWithRange(req, res, h5));
  try {
    const cache = await cacheDir();
    const r = await fetchWeights({ ...source, base: srv.base }, { cacheDir: cache });
    assert.ok(r.ok, !r.ok ? r.error.message : '');
    assert.equal(r.value.path, path.join(cache, 'weights', sha256, source.fileName));
    assert.deepEqual([r.value.sha256, r.value.bytes, r.value.fromCache], [sha256, h5.length, false]);
    assert.deepEqual(await fs.readFile(r.value.path), h5);
    assert.deepEqual(srv.requests, [{ path: '/simple/simple_cnn_weights.h5', range: undefined, acceptEncoding: 'identity' }]);
    const again = await fetchWeights({ ...source, base: srv.base }, { cacheDir: cache });
    assert.ok(again.ok && again.value.fromCache);
    assert.equal(srv.requests.length, 1);
    assert.deepEqual(await fs.readdir(path.join(cache, 'weights')), [sha256]);
  } finally {
    await srv.close();
  }
});

test('download: a connection cut mid-body is resumed with Range from the cut', async () => {
  const cut = 1000;
  const srv = await serve((req, res, i) => (i === 0 ? sendCut(res, h5, cut) : sendWithRange(req, res, h5)));
  try {
    const cache = await cacheDir();
    const warnings: string[] = [];
    const infos: string[] = [];
    const progress: number[] = [];
    const log = { info: (m: string) => infos.push(m), warn: (m: string) => warnings.push(m), progress: (d: number) => progress.push(d) };
    const r = await fetchWeights({ ...source, base: srv.base }, { cacheDir: cache, log });
    assert.ok(r.ok, !r.ok ? r.error.message : '');
    assert.equal(progress.at(-1), h5.length);
    assert.ok(progress.length <= 4, `progress is throttled (${progress.length} reports)`);
    assert.deepEqual(srv.requests.map((q) => q.range), [undefined, `bytes=${cut}-`]);
    assert.deepEqual(await fs.readFile(r.value.path), h5);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /transfer interrupted .*; resuming/);
    assert.ok(infos.some((m) => m.includes(`resuming at 1,000 of ${h5.length.toLocaleString('en-US')} bytes`)));
    await assert.rejects(fs.stat(path.join(cache, 'weights', `${source.fileName}.part`)));
  } finally {
    await srv.close();
  }
});

test('download: an interrupted run keeps the .part and the next run resumes it', async () => {
  const srv = await serve((req, res, i) => (i === 0 ? sendCut(res, h5, 700) : sendWithRange(req, res, h5)));
  try {
    const cache = await cacheDir();
    const first = await fetchWeights({ ...source, base: srv.base }, { cacheDir: cache, retries: 0 });
    assert.ok(!first.ok);
    assert.equal(first.error.reason, 'truncated');
    assert.equal((await fs.stat(path.join(cache, 'weights', `${source.fileName}.part`))).size, 700);
    assert.deepEqual(await installed(cache), []);
    const second = await fetchWeights({ ...source, base: srv.base }, { cacheDir: cache, retries: 0 });
    assert.ok(second.ok);
    assert.equal(srv.requests[1]!.range, 'bytes=700-');
    assert.deepEqual(await fs.readFile(second.value.path), h5);
  } finally {
    await srv.close();
  }
});

test('download: hash mismatch is an error, nothing cached, .part deleted', async () => {
  const srv = await serve((req, res) => sendWithRange(req, res, h5));
  try {
    const cache = await cacheDir();
    const wrong = { ...source, base: srv.base, md5: '0'.repeat(32) };
    const r = await fetchWeights(wrong, { cacheDir: cache });
    assert.ok(!r.ok);
    assert.equal(r.error.reason, 'hash-mismatch');
    assert.match(r.error.message, new RegExp(`md5 ${source.md5}, expected 0{32}`));
    assert.match(r.error.message, /the file was deleted and nothing was cached/);
    assert.deepEqual(await installed(cache), []);
    assert.deepEqual(await fs.readdir(path.join(cache, 'weights')), []);
    // a pinned sha256 is checked too
    const badSha = await fetchWeights({ ...source, base: srv.base, sha256: 'f'.repeat(64) }, { cacheDir: cache });
    assert.ok(!badSha.ok && badSha.error.reason === 'hash-mismatch' && /sha256 [0-9a-f]{64}, expected f{64}/.test(badSha.error.message));
    assert.deepEqual(await fs.readdir(path.join(cache, 'weights')), []);
  } finally {
    await srv.close();
  }
});

test('download: a body shorter than its Content-Length (every time) ends as truncated, never cached', async () => {
  const srv = await serve((_req, res) => sendCut(res, h5, 512)); // ignores Range, always cuts
  try {
    const cache = await cacheDir();
    const r = await fetchWeights({ ...source, base: srv.base }, { cacheDir: cache, retries: 2 });
    assert.ok(!r.ok);
    assert.equal(r.error.reason, 'truncated');
    assert.equal(srv.requests.length, 3);
    assert.match(r.error.message, /stopped at 512 of .* bytes after 3 attempts/);
    assert.deepEqual(await installed(cache), []);
  } finally {
    await srv.close();
  }
});

test('download: a server announcing the wrong size is refused before the body is stored', async () => {
  const other = Buffer.concat([h5, Buffer.from('extra')]);
  const srv = await serve((req, res) => sendWithRange(req, res, other));
  try {
    const cache = await cacheDir();
    const r = await fetchWeights({ ...source, base: srv.base }, { cacheDir: cache });
    assert.ok(!r.ok);
    assert.equal(r.error.reason, 'size-mismatch');
    assert.deepEqual(await fs.readdir(path.join(cache, 'weights')), []);
  } finally {
    await srv.close();
  }
});

test('download: 404 is an http-status error naming the URL and what to do', async () => {
  const srv = await serve((_req, res) => {
    res.writeHead(404);
    res.end('no');
  });
  try {
    const cache = await cacheDir();
    const r = await fetchWeights({ ...source, base: srv.base }, { cacheDir: cache });
    assert.ok(!r.ok);
    assert.equal(r.error.reason, 'http-status');
    assert.match(r.error.message, new RegExp(`${srv.base}simple/simple_cnn_weights.h5 answered HTTP 404`));
    assert.match(r.error.message, /weights: \.\/path\/to\/simple_cnn_weights\.h5/);
    assert.deepEqual(await installed(cache), []);
  } finally {
    await srv.close();
  }
});

test('download: a mirror replaces the base URL', async () => {
  const srv = await serve((req, res) => (req.url?.startsWith('/mirror/') ? sendWithRange(req, res, h5) : (res.writeHead(404), res.end())));
  try {
    const cache = await cacheDir();
    const r = await fetchWeights({ ...source, base: await closedBase() }, { cacheDir: cache, mirror: `${srv.base}mirror` });
    assert.ok(r.ok, !r.ok ? r.error.message : '');
    assert.deepEqual(srv.requests.map((q) => q.path), ['/mirror/simple/simple_cnn_weights.h5']);
  } finally {
    await srv.close();
  }
});

test('offline with nothing cached: the message says which URL, which hashes, and where to put the file', async () => {
  const cache = await cacheDir();
  const base = await closedBase();
  const r = await fetchWeights({ ...source, base }, { cacheDir: cache, what: 'simple ImageNet weights' });
  assert.ok(!r.ok);
  assert.equal(r.error.reason, 'offline');
  const msg = r.error.message;
  assert.match(msg, /^simple ImageNet weights: cannot download \(ECONNREFUSED/);
  assert.ok(msg.includes(`download:  ${base}simple/simple_cnn_weights.h5`), msg);
  assert.ok(msg.includes(`md5:       ${source.md5}`), msg);
  assert.ok(msg.includes(`put it at  ${path.join(cache, 'weights', source.fileName)}`), msg);
  assert.ok(msg.includes('weights: ./path/to/simple_cnn_weights.h5'), msg);
  assert.deepEqual(await fs.readdir(path.join(cache, 'weights')), []);

  // offline with a partial download from an earlier run: still 'offline', and the partial file is kept
  await fs.writeFile(path.join(cache, 'weights', `${source.fileName}.part`), h5.subarray(0, 300));
  const p = await fetchWeights({ ...source, base }, { cacheDir: cache });
  assert.ok(!p.ok && p.error.reason === 'offline');
  assert.match(p.error.message, /A partial download \(300 bytes\) is kept in .*\.part and resumed when the host is reachable/);
  assert.equal((await fs.stat(path.join(cache, 'weights', `${source.fileName}.part`))).size, 300);

  // the real registry pins show up the same way (resnet50 through loadBackbone, mirror pointing nowhere)
  const rb = await loadBackbone(tf, 'resnet50', { weights: 'imagenet', cacheDir: cache, mirror: base, inputSize: [32, 32] });
  assert.ok(!rb.ok);
  assert.equal(rb.error.reason, 'offline');
  assert.ok(rb.error.message.includes(`download:  ${base}resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`), rb.error.message);
  assert.ok(rb.error.message.includes('md5:       4d473c1dd8becc155b73f8504c6f6626'));
  assert.ok(rb.error.message.includes('size:      94,765,736 bytes'));

  // `all` needs three files: one error lists all three
  const ra = await loadBackbone(tf, 'all', { weights: 'imagenet', cacheDir: cache, mirror: base, inputSize: [75, 75] });
  assert.ok(!ra.ok);
  assert.equal(ra.error.reason, 'offline');
  assert.match(ra.error.message, /^3 of 3 weight files are missing:/);
  for (const f of ['inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5', 'xception/xception_weights_tf_dim_ordering_tf_kernels_notop.h5', 'resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5']) {
    assert.ok(ra.error.message.includes(`download:  ${base}${f}`), f);
  }
});

test('air-gapped: a file dropped at <cache>/weights/<file> is verified and moved in without network', async () => {
  const cache = await cacheDir();
  await fs.mkdir(path.join(cache, 'weights'), { recursive: true });
  await fs.copyFile(h5File, path.join(cache, 'weights', source.fileName));
  const r = await fetchWeights({ ...source, base: await closedBase() }, { cacheDir: cache });
  assert.ok(r.ok, !r.ok ? r.error.message : '');
  assert.deepEqual(await installed(cache), [`${sha256}/${source.fileName}`]);
  // a wrong dropped file is reported and left alone
  const cache2 = await cacheDir();
  await fs.mkdir(path.join(cache2, 'weights'), { recursive: true });
  await fs.writeFile(path.join(cache2, 'weights', source.fileName), h5.subarray(0, 100));
  const bad = await fetchWeights({ ...source, base: await closedBase() }, { cacheDir: cache2 });
  assert.ok(!bad.ok && bad.error.reason === 'size-mismatch');
  assert.equal((await fs.stat(path.join(cache2, 'weights', source.fileName))).size, 100);
});

test('download + h5: served weights load into the model and reproduce its features', async () => {
  const srv = await serve((req, res) => sendWithRange(req, res, h5));
  try {
    const cache = await cacheDir();
    const model = BACKBONES.get('simple_cnn')!.build(tf, { inputShape: [28, 28, 1], init: 'zeros' });
    const r = await loadImagenetWeights(tf, [{ model, source: { ...source, base: srv.base }, name: 'simple_cnn' }], { cacheDir: cache });
    assert.ok(r.ok, !r.ok ? r.error.message : '');
    assert.equal(r.value, sha256);
    const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 2);
    assert.deepEqual(Array.from((model.predict(x) as tf.Tensor).dataSync()), Array.from((srcModel.predict(x) as tf.Tensor).dataSync()));
    model.dispose();
  } finally {
    await srv.close();
  }
});

test('weights: ./file.h5 loads a local file; pinned backbones check it against the pin unless verify: false', async () => {
  const cache = await cacheDir();
  const r = await loadBackbone(tf, 'simple_cnn', { weights: path.relative(work, h5File), workspace: work, cacheDir: cache });
  assert.ok(r.ok, !r.ok ? r.error.message : '');
  assert.equal(r.value.weightsHash, sha256);
  assert.deepEqual([r.value.preprocessing, r.value.featureDim], ['unit', 3136]);
  const x = tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', 3);
  assert.deepEqual(Array.from((r.value.model.predict(x) as tf.Tensor).dataSync()), Array.from((srcModel.predict(x) as tf.Tensor).dataSync()));
  r.value.model.dispose();

  const pinned = await loadBackbone(tf, 'mobilenet_v2', { weights: h5File, cacheDir: cache, inputSize: [32, 32] });
  assert.ok(!pinned.ok);
  assert.equal(pinned.error.reason, 'size-mismatch');
  assert.match(pinned.error.message, /expected 9,406,464 .*\n.*set verify: false/);

  const unverified = await loadBackbone(tf, 'mobilenet_v2', { weights: h5File, cacheDir: cache, inputSize: [32, 32], verify: false });
  assert.ok(!unverified.ok);
  assert.equal(unverified.error.reason, 'h5-invalid');
  assert.ok((unverified.error.problems?.length ?? 0) > 0);

  const missing = await loadBackbone(tf, 'simple_cnn', { weights: './nope.h5', workspace: work, cacheDir: cache });
  assert.ok(!missing.ok && missing.error.reason === 'local-missing' && missing.error.message.includes(path.join(work, 'nope.h5')));
});

test('loadBackbone: unknown names, unsupported kinds and bad sizes are error values', async () => {
  const cache = await cacheDir();
  const cases: [string, Parameters<typeof loadBackbone>[2], string][] = [
    ['resnet', { weights: 'none', cacheDir: cache }, 'unknown-backbone'],
    ['simple_cnn', { weights: 'imagenet', cacheDir: cache }, 'unsupported-weights'],
    ['vgg19', { weights: 'bundled', cacheDir: cache }, 'unsupported-weights'],
    ['inception_v3', { weights: 'none', cacheDir: cache, inputSize: [74, 74] }, 'bad-input-shape'],
    ['resnet50', { weights: 'imagenet', cacheDir: cache, channels: 1 }, 'bad-input-shape'],
    ['mobilenet_v2', { weights: 'bundled', cacheDir: cache, inputSize: [96, 96] }, 'bad-input-shape'],
    ['resnet50', { weights: h5File, cacheDir: cache, channels: 1 }, 'bad-input-shape'],
    // own weights (verify: false) may have any channel count: this one fails later, on the file's layers
    ['resnet50', { weights: h5File, cacheDir: cache, channels: 1, verify: false, inputSize: [32, 32] }, 'h5-invalid'],
  ];
  for (const [name, opts, reason] of cases) {
    const r = await loadBackbone(tf, name, opts);
    assert.ok(!r.ok, name);
    assert.equal(r.error.reason, reason, `${name}: ${r.error.message}`);
  }
  const none = await loadBackbone(tf, 'simple_cnn', { weights: 'none', cacheDir: cache, seed: 5 });
  assert.ok(none.ok);
  assert.equal(none.value.weightsHash, 'none:5');
  none.value.model.dispose();
});

test('download: concurrent callers share one download (lock), both get the cached file', async () => {
  const srv = await serve((req, res) => {
    // slow: half now, the rest a little later
    res.writeHead(200, { 'content-length': h5.length });
    res.write(h5.subarray(0, 1000));
    setTimeout(() => res.end(h5.subarray(1000)), 200);
  });
  try {
    const cache = await cacheDir();
    const [a, b] = await Promise.all([
      fetchWeights({ ...source, base: srv.base }, { cacheDir: cache }),
      fetchWeights({ ...source, base: srv.base }, { cacheDir: cache }),
    ]);
    assert.ok(a.ok && b.ok);
    assert.equal(a.value.path, b.value.path);
    assert.equal(srv.requests.length, 1);
    assert.deepEqual([a.value.fromCache, b.value.fromCache].sort(), [false, true]);
    assert.deepEqual(await fs.readdir(path.join(cache, 'weights')), [sha256]);
  } finally {
    await srv.close();
  }
});

test('download: cancelling mid-transfer is an aborted error; the .part is kept and later resumed', async () => {
  const ctrl = new AbortController();
  const srv = await serve((req, res, i) => {
    if (i > 0) return sendWithRange(req, res, h5);
    res.writeHead(200, { 'content-length': h5.length });
    res.write(h5.subarray(0, 2000), () => setTimeout(() => ctrl.abort(new Error('user cancelled')), 100));
  });
  try {
    const cache = await cacheDir();
    const r = await fetchWeights({ ...source, base: srv.base }, { cacheDir: cache, signal: ctrl.signal });
    assert.ok(!r.ok);
    assert.equal(r.error.reason, 'aborted');
    assert.equal((await fs.stat(path.join(cache, 'weights', `${source.fileName}.part`))).size, 2000);
    assert.deepEqual(await installed(cache), []);
    const again = await fetchWeights({ ...source, base: srv.base }, { cacheDir: cache });
    assert.ok(again.ok);
    assert.equal(srv.requests[1]!.range, 'bytes=2000-');
  } finally {
    await srv.close();
  }
});

test('PIPELINE_WEIGHTS_MIRROR is the default mirror of loadBackbone (an explicit mirror option wins)', async () => {
  assert.equal(MIRROR_ENV, 'PIPELINE_WEIGHTS_MIRROR');
  assert.equal(mirrorFromEnv({ PIPELINE_WEIGHTS_MIRROR: '  http://m.local/k/ ' }), 'http://m.local/k/');
  assert.equal(mirrorFromEnv({ PIPELINE_WEIGHTS_MIRROR: '' }), undefined);
  const cache = await cacheDir();
  const envBase = await closedBase();
  const saved = process.env[MIRROR_ENV];
  process.env[MIRROR_ENV] = `${envBase}from-env`;
  try {
    const r = await loadBackbone(tf, 'vgg19', { weights: 'imagenet', cacheDir: cache, inputSize: [32, 32] });
    assert.ok(!r.ok);
    assert.ok(r.error.message.includes(`download:  ${envBase}from-env/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`), r.error.message);
    assert.ok(r.error.message.includes('md5:       253f8cb515780f3b799900260a226db6'));
    const explicit = await loadBackbone(tf, 'vgg19', { weights: 'imagenet', cacheDir: cache, inputSize: [32, 32], mirror: `${envBase}explicit` });
    assert.ok(!explicit.ok && explicit.error.message.includes(`${envBase}explicit/vgg19/`));
  } finally {
    if (saved === undefined) delete process.env[MIRROR_ENV];
    else process.env[MIRROR_ENV] = saved;
  }
});

test('verifyWeightsCache re-hashes installed files and removes corrupt ones, then a fetch re-downloads', async () => {
  const srv = await serve((req, res) => sendWithRange(req, res, h5));
  try {
    const cache = await cacheDir();
    const r = await fetchWeights({ ...source, base: srv.base }, { cacheDir: cache });
    assert.ok(r.ok);
    assert.deepEqual(await verifyWeightsCache(cache), { good: [r.value.path], removed: [] });
    // flip one byte in place (same size: a lookup alone would not notice)
    const buf = await fs.readFile(r.value.path);
    buf[buf.length >> 1] ^= 0xff;
    await fs.writeFile(r.value.path, buf);
    assert.deepEqual(await verifyWeightsCache(cache), { good: [], removed: [r.value.path] });
    assert.deepEqual(await installed(cache), []);
    const again = await fetchWeights({ ...source, base: srv.base }, { cacheDir: cache });
    assert.ok(again.ok && !again.value.fromCache);
    assert.deepEqual(await fs.readFile(again.value.path), h5);
  } finally {
    await srv.close();
  }
});

test('weights: ./own.h5 with verify: false loads a full MobileNetV2 (Keras layout) and reproduces its features', async () => {
  const cache = await cacheDir();
  const spec = BACKBONES.get('mobilenet_v2')!;
  const src = spec.build(tf, { inputShape: [32, 32, 3], seed: 21 });
  for (const l of src.layers.filter((l) => l.name.endsWith('_BN') || l.name.endsWith('_bn') || l.name === 'bn_Conv1')) {
    l.setWeights(l.getWeights().map((w, i) => tf.randomUniform(w.shape, 0.5, 1.5, 'float32', i + 3)));
  }
  const file = path.join(work, 'own-mobilenet.h5');
  writeKerasLayout(src, file);
  const r = await loadBackbone(tf, 'mobilenet_v2', { weights: file, cacheDir: cache, inputSize: [32, 32], verify: false });
  assert.ok(r.ok, !r.ok ? r.error.message : '');
  assert.equal(r.value.weightsHash, createHash('sha256').update(await fs.readFile(file)).digest('hex'));
  assert.deepEqual([r.value.preprocessing, r.value.featureDim], ['tf', 1280]);
  const x = tf.randomUniform([1, 32, 32, 3], -1, 1, 'float32', 4);
  assert.deepEqual(Array.from((r.value.model.predict(x) as tf.Tensor).dataSync()), Array.from((src.predict(x) as tf.Tensor).dataSync()));
  r.value.model.dispose();
  src.dispose();
});

test('sha256 pins: checked when pinned (and then silent); otherwise size + md5 are checked and the computed sha256 is logged once, for pinning', async () => {
  const srv = await serve((req, res) => sendWithRange(req, res, h5));
  const logged = () => {
    const infos: string[] = [];
    const warnings: string[] = [];
    return { infos, warnings, log: { info: (m: string) => infos.push(m), warn: (m: string) => warnings.push(m) } };
  };
  try {
    // md5 pinned, no sha256: the sha256 is printed after verification, with where to pin it.
    const a = logged();
    const cache = await cacheDir();
    const r = await fetchWeights({ ...source, base: srv.base }, { cacheDir: cache, log: a.log });
    assert.ok(r.ok, !r.ok ? r.error.message : '');
    assert.deepEqual(a.warnings, []);
    const line = a.infos.find((m) => m.includes('not pinned'));
    assert.ok(line, a.infos.join('\n'));
    assert.ok(line.includes(`md5 ${source.md5} match`) && line.includes(`sha256: '${sha256}'`) && line.includes('stages/ml/backbones/'), line);
    // Served from the cache the second time: nothing new to report.
    const a2 = logged();
    assert.ok((await fetchWeights({ ...source, base: srv.base }, { cacheDir: cache, log: a2.log })).ok);
    assert.deepEqual([a2.infos, a2.warnings], [[], []]);

    // No hash published at all (MobileNetV2's case): a warning that carries the computed sha256.
    const b = logged();
    const { md5: _m, ...noHash } = source;
    assert.ok((await fetchWeights({ ...noHash, base: srv.base }, { cacheDir: await cacheDir(), log: b.log })).ok);
    assert.equal(b.warnings.length, 1);
    assert.match(b.warnings[0]!, new RegExp(`no published hash .*recorded sha256 ${sha256}`));

    // sha256 pinned (right): verified, installed under that hash, no "not pinned" message.
    const c = logged();
    const pinned = await fetchWeights({ ...source, sha256, base: srv.base }, { cacheDir: await cacheDir(), log: c.log });
    assert.ok(pinned.ok && pinned.value.sha256 === sha256);
    assert.ok(!c.infos.some((m) => m.includes('not pinned')) && c.warnings.length === 0, [...c.infos, ...c.warnings].join('\n'));
    // A cached copy under another hash directory is not accepted for a pinned source.
    const other = await cacheDir();
    await fs.mkdir(path.join(other, 'weights', 'e'.repeat(64)), { recursive: true });
    await fs.copyFile(h5File, path.join(other, 'weights', 'e'.repeat(64), source.fileName));
    const before = srv.requests.length;
    const refetched = await fetchWeights({ ...source, sha256, base: srv.base }, { cacheDir: other });
    assert.ok(refetched.ok && !refetched.value.fromCache && refetched.value.sha256 === sha256);
    assert.equal(srv.requests.length, before + 1, 'downloaded again instead of trusting the unpinned directory');
  } finally {
    await srv.close();
  }
});
