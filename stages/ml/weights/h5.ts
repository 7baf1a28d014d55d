/**
 * Reads Keras weight files in the legacy HDF5 layout (what `model.save_weights('x.h5')` wrote before Keras 3,
 * and what every keras.applications `*_notop.h5` is) and puts the values into a tfjs LayersModel.
 *
 * Layout: root attribute `layer_names` (or `layer_names0`, `layer_names1`, ... when Keras split a long list);
 * one group per layer with attribute `weight_names` (e.g. `conv1_conv/kernel:0`); the dataset for each weight
 * at `<layer>/<weight name>`. Kernels are HWIO, dense kernels (in, out), depthwise kernels (h, w, in, mult):
 * the same layouts tfjs uses, so values are copied without transposing.
 *
 * Keras 3 `.weights.h5` files (`model.save_weights('x.weights.h5')`) are read too: there, each layer's values
 * sit at `layers/<class name>[_N]/vars/<i>`, named by class in model order (`conv2d`, `conv2d_1`,
 * `batch_normalization`, ...) rather than by layer name, so model layers are matched by that class-based path
 * and weights by position.
 *
 * Matching for legacy files (Keras semantics, made safer):
 * - `name`: every weighted model layer has a group of the same name (Keras `by_name=True`).
 * - `order`: otherwise, the k-th weighted layer of the model takes the k-th non-empty layer of the file, which is
 *   what Keras's `load_weights` does for these files (their unnamed layers carry Keras 2 counters such as
 *   `conv2d_1`, while a fresh build names them `conv2d`). A pair whose names differ is accepted only when both
 *   are automatic names (`conv2d_3`, `batch_normalization`, ...); two different explicit names mean the layer
 *   order differs and loading stops.
 * Within a layer, weights pair by their base name (`kernel`, `gamma`, `moving_mean`, ...), else by position.
 * Every problem found (missing layers, count and shape mismatches) is returned, each naming the file, the layer
 * and the weight.
 *
 * {@link writeKerasH5Weights} writes the same layout (so weights trained here load into Keras with
 * `model.load_weights(path)` for the same architecture, and back here with `weights: ./file.h5`).
 *
 * This module does not download or verify hashes (see download.ts).
 */
import fs from 'node:fs/promises';
import type h5wasm from 'h5wasm/node';
import type * as tfjs from '@tensorflow/tfjs';
import { err, ok, type Result } from '../../../src/result.js';
import type { Tf } from '../backbones/spec.js';

/** Why a weight file could not be applied. Kebab-case reasons, as everywhere. */
export type H5ProblemReason =
  | 'h5-unreadable'
  | 'h5-not-keras'
  | 'h5-layer-count'
  | 'h5-layer-missing'
  | 'h5-layer-order'
  | 'h5-weight-count'
  | 'h5-shape-mismatch'
  | 'h5-dtype';

/** One problem, located in the file: `file: layer 'x' weight 'y': message`. */
export interface H5Problem {
  readonly reason: H5ProblemReason;
  /** The .h5 file. */
  readonly file: string;
  /** Layer group in the file (or model layer, for missing ones). */
  readonly layer?: string;
  /** Weight name as stored in the file (e.g. `conv1_conv/kernel:0`). */
  readonly weight?: string;
  readonly message: string;
}

/** How model layers were paired with file groups: by layer name, by Keras's order rule, or by Keras 3 class paths. */
export type H5MatchMode = 'name' | 'order' | 'keras3-path';

/** What {@link loadKerasH5Weights} did. */
export interface H5LoadReport {
  readonly matchedBy: H5MatchMode;
  /** Number of model layers that received weights. */
  readonly layers: number;
  /** Number of weight tensors set. */
  readonly tensors: number;
}

/** Options for {@link loadKerasH5Weights}. */
export interface H5LoadOptions {
  /** Force a matching mode for legacy files; default: `name` when every weighted model layer has a same-named group, else `order`. */
  readonly match?: 'name' | 'order';
}

/** Keras/tfjs automatic layer names: a class prefix with an optional `_N` counter. */
const AUTO_NAME =
  /^(conv2d|conv1d|batch_normalization|dense|depthwise_conv2d|separable_conv2d|activation|add|concatenate|max_pooling2d|average_pooling2d|zero_padding2d|dropout|flatten|re_lu|global_average_pooling2d)(_\d+)?$/;

/**
 * The HDF5 library, once its wasm module is initialised. Loaded on first call, not at module
 * top level (h5wasm starts its wasm on import; the stage registry imports this module for
 * metadata only). Awaiting is cheap after the first call.
 */
