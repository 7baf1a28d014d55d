/**
 * Fused inference for a FROZEN tfjs LayersModel (a backbone used as a feature
 * extractor). Unfused Keras graphs run 2–4× slower on wasm because separate
 * BatchNorm, ZeroPadding and ReLU kernels each make a full pass over memory.
 * `compileInference` rewrites the graph once:
 *
 * - BatchNormalization after Conv2D / DepthwiseConv2D / SeparableConv2D /
 *   Dense is folded into the weights: w' = w·γ/√(σ²+ε), b' = (b−μ)·γ/√(σ²+ε)+β
 *   (folding is done in float64);
 * - the following ReLU / ReLU(6) / Activation(relu|relu6|sigmoid|elu), or the
 *   layer's own activation, becomes the fused op's activation, so each block
 *   runs as ONE `tf.fused.conv2d` / `tf.fused.depthwiseConv2d` /
 *   `tf.fused.matMul` call;
 * - an explicit ZeroPadding2D feeding a conv is folded into the conv's
 *   explicit padding (exactly equivalent: both pad with zeros); one feeding a
 *   'valid' MaxPooling2D right after a ReLU (ResNet50's pool1) is folded into
 *   the pool's padding (equivalent there: inputs are >= 0 and no window is all
 *   padding);
 * - Dropout / GaussianNoise / InputLayer are dropped (identity at inference);
 * - intermediates are freed as soon as their last consumer has run.
 *
 * Folding only happens where the producer's output has a single consumer, so
 * the result equals the plain model's up to float rounding. Unknown layer
 * types fall back to calling the layer itself; nested models are compiled
 * recursively.
 *
 * This module does NOT support training or gradients through the compiled
 * function, channels-first data, multi-output models, or weight updates after
 * compiling (weights are copied and folded at compile time: recompile after
 * changing the model).
 */
import type * as tf from '@tensorflow/tfjs';
import { loadTfjs } from '../lib/lazy-modules.js';

type Tensor = tf.Tensor;
type Layer = tf.layers.Layer;
type SymbolicTensor = tf.SymbolicTensor;
type FusedActivation = 'linear' | 'relu' | 'relu6' | 'sigmoid' | 'elu';
type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];
/**
 * tfjs types depthwise `pad` without the explicit form, but the op and the
 * wasm/cpu kernels accept it (computeConv2DInfo handles explicit pads); the
 * fused-vs-plain tests check the numbers.
 */
type DepthwisePad = 'valid' | 'same' | number;

/** A compiled, frozen inference function. */
export interface InferenceFn {
  /** Runs the compiled graph on a batch [n, h, w, c]; the caller owns (and disposes) the result. */
  predict(x: tf.Tensor4D): Tensor;
  /** Frees the folded weight copies. The source model is untouched. */
  dispose(): void;
  /** What the compiler did, for logs and tests. */
  readonly stats: FuseStats;
}

/** Counts of rewrites performed by `compileInference`. */
export interface FuseStats {
  /** Ops in the compiled program. */
  readonly ops: number;
  /** Layers of the source graph that were visited. */
  readonly layers: number;
  /** BatchNormalization layers folded into a preceding conv/dense. */
  readonly foldedBatchNorms: number;
  /** Activation layers fused into a preceding conv/dense. */
  readonly fusedActivations: number;
  /** ZeroPadding2D layers folded into a conv's padding. */
  readonly foldedPaddings: number;
  /** Class names of layers executed by calling the layer itself (no fast path). */
  readonly fallbacks: readonly string[];
}

interface GraphNode {
  readonly layer: Layer;
  readonly inputs: SymbolicTensor[];
  readonly output: SymbolicTensor;
}

interface Op {
  readonly inputs: number[];
  readonly output: number;
  readonly run: (xs: Tensor[]) => Tensor;
}

interface LayerConfig {
  [k: string]: unknown;
}

function cfg(layer: Layer): LayerConfig {
  return layer.getConfig() as LayerConfig;
}

function className(layer: Layer): string {
  return layer.getClassName();
}

function isModel(layer: Layer): layer is tf.LayersModel {
  return layer instanceof loadTfjs().LayersModel;
}

