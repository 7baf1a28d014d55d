/**
 * Weights faults (issue 7, "Interrupted downloads and hash mismatches for
 * weights"): each case downloads a pinned weights file from a real HTTP
 * server on 127.0.0.1 that misbehaves in one way, and checks that the file is
 * refused, never installed in the cache, and that the message says what to
 * do (the manual-download block: URL, size, hashes, where to put the file),
 * then that a later good download works. Also a cached copy corrupted on
 * disk: the next fetch does not use it and `pipeline cache verify` reports it.
 *
 * Shared by test/reliability/corruption-weights.test.ts and the stress file
 * (figure `weights-faults`). Many of these behaviours are also unit-tested in
 * test/ml-weights/download.test.ts; here they are counted as one figure.
 * This module does not assert: it returns one outcome per case.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fetchWeights, verifyWeightsCache } from '../../stages/ml/weights/download.js';
import type { WeightsSource } from '../../stages/ml/backbones/spec.js';
import { closedBase, installed, sendCut, sendWithRange, serve } from '../ml-weights/fixtures.js';
import { e2eRig } from '../helpers/rig.js';

/** What happened in one weights case. */
export interface WeightsOutcome {
  readonly id: string;
  readonly what: string;
  readonly ok: boolean;
  readonly problems: readonly string[];
}

/** The manual-download block every network failure ends with (download.ts `manualInstructions`). */
const WHAT_TO_DO = /download: {2}http:\/\/127\.0\.0\.1:\d+\/w\/weights\.h5[^]*put it at {2}\S+weights\.h5[^]*weights: \.\/path\/to\/weights\.h5/;

interface Ctx {
  readonly body: Buffer;
  readonly source: WeightsSource;
  readonly cache: string;
  readonly problems: string[];
}

type Fetched = Awaited<ReturnType<typeof fetchWeights>>;

/** The shared checks of a refused download. */
async function refused(c: Ctx, r: Fetched, reason: string, message: RegExp = WHAT_TO_DO): Promise<void> {
  if (r.ok) {
    c.problems.push(`accepted: ${r.value.path}`);
    return;
  }
  if (r.error.reason !== reason) c.problems.push(`reason ${r.error.reason}, expected ${reason}: ${r.error.message}`);
  if (!message.test(r.error.message)) c.problems.push(`the message does not say what to do: ${r.error.message}`);
  if (/\n\s+at .*\.[cm]?js:\d+/.test(r.error.message)) c.problems.push('stack trace in the message');
  const inst = await installed(c.cache);
  if (inst.length > 0) c.problems.push(`cached anyway: ${inst.join(', ')}`);
}

/** A later good download installs the right bytes. */
async function thenGood(c: Ctx, base: string): Promise<void> {
  const r = await fetchWeights({ ...c.source, base }, { cacheDir: c.cache, retries: 0 });
  if (!r.ok) c.problems.push(`a good download afterwards failed: ${r.error.message}`);
  else if (!(await fs.readFile(r.value.path)).equals(c.body)) c.problems.push('a good download afterwards installed wrong bytes');
}