export async function h5Ready(): Promise<typeof h5wasm> {
  const lib = (await import('h5wasm/node')).default;
  await lib.ready;
  return lib;
}

/** First 8 bytes of an HDF5 file (superblock at offset 0, as h5py/Keras write it). */
const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

type H5File = InstanceType<typeof h5wasm.File>;
type H5Group = InstanceType<typeof h5wasm.Group>;

function strings(v: unknown): string[] {
  if (v === null || v === undefined) return [];
  if (typeof v === 'string') return [v];
  if (v instanceof Uint8Array) return [new TextDecoder().decode(v)];
  if (Array.isArray(v)) return v.flatMap((x) => strings(x));
  return [String(v)];
}

/** Reads a string-list attribute, following Keras's chunked `name0`, `name1`, ... form. */
function stringsAttr(obj: H5File | H5Group, name: string): string[] | undefined {
  const attrs = obj.attrs as Record<string, { value: unknown } | undefined>;
  const whole = attrs[name];
  if (whole) return strings(whole.value);
  if (!attrs[`${name}0`]) return undefined;
  const out: string[] = [];
  for (let i = 0; attrs[`${name}${i}`]; i++) out.push(...strings(attrs[`${name}${i}`]!.value));
  return out;
}

/** Which Keras weights layout a file uses. */
export type H5Format = 'keras-legacy' | 'keras3';

/** Everything read from a weights file. */
export interface H5Weights {
  readonly format: H5Format;
  /** Layers with weights, in file order (legacy) or path order (Keras 3). */
  readonly layers: readonly H5LayerWeights[];
}

/** One layer's weights as stored in the file. */
export interface H5LayerWeights {
  readonly layer: string;
  readonly weights: readonly { readonly name: string; readonly shape: readonly number[]; readonly values: Float32Array }[];
}

/**
 * Reads every layer that has weights, in file order. Values are float32 (float64 is converted; other types are a
 * `h5-dtype` problem).
 */
export async function readKerasH5(file: string): Promise<Result<H5Weights, H5Problem[]>> {
  const h5 = await h5Ready();
  const unreadable = (why: string): Result<never, H5Problem[]> => err([{ reason: 'h5-unreadable', file, message: `${file}: not a readable HDF5 file (${why})` }]);
  // Check the signature first: the HDF5 library prints diagnostics to stderr for non-HDF5 input.
  try {
    const fh = await fs.open(file, 'r');
    const head = Buffer.alloc(8);
    try {
      await fh.read(head, 0, 8, 0);
    } finally {
      await fh.close();
    }
    if (!head.equals(HDF5_SIGNATURE)) return unreadable('no HDF5 signature at offset 0');
  } catch (e) {
    return unreadable((e as Error).message);
  }
  let f: H5File;
  try {
    f = new h5.File(file, 'r');
  } catch (e) {
    return unreadable(String((e as Error).message ?? e));
  }
  try {
    // Keras saves full models with the weights under `model_weights`.
    const root = (f.keys().includes('model_weights') && !stringsAttr(f, 'layer_names') ? f.get('model_weights') : f) as H5File | H5Group;
    const layerNames = stringsAttr(root, 'layer_names');
    const problems: H5Problem[] = [];
    const layers: H5LayerWeights[] = [];
    const toFloat32 = (ds: InstanceType<typeof h5wasm.Dataset>, layer: string, w: string): Float32Array | undefined => {
      const raw = ds.value as unknown;
      if (raw instanceof Float32Array) return raw;
      if (raw instanceof Float64Array) return Float32Array.from(raw);
      problems.push({ reason: 'h5-dtype', file, layer, weight: w, message: `${file}: layer '${layer}' weight '${w}': dtype ${ds.dtype} is not float32/float64` });
      return undefined;
    };
    if (!layerNames) {
      const k3 = f.keys().includes('layers') ? (f.get('layers') as H5Group) : null;
      if (!k3) {
        return err([{ reason: 'h5-not-keras', file, message: `${file}: neither a 'layer_names' attribute (Keras 2 layout) nor a 'layers' group (Keras 3 .weights.h5): not a Keras weights file` }]);
      }
      for (const layer of k3.keys()) {
        const g = k3.get(layer) as H5Group | null;
        if (!g || !(g instanceof h5.Group) || !g.keys().includes('vars')) continue;
        const vars = g.get('vars') as H5Group;
        const idx = vars.keys().filter((k) => /^\d+$/.test(k)).sort((a, b) => Number(a) - Number(b));
        if (idx.length === 0) continue;
        const weights: { name: string; shape: number[]; values: Float32Array }[] = [];
        for (const i of idx) {
          const name = `layers/${layer}/vars/${i}`;
          const ds = vars.get(i) as InstanceType<typeof h5wasm.Dataset>;
          const values = toFloat32(ds, layer, name);
          if (values) weights.push({ name, shape: (ds.shape ?? []) as number[], values });
        }
        layers.push({ layer, weights });
      }
      return problems.length ? err(problems) : ok({ format: 'keras3', layers });
    }
    for (const layer of layerNames) {
      const g = root.get(layer) as H5Group | null;
      if (!g) {
        problems.push({ reason: 'h5-not-keras', file, layer, message: `${file}: layer '${layer}' is listed in layer_names but has no group` });
        continue;
      }
      const weightNames = stringsAttr(g, 'weight_names') ?? [];
      if (weightNames.length === 0) continue;
      const weights: { name: string; shape: number[]; values: Float32Array }[] = [];
      for (const w of weightNames) {
        const ds = g.get(w) as InstanceType<typeof h5wasm.Dataset> | null;
        if (!ds || !(ds instanceof h5.Dataset)) {
          problems.push({ reason: 'h5-not-keras', file, layer, weight: w, message: `${file}: layer '${layer}' weight '${w}': dataset missing` });
          continue;
        }
        const values = toFloat32(ds, layer, w);
        if (values) weights.push({ name: w, shape: (ds.shape ?? []) as number[], values });
      }
      layers.push({ layer, weights });
    }
    return problems.length ? err(problems) : ok({ format: 'keras-legacy', layers });
  } catch (e) {
    return unreadable(String((e as Error).message ?? e));
  } finally {
    f.close();
  }
}