/** Walks back from `output` and returns the nodes in topological order. */
function collectGraph(output: SymbolicTensor, inputIds: Set<number>): GraphNode[] {
  const order: GraphNode[] = [];
  const seen = new Set<number>();
  const visit = (t: SymbolicTensor): void => {
    if (seen.has(t.id) || inputIds.has(t.id)) return;
    seen.add(t.id);
    const layer = t.sourceLayer;
    const node = layer.inboundNodes[t.nodeIndex];
    if (node === undefined) throw new Error(`fuse: tensor ${t.name} has no producing node`);
    for (const i of node.inputTensors) visit(i);
    order.push({ layer, inputs: node.inputTensors, output: t });
  };
  visit(output);
  return order;
}

/** The fused activation equivalent to an activation-only layer, if any. */
function activationOf(layer: Layer): FusedActivation | undefined {
  const c = cfg(layer);
  switch (className(layer)) {
    case 'ReLU':
      if (c['maxValue'] === null || c['maxValue'] === undefined) return 'relu';
      return c['maxValue'] === 6 ? 'relu6' : undefined;
    case 'Activation':
      return fusable(c['activation']);
    default:
      return undefined;
  }
}

function fusable(name: unknown): FusedActivation | undefined {
  return name === 'linear' || name === 'relu' || name === 'relu6' || name === 'sigmoid' || name === 'elu' ? name : undefined;
}

function applyActivation(x: Tensor, a: FusedActivation): Tensor {
  const tf = loadTfjs();
  switch (a) {
    case 'linear':
      return x;
    case 'relu':
      return tf.relu(x);
    case 'relu6':
      return tf.relu6(x);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'elu':
      return tf.elu(x);
  }
}

/** Activations a conv/dense may carry that fused kernels lack; applied after a linear fused op. */
function unfusedActivation(name: unknown): ((x: Tensor) => Tensor) | undefined {
  const tf = loadTfjs();
  switch (name) {
    case 'softmax':
      return (x) => tf.softmax(x);
    case 'tanh':
      return (x) => tf.tanh(x);
    case 'swish':
      return (x) => tf.mul(x, tf.sigmoid(x));
    default:
      return undefined;
  }
}

