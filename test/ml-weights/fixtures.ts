/**
 * Test fixtures for the weights tests: a Keras-layout .h5 writer built directly on h5wasm (independent of the
 * loader under test), a real HTTP server on 127.0.0.1 with a request log, and a listing of installed weights.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import h5wasm from 'h5wasm/node';
import type * as tf from '@tensorflow/tfjs';

await h5wasm.ready;

/**
 * Writes `model`'s weights in the Keras legacy HDF5 layout: root attr layer_names (fixed-length bytes, as h5py
 * stores numpy 'S' arrays), one group per layer with attr weight_names, datasets at <layer>/<layer>/<weight>:0.
 * `rename` maps model names to file names; `reshape` can store a weight with a wrong shape (zeros).
 */
export function writeKerasLayout(
  model: tf.LayersModel,
  file: string,
  rename: (n: string) => string = (n) => n,
  reshape?: (layer: string, w: string, shape: number[]) => number[],
): void {
  const f = new h5wasm.File(file, 'w');
  const names = model.layers.map((l) => rename(l.name));
  f.create_attribute('layer_names', names, [names.length], `S${Math.max(...names.map((n) => n.length))}`);
  f.create_attribute('backend', 'tensorflow');
  f.create_attribute('keras_version', '2.2.4');
  for (const l of model.layers) {
    const name = rename(l.name);
    const g = f.create_group(name);
    const wnames = l.weights.map((w) => `${name}/${w.originalName.split('/').pop()}:0`);
    if (wnames.length === 0) {
      g.create_attribute('weight_names', [], [0], 'S1');
      continue;
    }
    g.create_attribute('weight_names', wnames, [wnames.length], `S${Math.max(...wnames.map((n) => n.length))}`);
    const sub = g.create_group(name);
    l.weights.forEach((w, i) => {
      const vals = w.read().dataSync() as Float32Array;
      const shape = reshape ? reshape(name, wnames[i]!, [...w.shape] as number[]) : ([...w.shape] as number[]);
      const n = shape.reduce((a, b) => a * b, 1);
      sub.create_dataset({ name: wnames[i]!.split('/').pop()!, data: n === vals.length ? vals : new Float32Array(n), shape, dtype: '<f' });
    });
  }
  f.close();
}

/** One request the test server saw. */
export interface SeenRequest {
  readonly path: string;
  readonly range: string | undefined;
  readonly acceptEncoding: string | undefined;
}

/** A running server: `base` ends with '/'. Disposable: `await using srv = await serve(...)` closes it. */
export interface TestServer extends AsyncDisposable {
  readonly base: string;
  readonly requests: SeenRequest[];
  close(): Promise<void>;
}

/** Starts a real HTTP server on 127.0.0.1 with `handler` (which also gets the index of the request). */
export async function serve(handler: (req: http.IncomingMessage, res: http.ServerResponse, index: number) => void): Promise<TestServer> {
  const requests: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const index = requests.length;
    requests.push({ path: req.url ?? '', range: req.headers.range, acceptEncoding: req.headers['accept-encoding'] });
    handler(req, res, index);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const close = (): Promise<void> =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return { base: `http://127.0.0.1:${port}/`, requests, close, [Symbol.asyncDispose]: close };
}

/** A base URL on 127.0.0.1 where nothing listens (connection refused). */
export async function closedBase(): Promise<string> {
  const s = await serve(() => undefined);
  await s.close();
  return s.base;
}

/** Serves `body` honouring `Range: bytes=N-` with 206 + Content-Range. */
export function sendWithRange(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m) {
    const start = Number(m[1]);
    if (start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` });
      res.end();
      return;
    }
    res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    res.end(body.subarray(start));
    return;
  }
  res.writeHead(200, { 'content-length': body.length });
  res.end(body);
}

/**
 * Sends headers announcing the whole body, writes only `n` bytes, then cuts the connection. The cut waits a
 * moment after the bytes are flushed: a fetch body stream drops chunks it has queued but not yet handed out
 * when the connection errors, and the test wants exactly `n` bytes to have arrived.
 */
export function sendCut(res: http.ServerResponse, body: Buffer, n: number): void {
  res.writeHead(200, { 'content-length': body.length });
  res.write(body.subarray(0, n), () => setTimeout(() => res.socket?.destroy(), 150));
}

/** Files installed in a weights cache: `<sha256>/<file>` under `<cache>/weights` (temps and other entries left out). */
export async function installed(cache: string): Promise<string[]> {
  const dir = path.join(cache, 'weights');
  const out: string[] = [];
  for (const e of await fs.readdir(dir).catch(() => [] as string[])) {
    if (/^[0-9a-f]{64}$/.test(e)) for (const f of await fs.readdir(path.join(dir, e))) out.push(`${e}/${f}`);
  }
  return out;
}
