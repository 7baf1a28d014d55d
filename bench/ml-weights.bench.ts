/**
 * Backbone registry and weights figures: build time per architecture (Keras-default random init vs zero init),
 * Keras .h5 write/load time for a full backbone, and the verified download path (local HTTP server on
 * 127.0.0.1: transfer + MD5 + SHA-256 + install) and a cache hit. No goals are set for these in the issue;
 * they are reported so regressions show.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BACKBONES, type BackboneName } from '../stages/ml/backbones/registry.js';
import { fetchWeights } from '../stages/ml/weights/download.js';
import { loadKerasH5Weights, writeKerasH5Weights } from '../stages/ml/weights/h5.js';
import type { BenchResult, BenchSuite } from './types.js';

const secs = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;
const round = (x: number, d = 3): number => Number(x.toFixed(d));

const suite: BenchSuite = {
  name: 'ml-weights',
  async run({ quick, log }) {
    const results: BenchResult[] = [];
    const previous = tf.getBackend();
    await tf.setBackend('cpu');
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-weights-'));
    try {
      const names: BackboneName[] = quick ? ['mobilenet_v2', 'simple_cnn'] : ['mobilenet_v2', 'inception_v3', 'xception', 'resnet50', 'vgg19', 'all'];
      for (const name of names) {
        const spec = BACKBONES.get(name)!;
        const shape = [spec.defaultSize[0], spec.defaultSize[1], spec.channels] as const;
        for (const init of ['glorot', 'zeros'] as const) {
          const t0 = process.hrtime.bigint();
          const m = spec.build(tf, { inputShape: shape, init, seed: 1 });
          const s = secs(t0);
          m.dispose();
          results.push({ name: `build.${name}.${init}`, value: round(s), unit: 's', detail: `${spec.params.total.toLocaleString('en-US')} params, cpu backend` });
          log(`build ${name} (${init}): ${s.toFixed(3)} s`);
        }
      }

      const big: BackboneName = quick ? 'mobilenet_v2' : 'resnet50';
      const spec = BACKBONES.get(big)!;
      const src = spec.build(tf, { inputShape: [spec.defaultSize[0], spec.defaultSize[1], 3], seed: 2 });
      const file = path.join(work, `${big}.h5`);
      let t0 = process.hrtime.bigint();
      await writeKerasH5Weights(src, file);
      const writeS = secs(t0);
      const bytes = (await fs.stat(file)).size;
      const mib = bytes / 2 ** 20;
      results.push({ name: `h5.write.${big}`, value: round(writeS), unit: 's', detail: `${mib.toFixed(1)} MiB` });
      const dst = spec.build(tf, { inputShape: [spec.defaultSize[0], spec.defaultSize[1], 3], init: 'zeros' });
      t0 = process.hrtime.bigint();
      const r = await loadKerasH5Weights(tf, dst, file);
      const loadS = secs(t0);
      if (!r.ok) throw new Error(r.error.map((p) => p.message).join('\n'));
      results.push({ name: `h5.load.${big}`, value: round(loadS), unit: 's', detail: `${mib.toFixed(1)} MiB, ${(mib / loadS).toFixed(0)} MiB/s, matched by ${r.value.matchedBy}` });
      src.dispose();
      dst.dispose();

      const body = await fs.readFile(file);
      const server = http.createServer((_req, res) => {
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
      });
      await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const source = { base, path: `${big}.h5`, fileName: `${big}.h5`, bytes: body.length, md5: createHash('md5').update(body).digest('hex') };
      const cacheDir = path.join(work, 'cache');
      try {
        t0 = process.hrtime.bigint();
        const d = await fetchWeights(source, { cacheDir });
        const dlS = secs(t0);
        if (!d.ok) throw new Error(d.error.message);
        results.push({ name: 'download.local-http', value: round(mib / dlS, 1), unit: 'MiB/s', detail: `${mib.toFixed(1)} MiB from 127.0.0.1 incl. md5+sha256 verify and install` });
        t0 = process.hrtime.bigint();
        const hit = await fetchWeights(source, { cacheDir });
        const hitS = secs(t0);
        if (!hit.ok || !hit.value.fromCache) throw new Error('expected a cache hit');
        results.push({ name: 'download.cache-hit', value: round(hitS * 1000, 2), unit: 'ms' });
      } finally {
        server.closeAllConnections();
        await new Promise<void>((ok) => server.close(() => ok()));
      }
    } finally {
      await fs.rm(work, { recursive: true, force: true });
      if (previous && previous !== 'cpu') await tf.setBackend(previous);
    }
    return results;
  },
};

export default suite;