/** Keras `naming.to_snake_case` of a class name: `Conv2D` → `conv2d`, `BatchNormalization` → `batch_normalization`. */
export function toSnakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

/** The Keras 3 saving path of every layer: snake-cased class name, `_N` for the N-th repeat, in model order. */
function keras3Paths(model: tfjs.LayersModel): Map<tfjs.layers.Layer, string> {
  const used = new Map<string, number>();
  const out = new Map<tfjs.layers.Layer, string>();
  for (const l of model.layers) {
    const base = toSnakeCase(l.getClassName());
    const n = used.get(base) ?? 0;
    used.set(base, n + 1);
    out.set(l, n === 0 ? base : `${base}_${n}`);
  }
  return out;
}

/** `conv1_conv/kernel:0` → `kernel`; tfjs `conv1_conv/kernel` → `kernel`. */
function baseName(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1).replace(/:\d+$/, '');
}

const sameShape = (a: readonly number[], b: readonly (number | null)[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Loads a Keras .h5 weights file into `model` (see the module doc for how layers are matched). On any problem no
 * weight is changed: all pairs are checked before the first value is set.
 */
export async function loadKerasH5Weights(tf: Tf, model: tfjs.LayersModel, file: string, opts: H5LoadOptions = {}): Promise<Result<H5LoadReport, H5Problem[]>> {
  const read = await readKerasH5(file);
  if (!read.ok) return read;
  const fileLayers = read.value.layers;
  const modelLayers = model.layers.filter((l) => l.weights.length > 0);
  const byName = new Map(fileLayers.map((l) => [l.layer, l]));
  const mode: H5MatchMode =
    read.value.format === 'keras3' ? 'keras3-path' : (opts.match ?? (modelLayers.every((l) => byName.has(l.name)) ? 'name' : 'order'));
  const problems: H5Problem[] = [];
  const pairs: [tfjs.layers.Layer, H5LayerWeights][] = [];

  if (mode === 'keras3-path') {
    const paths = keras3Paths(model);
    for (const l of modelLayers) {
      const p = paths.get(l)!;
      const fl = byName.get(p);
      if (fl) pairs.push([l, fl]);
      else problems.push({ reason: 'h5-layer-missing', file, layer: p, message: `${file}: model layer '${l.name}' has no weights at layers/${p}/vars` });
    }
    const used = new Set(pairs.map(([, fl]) => fl));
    for (const fl of fileLayers) {
      if (!used.has(fl)) problems.push({ reason: 'h5-layer-count', file, layer: fl.layer, message: `${file}: layers/${fl.layer}/vars has weights but the model has no such layer` });
    }
  } else if (mode === 'name') {
    for (const l of modelLayers) {
      const fl = byName.get(l.name);
      if (fl) pairs.push([l, fl]);
      else problems.push({ reason: 'h5-layer-missing', file, layer: l.name, message: `${file}: model layer '${l.name}' has no weights in the file` });
    }
  } else {
    if (modelLayers.length !== fileLayers.length) {
      problems.push({
        reason: 'h5-layer-count',
        file,
        message: `${file}: the file has weights for ${fileLayers.length} layers, the model has ${modelLayers.length} layers with weights`,
      });
    }
    const n = Math.min(modelLayers.length, fileLayers.length);
    for (let k = 0; k < n; k++) {
      const l = modelLayers[k]!;
      const fl = fileLayers[k]!;
      if (l.name !== fl.layer && !(AUTO_NAME.test(l.name) && AUTO_NAME.test(fl.layer))) {
        problems.push({
          reason: 'h5-layer-order',
          file,
          layer: fl.layer,
          message: `${file}: weighted layer #${k + 1} is '${fl.layer}' in the file but '${l.name}' in the model (layer order differs)`,
        });
        continue;
      }
      pairs.push([l, fl]);
    }
  }

  // Pair weights inside each layer and check shapes, before touching the model.
  const plan: [tfjs.layers.Layer, H5LayerWeights['weights'][number][]][] = [];
  for (const [l, fl] of pairs) {
    const ws = l.weights;
    if (ws.length !== fl.weights.length) {
      problems.push({
        reason: 'h5-weight-count',
        file,
        layer: fl.layer,
        message: `${file}: layer '${fl.layer}' has ${fl.weights.length} weights (${fl.weights.map((w) => baseName(w.name)).join(', ')}), model layer '${l.name}' expects ${ws.length} (${ws.map((w) => baseName(w.originalName)).join(', ')})`,
      });
      continue;
    }
    const fileByBase = new Map(fl.weights.map((w) => [baseName(w.name), w]));
    const byBase = ws.every((w) => fileByBase.has(baseName(w.originalName)));
    const ordered = ws.map((w, i) => (byBase ? fileByBase.get(baseName(w.originalName))! : fl.weights[i]!));
    let good = true;
    ordered.forEach((fw, i) => {
      const mw = ws[i]!;
      if (!sameShape(fw.shape, mw.shape)) {
        good = false;
        problems.push({
          reason: 'h5-shape-mismatch',
          file,
          layer: fl.layer,
          weight: fw.name,
          message: `${file}: layer '${fl.layer}' weight '${fw.name}' has shape [${fw.shape.join(',')}], model layer '${l.name}' expects [${mw.shape.join(',')}]`,
        });
      }
    });
    if (good) plan.push([l, ordered]);
  }
  if (problems.length) return err(problems);

  let tensors = 0;
  for (const [l, ws] of plan) {
    const values = ws.map((w) => tf.tensor(w.values, [...w.shape], 'float32'));
    l.setWeights(values);
    for (const t of values) t.dispose();
    tensors += values.length;
  }
  return ok({ matchedBy: mode, layers: plan.length, tensors });
}

/** One line per problem, for logs and error messages. */
export function formatH5Problems(problems: readonly H5Problem[]): string {
  return problems.map((p) => p.message).join('\n');
}

/**
 * Writes `model`'s weights in the Keras legacy HDF5 layout (float32, weight names `<layer>/<name>:0`), replacing
 * `file` atomically (written beside it, then renamed).
 */
export async function writeKerasH5Weights(model: tfjs.LayersModel, file: string): Promise<void> {
  const h5 = await h5Ready();
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  const fixed = (xs: string[]): string => `S${Math.max(1, ...xs.map((x) => Buffer.byteLength(x)))}`;
  const f = new h5.File(tmp, 'w');
  try {
    const names = model.layers.map((l) => l.name);
    f.create_attribute('layer_names', names, [names.length], fixed(names));
    f.create_attribute('backend', 'tensorflow');
    f.create_attribute('keras_version', '2.15.0');
    for (const l of model.layers) {
      const g = f.create_group(l.name);
      const wnames = l.weights.map((w) => `${l.name}/${baseName(w.originalName)}:0`);
      g.create_attribute('weight_names', wnames, [wnames.length], fixed(wnames));
      if (wnames.length === 0) continue;
      const sub = g.create_group(l.name);
      l.weights.forEach((w, i) => {
        const t = w.read();
        sub.create_dataset({ name: `${baseName(w.originalName)}:0`, data: t.dataSync() as Float32Array, shape: [...w.shape] as number[], dtype: '<f' });
      });
    }
  } catch (e) {
    f.close();
    await fs.rm(tmp, { force: true });
    throw e;
  }
  f.close();
  await fs.rename(tmp, file);
}