/** True when `t` is the output of a ReLU-like layer (all values >= 0). */
function isNonNegative(t: SymbolicTensor): boolean {
  const layer = t.sourceLayer;
  const a = activationOf(layer) ?? (['Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'Dense'].includes(className(layer)) ? fusable(cfg(layer)['activation']) : undefined);
  return a === 'relu' || a === 'relu6';
}

function pair(v: unknown): [number, number] {
  if (typeof v === 'number') return [v, v];
  const a = v as number[];
  return [a[0]!, a[1] ?? a[0]!];
}

/** Folds a (channels-last) BatchNormalization into per-output-channel scale and shift, in float64. */
function batchNormAffine(bn: Layer): { scale: Float64Array; shift: Float64Array } {
  const c = cfg(bn);
  const w = bn.getWeights();
  let i = 0;
  const gamma = c['scale'] !== false ? w[i++]!.dataSync() : undefined;
  const beta = c['center'] !== false ? w[i++]!.dataSync() : undefined;
  const mean = w[i++]!.dataSync();
  const variance = w[i++]!.dataSync();
  const eps = Number(c['epsilon'] ?? 1e-3);
  const n = mean.length;
  const scale = new Float64Array(n);
  const shift = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const s = (gamma ? gamma[k]! : 1) / Math.sqrt(variance[k]! + eps);
    scale[k] = s;
    shift[k] = (beta ? beta[k]! : 0) - mean[k]! * s;
  }
  return { scale, shift };
}

function isChannelsLastBatchNorm(layer: Layer, rank: number): boolean {
  if (className(layer) !== 'BatchNormalization') return false;
  const axis = cfg(layer)['axis'];
  const a = Array.isArray(axis) ? (axis.length === 1 ? axis[0] : undefined) : axis;
  return a === -1 || a === rank - 1;
}

/**
 * Compiles `model` (optionally cut at `outputLayerName`) into a fused inference
 * function on the current tfjs backend.
 */
export function compileInference(model: tf.LayersModel, outputLayerName?: string): InferenceFn {
  const tf = loadTfjs();
  if (model.inputs.length !== 1) throw new Error(`fuse: expected a single-input model, got ${model.inputs.length} inputs`);
  const output = outputLayerName === undefined ? model.outputs[0]! : (model.getLayer(outputLayerName).output as SymbolicTensor);
  if (outputLayerName === undefined && model.outputs.length !== 1) throw new Error(`fuse: expected a single-output model, got ${model.outputs.length}`);
  const input = model.inputs[0]!;
  const nodes = collectGraph(output, new Set([input.id]));

  const consumers = new Map<number, GraphNode[]>();
  for (const n of nodes) for (const i of n.inputs) consumers.set(i.id, [...(consumers.get(i.id) ?? []), n]);
  const soleConsumer = (t: SymbolicTensor): GraphNode | undefined => {
    if (t.id === output.id) return undefined;
    const c = consumers.get(t.id);
    return c !== undefined && c.length === 1 ? c[0] : undefined;
  };

  const weights: Tensor[] = [];
  const subs: InferenceFn[] = [];
  const own = <T extends Tensor>(t: T): T => {
    weights.push(t);
    return t;
  };
  const ops: Op[] = [];
  const alias = new Map<number, number>(); // symbolic id -> id that holds its value
  const resolve = (id: number): number => {
    let r = id;
    while (alias.has(r)) r = alias.get(r)!;
    return r;
  };
  const absorbed = new Set<GraphNode>();
  const foldedPads = new Map<number, { from: SymbolicTensor; pad: [[number, number], [number, number]] }>();
  let foldedBatchNorms = 0;
  let fusedActivations = 0;
  const fallbacks: string[] = [];

  const emit = (inputs: SymbolicTensor[], out: SymbolicTensor, run: (xs: Tensor[]) => Tensor): void => {
    ops.push({ inputs: inputs.map((t) => resolve(t.id)), output: out.id, run });
  };

  /** After a conv/dense node: absorb a following BN and activation when each is the sole consumer. */
  /** `ownActivation` other than a FusedActivation means "has its own non-fusable activation": nothing is absorbed. */
  const absorbTail = (node: GraphNode, rank: number, ownActivation: FusedActivation | 'softmax-or-other'): { bn?: Layer; activation: FusedActivation | 'softmax-or-other'; out: SymbolicTensor } => {
    let out = node.output;
    let bn: Layer | undefined;
    let activation = ownActivation;
    if (activation === 'linear') {
      const next = soleConsumer(out);
      if (next !== undefined && next.inputs.length === 1 && isChannelsLastBatchNorm(next.layer, rank)) {
        bn = next.layer;
        absorbed.add(next);
        out = next.output;
        foldedBatchNorms++;
      }
      const after = soleConsumer(out);
      const act = after !== undefined && after.inputs.length === 1 ? activationOf(after.layer) : undefined;
      if (after !== undefined && act !== undefined) {
        activation = act;
        absorbed.add(after);
        out = after.output;
        fusedActivations++;
      }
    }
    return { bn, activation, out };
  };

  /** The conv input and padding, with a single-consumer ZeroPadding2D folded in. */
  const convInput = (node: GraphNode, kernel: [number, number], strides: [number, number], dilation: [number, number], padding: string): { from: SymbolicTensor; pad: 'valid' | 'same' | ExplicitPad } => {
    const src = node.inputs[0]!;
    const folded = foldedPads.get(src.id);
    if (folded === undefined) return { from: src, pad: padding === 'same' ? 'same' : 'valid' };
    const [[pt, pb], [pl, pr]] = folded.pad;
    if (padding === 'valid') return { from: folded.from, pad: [[0, 0], [pt, pb], [pl, pr], [0, 0]] };
    // 'same' on the padded input: add tf's same-padding amounts (computed on the padded size) to the zero padding.
    const h = src.shape[1];
    const w = src.shape[2];
    if (typeof h !== 'number' || typeof w !== 'number') throw new Error('fuse: unreachable (pad folding requires static shapes)');
    const info = tf.backend_util.computeConv2DInfo([1, h, w, 1], [kernel[0], kernel[1], 1, 1], strides, dilation, 'same');
    return { from: folded.from, pad: [[0, 0], [pt + info.padInfo.top, pb + info.padInfo.bottom], [pl + info.padInfo.left, pr + info.padInfo.right], [0, 0]] };
  };

  const foldIntoKernel = (kernel: Float32Array, outChannels: number, bias: Float32Array | undefined, bn: Layer | undefined): { k: Float32Array; b: Float32Array | undefined } => {
    if (bn === undefined) return { k: kernel, b: bias };
    const { scale, shift } = batchNormAffine(bn);
    if (scale.length !== outChannels) throw new Error(`fuse: BatchNormalization ${bn.name} has ${scale.length} channels, conv has ${outChannels}`);
    const k = new Float32Array(kernel.length);
    for (let i = 0; i < kernel.length; i++) k[i] = kernel[i]! * scale[i % outChannels]!;
    const b = new Float32Array(outChannels);
    for (let o = 0; o < outChannels; o++) b[o] = (bias ? bias[o]! : 0) * scale[o]! + shift[o]!;
    return { k, b };
  };

  for (const node of nodes) {
    if (absorbed.has(node)) continue;
    const layer = node.layer;
    const c = cfg(layer);
    const cls = className(layer);
    const x0 = node.inputs[0]!;
    const rank = node.output.shape.length;
    const dataFormat = c['dataFormat'];
    if (dataFormat !== undefined && dataFormat !== 'channelsLast') throw new Error(`fuse: ${layer.name}: only channelsLast is supported`);

    if (isModel(layer)) {
      const sub = compileInference(layer);
      subs.push(sub);
      emit(node.inputs, node.output, ([x]) => sub.predict(x as tf.Tensor4D));
      continue;
    }

    switch (cls) {
      case 'InputLayer':
      case 'Dropout':
      case 'SpatialDropout1D':
      case 'SpatialDropout2D':
      case 'GaussianNoise':
      case 'GaussianDropout':
      case 'AlphaDropout':
        alias.set(node.output.id, resolve(x0.id));
        continue;
      case 'ZeroPadding2D': {
        const next = soleConsumer(node.output);
        const nc = next ? className(next.layer) : '';
        const shapeKnown = typeof node.output.shape[1] === 'number' && typeof node.output.shape[2] === 'number';
        const convLike = nc === 'Conv2D' || nc === 'DepthwiseConv2D' || nc === 'SeparableConv2D';
        if (next !== undefined && shapeKnown && convLike && fusable(cfg(next.layer)['activation']) !== undefined) {
          foldedPads.set(node.output.id, { from: x0, pad: c['padding'] as [[number, number], [number, number]] });
          continue;
        }
        const [[pt, pb], [pl, pr]] = c['padding'] as [[number, number], [number, number]];
        // Before a 'valid' max-pool over non-negative values (after a ReLU), zero padding equals
        // tf's pooling padding (which ignores padded cells) as long as no window is all padding.
        if (next !== undefined && nc === 'MaxPooling2D' && cfg(next.layer)['padding'] === 'valid' && isNonNegative(x0)) {
          const [fh, fw] = pair(cfg(next.layer)['poolSize']);
          if (Math.max(pt, pb) < fh && Math.max(pl, pr) < fw) {
            foldedPads.set(node.output.id, { from: x0, pad: [[pt, pb], [pl, pr]] });
            continue;
          }
        }
        emit(node.inputs, node.output, ([x]) => tf.pad(x!, [[0, 0], [pt, pb], [pl, pr], [0, 0]]));
        continue;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        const w = layer.getWeights();
        const kernel = w[0]!;
        const useBias = c['useBias'] !== false;
        const outChannels = cls === 'Conv2D' ? kernel.shape[3]! : kernel.shape[2]! * kernel.shape[3]!;
        const strides = pair(c['strides']);
        const dilation = pair(c['dilationRate'] ?? 1);
        const ksize: [number, number] = [kernel.shape[0]!, kernel.shape[1]!];
        const ownAct = fusable(c['activation']);
        if (ownAct === undefined) break; // e.g. softmax/tanh: run the layer itself
        const { from, pad } = convInput(node, ksize, strides, dilation, String(c['padding']));
        const tail = absorbTail(node, 4, ownAct);
        const { k, b } = foldIntoKernel(kernel.dataSync() as Float32Array, outChannels, useBias ? (w[1]!.dataSync() as Float32Array) : undefined, tail.bn);
        const filter = own(tf.tensor4d(k, kernel.shape as [number, number, number, number]));
        const bias = b ? own(tf.tensor1d(b)) : undefined;
        const activation = tail.activation as FusedActivation;
        if (cls === 'Conv2D') {
          emit([from], tail.out, ([x]) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter, strides, pad, dilations: dilation, bias, activation }));
        } else {
          emit([from], tail.out, ([x]) => tf.fused.depthwiseConv2d({ x: x as tf.Tensor4D, filter, strides, pad: pad as DepthwisePad, dilations: dilation, bias, activation }));
        }
        continue;
      }
      case 'SeparableConv2D': {
        const w = layer.getWeights();
        const dk = w[0]!;
        const pk = w[1]!;
        const useBias = c['useBias'] !== false;
        const ownAct = fusable(c['activation']);
        if (ownAct === undefined) break;
        const strides = pair(c['strides']);
        const dilation = pair(c['dilationRate'] ?? 1);
        const { from, pad } = convInput(node, [dk.shape[0]!, dk.shape[1]!], strides, dilation, String(c['padding']));
        const tail = absorbTail(node, 4, ownAct);
        const outChannels = pk.shape[3]!;
        const { k, b } = foldIntoKernel(pk.dataSync() as Float32Array, outChannels, useBias ? (w[2]!.dataSync() as Float32Array) : undefined, tail.bn);
        const depthwise = own(tf.tensor4d(dk.dataSync() as Float32Array, dk.shape as [number, number, number, number]));
        const pointwise = own(tf.tensor4d(k, pk.shape as [number, number, number, number]));
        const bias = b ? own(tf.tensor1d(b)) : undefined;
        const activation = tail.activation as FusedActivation;
        emit([from], tail.out, ([x]) => {
          const d = tf.fused.depthwiseConv2d({ x: x as tf.Tensor4D, filter: depthwise, strides, pad: pad as DepthwisePad, dilations: dilation });
          return tf.fused.conv2d({ x: d, filter: pointwise, strides: 1, pad: 'valid', bias, activation });
        });
        continue;
      }
      case 'Dense': {
        if (node.inputs[0]!.shape.length !== 2) break;
        const w = layer.getWeights();
        const kernel = w[0]!;
        const ownAct = fusable(c['activation']);
        const post = ownAct === undefined ? unfusedActivation(c['activation']) : undefined;
        if (ownAct === undefined && post === undefined) break;
        const tail = absorbTail(node, 2, ownAct ?? 'softmax-or-other');
        const outUnits = kernel.shape[1]!;
        const { k, b } = foldIntoKernel(kernel.dataSync() as Float32Array, outUnits, c['useBias'] !== false ? (w[1]!.dataSync() as Float32Array) : undefined, tail.bn);
        const kt = own(tf.tensor2d(k, kernel.shape as [number, number]));
        const bias = b ? own(tf.tensor1d(b)) : undefined;
        const activation = post === undefined ? (tail.activation as FusedActivation) : 'linear';
        emit(node.inputs, tail.out, ([x]) => {
          const y = tf.fused.matMul({ a: x as tf.Tensor2D, b: kt, bias, activation });
          return post === undefined ? y : post(y);
        });
        continue;
      }
      case 'BatchNormalization': {
        if (!isChannelsLastBatchNorm(layer, rank)) break;
        const { scale, shift } = batchNormAffine(layer);
        const s = own(tf.tensor1d(Float32Array.from(scale)));
        const t = own(tf.tensor1d(Float32Array.from(shift)));
        emit(node.inputs, node.output, ([x]) => tf.add(tf.mul(x!, s), t));
        continue;
      }
      case 'ReLU':
      case 'Activation': {
        const a = activationOf(layer);
        if (a !== undefined) {
          emit(node.inputs, node.output, ([x]) => applyActivation(x!, a));
          continue;
        }
        if (cls === 'Activation' && c['activation'] === 'softmax') {
          emit(node.inputs, node.output, ([x]) => tf.softmax(x!));
          continue;
        }
        if (cls === 'Activation' && c['activation'] === 'tanh') {
          emit(node.inputs, node.output, ([x]) => tf.tanh(x!));
          continue;
        }
        break;
      }
      case 'Add':
        emit(node.inputs, node.output, (xs) => (xs.length === 2 ? tf.add(xs[0]!, xs[1]!) : tf.addN(xs)));
        continue;
      case 'Multiply':
        emit(node.inputs, node.output, (xs) => xs.slice(1).reduce((a, b) => tf.mul(a, b), xs[0]!));
        continue;
      case 'Concatenate': {
        const axis = Number(c['axis'] ?? -1);
        emit(node.inputs, node.output, (xs) => tf.concat(xs, axis));
        continue;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        const poolSize = pair(c['poolSize']);
        const strides = pair(c['strides'] ?? c['poolSize']);
        const padding = c['padding'] === 'same' ? 'same' : 'valid';
        const f = cls === 'MaxPooling2D' ? tf.maxPool : tf.avgPool;
        const folded = foldedPads.get(x0.id);
        if (folded !== undefined) {
          const [[pt, pb], [pl, pr]] = folded.pad;
          const explicit = [[0, 0], [pt, pb], [pl, pr], [0, 0]] as unknown as number; // tfjs types omit explicit pads for pooling
          emit([folded.from], node.output, ([x]) => tf.maxPool(x as tf.Tensor4D, poolSize, strides, explicit));
          continue;
        }
        emit(node.inputs, node.output, ([x]) => f(x as tf.Tensor4D, poolSize, strides, padding));
        continue;
      }
      case 'GlobalAveragePooling2D':
        emit(node.inputs, node.output, ([x]) => tf.mean(x!, [1, 2], c['keepDims'] === true));
        continue;
      case 'GlobalMaxPooling2D':
        emit(node.inputs, node.output, ([x]) => tf.max(x!, [1, 2], c['keepDims'] === true));
        continue;
      case 'Flatten':
        emit(node.inputs, node.output, ([x]) => tf.reshape(x!, [x!.shape[0]!, -1]));
        continue;
      case 'Rescaling': {
        const scale = Number(c['scale']);
        const offset = Number(c['offset'] ?? 0);
        emit(node.inputs, node.output, ([x]) => tf.add(tf.mul(x!, scale), offset));
        continue;
      }
      default:
        break;
    }
    // Fallback: the layer's own call (correct, just not fused).
    fallbacks.push(cls);
    emit(node.inputs, node.output, (xs) => layer.apply(xs.length === 1 ? xs[0]! : xs, { training: false }) as Tensor);
  }

  const outId = resolve(output.id);
  const inputId = input.id;
  // Last use of each value, so intermediates are freed early.
  const uses = new Map<number, number>();
  for (const op of ops) for (const i of op.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
  const stats: FuseStats = { ops: ops.length, layers: nodes.length, foldedBatchNorms, fusedActivations, foldedPaddings: foldedPads.size, fallbacks };
  let disposed = false;

  return {
    stats,
    predict(x: tf.Tensor4D): Tensor {
      if (disposed) throw new Error('fuse: predict after dispose');
      const values = new Map<number, Tensor>([[inputId, x]]);
      const remaining = new Map(uses);
      try {
        for (const op of ops) {
          const xs = op.inputs.map((id) => {
            const v = values.get(id);
            if (v === undefined) throw new Error(`fuse: value ${id} missing (graph order bug)`);
            return v;
          });
          // An op may hand back one of its inputs (identity activations); clone so ownership stays single.
          const y = tf.tidy(() => {
            const r = op.run(xs);
            return xs.includes(r) ? tf.clone(r) : r;
          });
          values.set(op.output, y);
          for (const id of op.inputs) {
            const left = remaining.get(id)! - 1;
            remaining.set(id, left);
            if (left === 0 && id !== inputId && id !== outId) {
              values.get(id)!.dispose();
              values.delete(id);
            }
          }
        }
        const out = values.get(outId);
        if (out === undefined) throw new Error('fuse: output missing');
        values.delete(outId);
        return out;
      } finally {
        for (const [id, v] of values) if (id !== inputId) v.dispose();
      }
    },
    dispose(): void {
      if (disposed) return;
      disposed = true;
      tf.dispose(weights);
      for (const sub of subs) sub.dispose();
    },
  };
}