const CASES: readonly { id: string; what: string; run(c: Ctx): Promise<void> }[] = [
  {
    id: 'cut-then-resumed',
    what: 'the connection drops mid-body (no retries): refused, .part kept, the next run resumes with Range',
    async run(c) {
      await using srv = await serve((req, res, i) => (i === 0 ? sendCut(res, c.body, 700) : sendWithRange(req, res, c.body)));
      const r = await fetchWeights({ ...c.source, base: srv.base }, { cacheDir: c.cache, retries: 0 });
      await refused(c, r, 'truncated', new RegExp(`next run resumes it; nothing was cached[^]*${WHAT_TO_DO.source}`));
      await thenGood(c, srv.base);
      if (srv.requests[1]?.range !== 'bytes=700-') c.problems.push(`not resumed from 700: ${srv.requests[1]?.range}`);
    },
  },
  {
    id: 'always-short',
    what: 'every response is shorter than its Content-Length: refused after the retries',
    async run(c) {
      await using srv = await serve((_req, res) => sendCut(res, c.body, 512));
      await refused(c, await fetchWeights({ ...c.source, base: srv.base }, { cacheDir: c.cache, retries: 2 }), 'truncated');
    },
  },
  {
    id: 'md5-mismatch',
    what: 'the server sends other bytes of the pinned size (md5 pin): refused, deleted, nothing cached',
    async run(c) {
      const other = Buffer.from(c.body);
      other[100] = other[100]! ^ 1;
      await using srv = await serve((req, res, i) => sendWithRange(req, res, i === 0 ? other : c.body));
      await refused(c, await fetchWeights({ ...c.source, base: srv.base }, { cacheDir: c.cache }), 'hash-mismatch', new RegExp(`nothing was cached[^]*${WHAT_TO_DO.source}`));
      const left = await fs.readdir(path.join(c.cache, 'weights')).catch(() => []);
      if (left.length > 0) c.problems.push(`files left after the mismatch: ${left.join(', ')}`);
      await thenGood(c, srv.base);
    },
  },
  {
    id: 'sha256-mismatch',
    what: 'a sha256-pinned file arrives with other bytes: refused, nothing cached',
    async run(c) {
      const other = Buffer.from(c.body);
      other[5] = other[5]! ^ 0x80;
      const { md5: _, ...unpinnedMd5 } = c.source;
      const pinned: WeightsSource = { ...unpinnedMd5, sha256: createHash('sha256').update(c.body).digest('hex') };
      await using srv = await serve((req, res, i) => sendWithRange(req, res, i === 0 ? other : c.body));
      await refused(c, await fetchWeights({ ...pinned, base: srv.base }, { cacheDir: c.cache }), 'hash-mismatch', new RegExp(`sha256 [0-9a-f]{64}, expected ${pinned.sha256}[^]*${WHAT_TO_DO.source}`));
      const r = await fetchWeights({ ...pinned, base: srv.base }, { cacheDir: c.cache });
      if (!r.ok || r.value.sha256 !== pinned.sha256) c.problems.push('the good download afterwards was not installed under its pin');
    },
  },
  {
    id: 'wrong-size',
    what: 'the server announces another size: refused before the body is stored',
    async run(c) {
      await using srv = await serve((req, res) => sendWithRange(req, res, Buffer.concat([c.body, Buffer.from('extra')])));
      await refused(c, await fetchWeights({ ...c.source, base: srv.base }, { cacheDir: c.cache }), 'size-mismatch');
    },
  },
  {
    id: 'http-404',
    what: 'the URL answers 404',
    async run(c) {
      await using srv = await serve((_req, res) => {
        res.writeHead(404);
        res.end('no');
      });
      await refused(c, await fetchWeights({ ...c.source, base: srv.base }, { cacheDir: c.cache }), 'http-status');
    },
  },
  {
    id: 'offline',
    what: 'the host cannot be reached',
    async run(c) {
      const base = await closedBase();
      await refused(c, await fetchWeights({ ...c.source, base }, { cacheDir: c.cache }), 'offline', /cannot download \(ECONNREFUSED[^]*download: {2}http[^]*put it at/);
    },
  },
  {
    id: 'cancelled',
    what: 'the download is cancelled mid-transfer: refused (aborted), .part kept for resume',
    async run(c) {
      const ctrl = new AbortController();
      await using srv = await serve((req, res, i) => {
        if (i > 0) return sendWithRange(req, res, c.body);
        res.writeHead(200, { 'content-length': c.body.length });
        res.write(c.body.subarray(0, 2000), () => setTimeout(() => ctrl.abort(new Error('user cancelled')), 50));
      });
      await refused(c, await fetchWeights({ ...c.source, base: srv.base }, { cacheDir: c.cache, signal: ctrl.signal }), 'aborted', /download cancelled \(partial file kept for resume\)/);
      await thenGood(c, srv.base);
    },
  },
  {
    id: 'garbage-part',
    what: 'an interrupted earlier download left a .part holding wrong bytes: the resumed file fails its hash, is deleted, and the next try is clean',
    async run(c) {
      await using srv = await serve((req, res) => sendWithRange(req, res, c.body));
      await fs.mkdir(path.join(c.cache, 'weights'), { recursive: true });
      await fs.writeFile(path.join(c.cache, 'weights', `${c.source.fileName}.part`), Buffer.alloc(1000, 0x55));
      await refused(c, await fetchWeights({ ...c.source, base: srv.base }, { cacheDir: c.cache }), 'hash-mismatch', new RegExp(`nothing was cached[^]*${WHAT_TO_DO.source}`));
      await thenGood(c, srv.base);
    },
  },
  {
    id: 'hand-placed-wrong',
    what: 'a hand-placed file of the right size with other bytes: refused, left where it is, told to remove or replace it',
    async run(c) {
      await fs.mkdir(path.join(c.cache, 'weights'), { recursive: true });
      const dropped = path.join(c.cache, 'weights', c.source.fileName);
      await fs.writeFile(dropped, Buffer.alloc(c.body.length, 1));
      await refused(c, await fetchWeights({ ...c.source, base: await closedBase() }, { cacheDir: c.cache }), 'hash-mismatch', /placed by hand; it is left where it is\. Remove or replace it\./);
      if ((await fs.stat(dropped).catch(() => undefined)) === undefined) c.problems.push('the hand-placed file was deleted');
    },
  },
  {
    id: 'cached-copy-corrupted',
    what: 'an installed copy gets a flipped byte on disk: not loaded again, re-downloaded; `pipeline cache verify` reports it',
    async run(c) {
      await using srv = await serve((req, res) => sendWithRange(req, res, c.body));
      const first = await fetchWeights({ ...c.source, base: srv.base }, { cacheDir: c.cache });
      if (!first.ok) {
        c.problems.push(`first download failed: ${first.error.message}`);
        return;
      }
      const flip = async (): Promise<void> => {
        const b = await fs.readFile(first.value.path);
        b[b.length >> 1] = b[b.length >> 1]! ^ 0xff;
        await fs.writeFile(first.value.path, b);
      };
      await flip();
      const again = await fetchWeights({ ...c.source, base: srv.base }, { cacheDir: c.cache });
      if (!again.ok) c.problems.push(`re-download failed: ${again.error.message}`);
      else {
        if (again.value.fromCache) c.problems.push('the corrupted cached copy was used');
        if (!(await fs.readFile(again.value.path)).equals(c.body)) c.problems.push('wrong bytes after the re-download');
      }
      if (srv.requests.length !== 2) c.problems.push(`expected a second download, saw ${srv.requests.length} requests`);
      // `pipeline cache verify` finds and removes such a copy too.
      await flip();
      await using rig = await e2eRig();
      const v = await rig.cli(['cache', 'verify', '--cache', c.cache, '--json']);
      const rep = JSON.parse(v.stdout) as { ok: boolean; weights?: { removed: string[] } };
      if (v.code !== 1 || rep.ok || rep.weights?.removed.length !== 1) c.problems.push(`cache verify did not report the corrupt weights: ${v.stdout}${v.stderr}`);
      if ((await verifyWeightsCache(c.cache)).good.length !== 0) c.problems.push('the corrupt copy is still installed after verify');
    },
  },
];

/** Runs every weights case (each in its own temp cache). */
export async function runWeightsCases(): Promise<WeightsOutcome[]> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'weights-faults-'));
  try {
    // Deterministic bytes; the loader is not involved (fetchWeights checks sizes and hashes only).
    const body = Buffer.alloc(64 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 131 + (i >> 8)) & 255;
    const source: WeightsSource = { base: 'http://placeholder/', path: 'w/weights.h5', fileName: 'weights.h5', bytes: body.length, md5: createHash('md5').update(body).digest('hex') };
    const out: WeightsOutcome[] = [];
    for (const k of CASES) {
      const cache = await fs.mkdtemp(path.join(work, `${k.id}-`));
      const c: Ctx = { body, source, cache, problems: [] };
      try {
        await k.run(c);
      } catch (e) {
        c.problems.push(`threw: ${e instanceof Error ? e.stack : String(e)}`);
      }
      out.push({ id: k.id, what: k.what, ok: c.problems.length === 0, problems: c.problems });
    }
    return out;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
