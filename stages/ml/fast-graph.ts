/**
 * A training-time executor for tfjs-layers models: runs a (functional or
 * sequential, possibly nested) LayersModel forward on concrete tensors using
 * the layers' own variables, with hand-written gradients for the layers that
 * dominate CNN training time on the wasm backend:
 *
 * - `Conv2D` (stride 1, `same`/`valid`, no dilation): the input gradient is a
 *   forward conv of dy with the flipped kernel, the filter gradient a forward
 *   conv over a transposed view (batch becomes channels), both of which run in
 *   XNNPACK; tfjs' own gradient uses `Conv2DBackpropInput`/`...Filter`, which on
 *   wasm are naive loops (measured: a simple_cnn step ~20x slower);
 * - `Dense`: explicit transposes before `matMul` (a transposed `matMul` on wasm
 *   falls off XNNPACK, ~8x slower);
 * - `BatchNormalization` in training mode: batch statistics and the analytic
 *   backward pass with channel sums done as `matMul`s (tfjs' broadcast
 *   gradients go through a slow `Tile`); moving statistics are updated in place.
 *
 * On the wasm and cpu backends, training-mode BatchNorm (with the following
 * ReLU layer folded in when it is BN's only consumer), 2x2 max-pooling and the
 * filter gradient of few-channel convs run as fused JS kernels
 * (wasm-kernels/fused-train.ts): one or two passes instead of a dozen
 * single-threaded wasm kernels over the largest activations.
 *
 * Every other layer runs through its own `apply` (tfjs gradients), so any
 * model trains; the fast paths are an optimisation only, checked against tfjs'
 * gradients in test/ml-stages/fast-graph.test.ts.
 *
 * This module does not build models, choose optimizers or compute losses.
 */
import type * as tfjs from '@tensorflow/tfjs';
import type { Tf } from './backbones/spec.js';
import { registerFusedTrainingKernels } from './wasm-kernels/fused-train.js';

/** Options of one forward pass. */
export interface ForwardOptions {
  /** Training mode: dropout active, BatchNorm uses batch statistics and updates its moving averages. */
  readonly training: boolean;
  /** Seed for dropout masks in this pass (vary it per step for fresh masks, fixed for reproducibility). */
  readonly seed?: number;
  /**
   * When true, the output layer's softmax is skipped and logits are returned (for a numerically stable
   * softmax cross-entropy). Ignored when the last layer has no softmax activation.
   */
  readonly logits?: boolean;
}

/** A compiled forward function over a model's layers. */
export interface FastGraph {
  /** Runs the model; returns its (single) output. Call inside `tf.tidy`/`optimizer.minimize`. */
  forward(x: tfjs.Tensor, opts: ForwardOptions): tfjs.Tensor;
  /** True when the final activation is softmax (so `logits: true` returns pre-softmax values). */
  readonly softmaxOutput: boolean;
  /** Layer class names that ran through the generic (slow-gradient) path, for diagnostics. */
  readonly genericLayers: readonly string[];
}

type AnyLayer = tfjs.layers.Layer & Record<string, any>;
interface SymT {
  id: number;
}

/** Options of `compileFastGraph`. */
export interface CompileOptions {
  /** Use the fused JS kernels where the backend allows (default true); false = the tf-op paths (for A/B benchmarks). */
  readonly fusedKernels?: boolean;
}

/** Compiles `model` for training-time execution (see module doc). */
export function compileFastGraph(tf: Tf, model: tfjs.LayersModel, options: CompileOptions = {}): FastGraph {
  const generic = new Set<string>();
  const lastLayer = innermostLast(model);
  const softmaxOutput = activationName(lastLayer) === 'softmax';
  collectGeneric(model, generic);
  return {
    softmaxOutput,
    genericLayers: [...generic],
    forward(x, opts) {
      let dropoutCounter = 0;
      const nextSeed = (): number | undefined => (opts.seed === undefined ? undefined : opts.seed * 7919 + dropoutCounter++);
      const ctx: RunContext = {
        tf,
        opts,
        nextSeed,
        logitsLayer: opts.logits && softmaxOutput ? lastLayer : undefined,
        firstInputs: new Set(),
        fused: options.fusedKernels !== false && fusedKernelsReady(tf),
        reluApplied: new Set(),
      };
      return runModel(ctx, model, [x], true)[0]!;
    },
  };
}

interface RunContext {
  readonly tf: Tf;
  readonly opts: ForwardOptions;
  readonly nextSeed: () => number | undefined;
  readonly logitsLayer: AnyLayer | undefined;
  /** Tensors that are model inputs (no gradient needed with respect to them). */
  readonly firstInputs: Set<tfjs.Tensor>;
  /** The backend has the fused JS training kernels (wasm-kernels/fused-train.ts). */
  readonly fused: boolean;
  /** Outputs of a BatchNorm that already applied the following ReLU layer (which then passes them through). */
  readonly reluApplied: Set<tfjs.Tensor>;
}

/** Input channels up to which the filter gradient uses im2col + one matMul (fused kernels only). */
const IM2COL_MAX_CHANNELS = 4;

/** Backends whose tensors the fused JS kernels can read (wasm heap, cpu arrays); elsewhere the tf-op paths run. */
const FUSED_BACKENDS = new Set(['wasm', 'cpu']);

function fusedKernelsReady(tf: Tf): boolean {
  const b = tf.getBackend();
  if (!FUSED_BACKENDS.has(b)) return false;
  registerFusedTrainingKernels(tf, b);
  return true;
}

/** Runs a registered kernel by name (the fused kernels have no op wrappers). */
function runKernel(tf: Tf, name: string, inputs: Record<string, tfjs.Tensor>, attrs: Record<string, unknown>): tfjs.Tensor | tfjs.Tensor[] {
  return tf.engine().runKernel(name, inputs as unknown as tfjs.NamedTensorMap, attrs as unknown as tfjs.NamedAttrMap) as tfjs.Tensor | tfjs.Tensor[];
}

/**
 * True when `layer` is a BatchNormalization whose only consumer is a ReLU `Activation` layer, so a
 * training-mode pass can apply the ReLU inside the fused BatchNorm kernel.
 */
function feedsOnlyRelu(model: tfjs.LayersModel, layer: AnyLayer): boolean {
  const nodes = layer.outboundNodes as { outboundLayer: AnyLayer }[];
  if (nodes.length !== 1) return false;
  const next = nodes[0]!.outboundLayer;
  if (next.getClassName() !== 'Activation' || activationName(next) !== 'relu') return false;
  const out = layer.inboundNodes as { outputTensors: SymT[] }[];
  const outIds = new Set(out.flatMap((n) => n.outputTensors.map((t) => t.id)));
  return !model.outputs.some((s) => outIds.has((s as unknown as SymT).id));
}

function isModel(layer: unknown): layer is tfjs.LayersModel {
  return typeof layer === 'object' && layer !== null && Array.isArray((layer as { layers?: unknown }).layers) && 'inputs' in (layer as object);
}

function innermostLast(model: tfjs.LayersModel): AnyLayer {
  const last = model.layers[model.layers.length - 1] as AnyLayer;
  return isModel(last) ? innermostLast(last) : last;
}

function activationName(layer: AnyLayer): string | undefined {
  const a = layer.activation as { getClassName?: () => string } | undefined;
  return a?.getClassName?.().toLowerCase();
}

const FAST = new Set(['Conv2D', 'Dense', 'BatchNormalization', 'Dropout', 'Flatten', 'Activation', 'ReLU', 'MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D', 'InputLayer', 'Add', 'Concatenate']);

function collectGeneric(model: tfjs.LayersModel, out: Set<string>): void {
  for (const l of model.layers) {
    if (isModel(l)) collectGeneric(l, out);
    else if (!FAST.has(l.getClassName())) out.add(l.getClassName());
    else if (l.getClassName() === 'Conv2D' && !fastConvOk(l as AnyLayer)) out.add('Conv2D(strided/dilated)');
  }
}

function runModel(ctx: RunContext, model: tfjs.LayersModel, inputs: tfjs.Tensor[], top: boolean): tfjs.Tensor[] {
  const values = new Map<number, tfjs.Tensor>();
  model.inputs.forEach((s, i) => values.set((s as unknown as SymT).id, inputs[i]!));
  if (top) inputs.forEach((t) => ctx.firstInputs.add(t));
  for (const layer of model.layers as AnyLayer[]) {
    if (layer.getClassName() === 'InputLayer') continue;
    const node = (layer.inboundNodes as { inputTensors: SymT[]; outputTensors: SymT[] }[]).find((n) => n.inputTensors.every((t) => values.has(t.id)));
    if (node === undefined) throw new Error(`fast-graph: no computable inbound node for layer ${layer.name}`);
    const ins = node.inputTensors.map((t) => values.get(t.id)!);
    const outs = isModel(layer) ? runModel(ctx, layer, ins, false) : [runLayer(ctx, layer, ins, layer.getClassName() === 'BatchNormalization' && feedsOnlyRelu(model, layer))];
    node.outputTensors.forEach((t, i) => values.set(t.id, outs[i]!));
  }
  return model.outputs.map((s) => {
    const v = values.get((s as unknown as SymT).id);
    if (v === undefined) throw new Error(`fast-graph: output ${model.name} not computed`);
    return v;
  });
}

/** `tf.customGrad` with loose typing (its declared types cannot express a variadic saver). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function cg(tf: Tf, fn: (...args: any[]) => { value: tfjs.Tensor; gradFunc: (dy: tfjs.Tensor, saved: tfjs.Tensor[]) => tfjs.Tensor | tfjs.Tensor[] }): (...xs: tfjs.Tensor[]) => tfjs.Tensor {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return tf.customGrad(fn as any) as unknown as (...xs: tfjs.Tensor[]) => tfjs.Tensor;
}

function applyActivation(tf: Tf, name: string | undefined, x: tfjs.Tensor): tfjs.Tensor {
  switch (name) {
    case undefined:
    case 'linear':
      return x;
    case 'relu':
      return tf.relu(x);
    case 'relu6':
      return tf.relu6(x);
    case 'softmax':
      return tf.softmax(x);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'tanh':
      return tf.tanh(x);
    case 'elu':
      return tf.elu(x);
    case 'selu':
      return tf.selu(x);
    default:
      throw new Error(`fast-graph: unsupported activation ${name}`);
  }
}

function fastConvOk(layer: AnyLayer): boolean {
  const strides = layer.strides as number[];
  const dil = layer.dilationRate as number[];
  const k = layer.kernelSize as number[];
  return strides.every((s) => s === 1) && dil.every((d) => d === 1) && k.every((v) => v % 2 === 1) && layer.dataFormat === 'channelsLast';
}

function runLayer(ctx: RunContext, layer: AnyLayer, ins: tfjs.Tensor[], reluMayFuse: boolean): tfjs.Tensor {
  const { tf, opts } = ctx;
  const x = ins[0]!;
  const cls = layer.getClassName();
  const finalAct = (): string | undefined => (ctx.logitsLayer === layer ? 'linear' : activationName(layer));
  switch (cls) {
    case 'Dense': {
      if (x.rank !== 2) break;
      const kernel = layer.kernel.read() as tfjs.Tensor2D;
      const y = denseOp(tf, x as tfjs.Tensor2D, kernel, layer.useBias ? (layer.bias.read() as tfjs.Tensor1D) : undefined);
      return applyActivation(tf, finalAct(), y);
    }
    case 'Conv2D': {
      if (!fastConvOk(layer)) break;
      const kernel = layer.kernel.read() as tfjs.Tensor4D;
      const bias = layer.useBias ? (layer.bias.read() as tfjs.Tensor1D) : undefined;
      const y = conv2dOp(tf, x as tfjs.Tensor4D, kernel, bias, layer.padding as 'same' | 'valid', ctx.firstInputs.has(x), ctx.fused);
      return applyActivation(tf, finalAct(), y);
    }
    case 'BatchNormalization':
      return batchNorm(ctx, layer, x, reluMayFuse && ctx.logitsLayer !== layer);
    case 'Dropout': {
      const rate = layer.rate as number;
      if (!opts.training || rate <= 0) return x;
      return tf.dropout(x, rate, undefined, ctx.nextSeed());
    }
    case 'Flatten':
      return tf.reshape(x, [x.shape[0], -1]);
    case 'Activation':
    case 'ReLU':
      if (cls === 'ReLU') break;
      if (ctx.reluApplied.has(x) && ctx.logitsLayer !== layer) return x;
      return applyActivation(tf, finalAct(), x);
    case 'MaxPooling2D': {
      const ps = layer.poolSize as number[];
      const st = layer.strides as number[];
      const [, h, w] = x.shape as number[];
      if (ps[0] === 2 && ps[1] === 2 && st[0] === 2 && st[1] === 2 && h! % 2 === 0 && w! % 2 === 0) {
        if (!opts.training) return tf.maxPool(x as tfjs.Tensor4D, 2, 2, 'valid');
        return ctx.fused ? maxPool2x2Fused(tf, x as tfjs.Tensor4D) : maxPool2x2(tf, x as tfjs.Tensor4D);
      }
      break;
    }
    case 'GlobalAveragePooling2D':
      return globalAvgPool(tf, x as tfjs.Tensor4D);
    case 'Add':
      return ins.length === 1 ? ins[0]! : tf.addN(ins);
    default:
      break;
  }
  const y = layer.apply(ins.length === 1 ? x : ins, { training: opts.training }) as tfjs.Tensor;
  return y;
}

/**
 * Sum over rows of a [m, c] matrix, as [1, c] (times `scale`). A leading-axis `Sum` (registered for wasm by
 * wasm-kernels) measured ~2x faster than a ones-vector matMul, which makes XNNPACK repack the [m, c] operand.
 */
function colSum(tf: Tf, x2: tfjs.Tensor2D, scale = 1): tfjs.Tensor2D {
  const s = tf.sum(x2, 0, true) as tfjs.Tensor2D;
  return scale === 1 ? s : (tf.mul(s, scale) as tfjs.Tensor2D);
}

/**
 * Per-channel affine map x2 * a + b of a [m, c] matrix in ONE pass of wasm's native FusedBatchNorm kernel
 * (mean 0, variance 1, epsilon 0); separate broadcast multiply and add kernels make two slower passes.
 */
function channelAffine(tf: Tf, x2: tfjs.Tensor2D, a: tfjs.Tensor, b: tfjs.Tensor | undefined): tfjs.Tensor2D {
  const c = x2.shape[1];
  return tf.batchNorm(x2, tf.zeros([c]), tf.ones([c]), b === undefined ? undefined : tf.reshape(b, [c]), tf.reshape(a, [c]), 0) as tfjs.Tensor2D;
}

/** x[N,K] @ w[K,U] (+ bias) with gradients that avoid transposed matMuls. */
function denseOp(tf: Tf, x: tfjs.Tensor2D, w: tfjs.Tensor2D, bias: tfjs.Tensor1D | undefined): tfjs.Tensor2D {
  if (bias === undefined) {
    const f = cg(tf, (xi: tfjs.Tensor2D, wi: tfjs.Tensor2D, save: (ts: tfjs.Tensor[]) => void) => {
      save([xi, wi]);
      return {
        value: tf.matMul(xi, wi),
        gradFunc: (dy: tfjs.Tensor, [xs, ws]: tfjs.Tensor[]) => [tf.matMul(dy as tfjs.Tensor2D, tf.transpose(ws!)), tf.matMul(tf.transpose(xs!), dy as tfjs.Tensor2D)],
      };
    });
    return f(x, w) as tfjs.Tensor2D;
  }
  const f = cg(tf, (xi: tfjs.Tensor2D, wi: tfjs.Tensor2D, bi: tfjs.Tensor1D, save: (ts: tfjs.Tensor[]) => void) => {
    save([xi, wi]);
    return {
      value: tf.fused.matMul({ a: xi, b: wi, bias: bi }),
      gradFunc: (dy: tfjs.Tensor, [xs, ws]: tfjs.Tensor[]) => {
        const d = dy as tfjs.Tensor2D;
        return [tf.matMul(d, tf.transpose(ws!)), tf.matMul(tf.transpose(xs!), d), tf.reshape(colSum(tf, d), [d.shape[1]])];
      },
    };
  });
  return f(x, w, bias) as tfjs.Tensor2D;
}

/**
 * Filter gradient of a stride-1 conv (see module doc); `xp` is the (already padded) input. With the fused
 * kernels and few input channels it is one transposed im2col (of the unpadded `x`, padding `ph`/`pw`) and one
 * matMul [kh*kw*c, n*h*w] x [n*h*w, f].
 */
function convFilterGrad(tf: Tf, xp: tfjs.Tensor4D, dy: tfjs.Tensor4D, kh: number, kw: number, im2col?: { x: tfjs.Tensor4D; ph: number; pw: number }): tfjs.Tensor4D {
  const [n, , , c] = xp.shape;
  const [, h, w, f] = dy.shape;
  if (im2col !== undefined) {
    const patches = runKernel(tf, 'FgIm2ColT', { x: im2col.x }, { kh, kw, padTop: im2col.ph, padLeft: im2col.pw, outHeight: h, outWidth: w }) as tfjs.Tensor2D;
    return tf.reshape(tf.matMul(patches, tf.reshape(dy, [n * h * w, f]) as tfjs.Tensor2D), [kh, kw, c, f]) as tfjs.Tensor4D;
  }
  if (c <= 4) {
    // Few input channels (e.g. a grayscale first layer): kh*kw slices and [c, n*h*w] x [n*h*w, f] matMuls.
    const dy2 = tf.reshape(dy, [n * h * w, f]) as tfjs.Tensor2D;
    const xt = tf.transpose(xp, [3, 0, 1, 2]); // [c, n, H, W]
    const rows: tfjs.Tensor[] = [];
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const sl = tf.reshape(tf.slice(xt, [0, 0, a, b], [c, n, h, w]), [c, n * h * w]) as tfjs.Tensor2D;
        rows.push(tf.matMul(sl, dy2)); // [c, f]
      }
    }
    return tf.reshape(tf.stack(rows), [kh, kw, c, f]) as tfjs.Tensor4D;
  }
  // Channels as batch, batch as channels, dy as the kernel: one XNNPACK conv.
  const xt = tf.transpose(xp, [3, 1, 2, 0]) as tfjs.Tensor4D; // [C, H+2p, W+2p, N]
  const dyt = tf.transpose(dy, [1, 2, 0, 3]) as tfjs.Tensor4D; // [H, W, N, F]
  return tf.transpose(tf.conv2d(xt, dyt, 1, 'valid'), [1, 2, 0, 3]) as tfjs.Tensor4D; // [kh, kw, C, F]
}

/** Stride-1 conv (+ bias, fused) with XNNPACK-friendly gradients (see module doc). */
function conv2dOp(tf: Tf, x: tfjs.Tensor4D, w: tfjs.Tensor4D, bias: tfjs.Tensor1D | undefined, padding: 'same' | 'valid', inputIsConstant: boolean, fused: boolean): tfjs.Tensor4D {
  const [kh, kw] = w.shape;
  const ph = (kh - 1) / 2;
  const pw = (kw - 1) / 2;
  const grads = (dy: tfjs.Tensor, xs: tfjs.Tensor4D, ws: tfjs.Tensor4D): tfjs.Tensor[] => {
    const dy4 = dy as tfjs.Tensor4D;
    // Input gradient: full correlation of dy with the 180°-rotated kernel, in/out channels swapped.
    let dx: tfjs.Tensor;
    if (inputIsConstant) dx = tf.zerosLike(xs);
    else {
      const wr = tf.transpose(tf.reverse(ws, [0, 1]), [0, 1, 3, 2]) as tfjs.Tensor4D;
      dx = padding === 'same' ? tf.conv2d(dy4, wr, 1, 'same') : tf.conv2d(tf.pad(dy4, [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]]), wr, 1, 'valid');
    }
    const cin = xs.shape[3];
    if (fused && cin <= IM2COL_MAX_CHANNELS) {
      const pad = padding === 'same' ? { ph, pw } : { ph: 0, pw: 0 };
      return [dx, convFilterGrad(tf, xs, dy4, kh, kw, { x: xs, ...pad })];
    }
    const xp = padding === 'same' ? (tf.pad(xs, [[0, 0], [ph, ph], [pw, pw], [0, 0]]) as tfjs.Tensor4D) : xs;
    return [dx, convFilterGrad(tf, xp, dy4, kh, kw)];
  };
  if (bias === undefined) {
    const f = cg(tf, (xi: tfjs.Tensor4D, wi: tfjs.Tensor4D, save: (ts: tfjs.Tensor[]) => void) => {
      save([xi, wi]);
      return { value: tf.conv2d(xi, wi, 1, padding), gradFunc: (dy: tfjs.Tensor, [xs, ws]: tfjs.Tensor[]) => grads(dy, xs as tfjs.Tensor4D, ws as tfjs.Tensor4D) };
    });
    return f(x, w) as tfjs.Tensor4D;
  }
  const f = cg(tf, (xi: tfjs.Tensor4D, wi: tfjs.Tensor4D, bi: tfjs.Tensor1D, save: (ts: tfjs.Tensor[]) => void) => {
    save([xi, wi]);
    return {
      value: tf.fused.conv2d({ x: xi, filter: wi, strides: 1, pad: padding, bias: bi }),
      gradFunc: (dy: tfjs.Tensor, [xs, ws]: tfjs.Tensor[]) => {
        const f4 = dy.shape[3]!;
        return [...grads(dy, xs as tfjs.Tensor4D, ws as tfjs.Tensor4D), tf.reshape(colSum(tf, tf.reshape(dy, [-1, f4]) as tfjs.Tensor2D), [f4])];
      },
    };
  });
  return f(x, w, bias) as tfjs.Tensor4D;
}

/**
 * 2x2 / stride-2 max pooling whose gradient routes dy to the max positions through a nearest-neighbour
 * upsample and a mask, instead of the MaxPoolGrad kernel (the fused path in wasm-kernels/fused-train.ts replaces both). Ties (exactly equal values in a window) get the
 * gradient more than once, which float inputs practically never hit.
 */
function maxPool2x2(tf: Tf, x: tfjs.Tensor4D): tfjs.Tensor4D {
  const [, h, w] = x.shape;
  const f = cg(tf, (xi: tfjs.Tensor4D, save: (ts: tfjs.Tensor[]) => void) => {
    const y = tf.maxPool(xi, 2, 2, 'valid');
    const mask = tf.cast(tf.equal(xi, tf.image.resizeNearestNeighbor(y, [h, w])), 'float32');
    save([mask]);
    return { value: y, gradFunc: (dy: tfjs.Tensor, [m]: tfjs.Tensor[]) => tf.mul(m!, tf.image.resizeNearestNeighbor(dy as tfjs.Tensor4D, [h, w])) };
  });
  return f(x) as tfjs.Tensor4D;
}

/** 2x2 / stride-2 max pooling through the fused kernels; the backward pass routes dy to the inputs equal to the maximum. */
function maxPool2x2Fused(tf: Tf, x: tfjs.Tensor4D): tfjs.Tensor4D {
  const f = cg(tf, (xi: tfjs.Tensor4D, save: (ts: tfjs.Tensor[]) => void) => {
    const y = runKernel(tf, 'FgMaxPool2x2', { x: xi }, {}) as tfjs.Tensor;
    save([xi, y]);
    return { value: y, gradFunc: (dy: tfjs.Tensor, [xs, ys]: tfjs.Tensor[]) => runKernel(tf, 'FgMaxPool2x2Grad', { dy, x: xs!, y: ys! }, {}) as tfjs.Tensor };
  });
  return f(x) as tfjs.Tensor4D;
}

function globalAvgPool(tf: Tf, x: tfjs.Tensor4D): tfjs.Tensor2D {
  const [, h, w, c] = x.shape;
  const f = cg(tf, (xi: tfjs.Tensor) => ({
    value: tf.mean(xi, [1, 2]),
    gradFunc: (dy: tfjs.Tensor) => tf.mul(tf.reshape(dy, [-1, 1, 1, c]), tf.fill([1, h, w, 1], 1 / (h * w))),
  }));
  return f(x) as tfjs.Tensor2D;
}

function batchNorm(ctx: RunContext, layer: AnyLayer, x: tfjs.Tensor, reluMayFuse: boolean): tfjs.Tensor {
  const { tf, opts } = ctx;
  const axis = layer.axis as number;
  if (axis !== -1 && axis !== x.rank - 1) return layer.apply(x, { training: opts.training }) as tfjs.Tensor;
  const eps = layer.epsilon as number;
  const c = x.shape[x.rank - 1]!;
  const gamma: tfjs.Tensor = layer.scale ? layer.gamma.read() : tf.ones([c]);
  const beta: tfjs.Tensor = layer.center ? layer.beta.read() : tf.zeros([c]);
  const movingMean = layer.movingMean.read() as tfjs.Variable;
  const movingVar = layer.movingVariance.read() as tfjs.Variable;
  // A frozen BatchNormalization runs in inference mode (Keras >= 2.1.3 / TF2 semantics for fine-tuning).
  if (!opts.training || !layer.trainable) {
    return tf.batchNorm(x, movingMean, movingVar, beta, gamma, eps);
  }
  const m = x.size / c;
  const shape = x.shape;
  const momentum = layer.momentum as number;
  let batchMean: tfjs.Tensor | undefined;
  let batchVar: tfjs.Tensor | undefined;
  if (ctx.fused) {
    // One JS pass for the statistics, one for y (with the next layer's ReLU when it is the only consumer).
    const relu = reluMayFuse;
    const ff = cg(tf, (xi: tfjs.Tensor, g: tfjs.Tensor, b: tfjs.Tensor, save: (ts: tfjs.Tensor[]) => void) => {
      const [y, mean, variance, invstd] = runKernel(tf, 'FgBatchNormTrain', { x: xi, gamma: g, beta: b }, { epsilon: eps, relu }) as tfjs.Tensor[];
      batchMean = tf.keep(mean!);
      batchVar = tf.keep(variance!);
      save([xi, mean!, invstd!, g, b]);
      return {
        value: y!,
        gradFunc: (dy: tfjs.Tensor, [xs, mu, inv, gs, bs]: tfjs.Tensor[]) =>
          runKernel(tf, 'FgBatchNormTrainGrad', { dy, x: xs!, mean: mu!, invstd: inv!, gamma: gs!, beta: bs! }, { relu }) as tfjs.Tensor[],
      };
    });
    const y = ff(x, gamma, beta);
    if (relu) ctx.reluApplied.add(y);
    updateMoving(tf, movingMean, movingVar, momentum, batchMean, batchVar);
    return y;
  }
  // Every per-channel broadcast goes through channelAffine / colSum (see there for why).
  const f = cg(tf, (xi: tfjs.Tensor, g: tfjs.Tensor, b: tfjs.Tensor, save: (ts: tfjs.Tensor[]) => void) => {
    const x2 = tf.reshape(xi, [m, c]) as tfjs.Tensor2D;
    const mean = colSum(tf, x2, 1 / m); // [1,c]
    const xc = channelAffine(tf, x2, tf.ones([c]), tf.neg(mean));
    const variance = colSum(tf, tf.square(xc) as tfjs.Tensor2D, 1 / m);
    const invstd = tf.rsqrt(tf.add(variance, eps)); // [1,c]
    const xhat = channelAffine(tf, xc, invstd, undefined);
    batchMean = tf.keep(tf.reshape(mean, [c]));
    batchVar = tf.keep(tf.reshape(variance, [c]));
    save([xhat, invstd, g]);
    return {
      value: tf.reshape(channelAffine(tf, xhat, g, b), shape),
      gradFunc: (dy: tfjs.Tensor, saved: tfjs.Tensor[]) => {
        const [xh, inv, gs] = saved as [tfjs.Tensor2D, tfjs.Tensor, tfjs.Tensor];
        const dy2 = tf.reshape(dy, [m, c]) as tfjs.Tensor2D;
        const dbeta = colSum(tf, dy2); // [1,c]
        const dgamma = colSum(tf, tf.mul(dy2, xh) as tfjs.Tensor2D); // [1,c]
        // dx = gamma*invstd/m * (m*dy - dbeta - xhat*dgamma) = dy*A + xhat*B + C per channel.
        const k = tf.mul(tf.reshape(gs, [1, c]), inv); // gamma*invstd
        const A = k;
        const B = tf.neg(tf.div(tf.mul(k, dgamma), m));
        const C = tf.neg(tf.div(tf.mul(k, dbeta), m));
        const dx = tf.add(channelAffine(tf, dy2, A, C), channelAffine(tf, xh, B, undefined));
        return [tf.reshape(dx, shape), tf.reshape(dgamma, [c]), tf.reshape(dbeta, [c])];
      },
    };
  });
  const y = f(x, gamma, beta);
  updateMoving(tf, movingMean, movingVar, momentum, batchMean, batchVar);
  return y;
}

/** Moving averages (Keras: moving = moving * momentum + batch * (1 - momentum), with the biased batch variance); disposes the batch stats. */
function updateMoving(tf: Tf, movingMean: tfjs.Variable, movingVar: tfjs.Variable, momentum: number, bm: tfjs.Tensor | undefined, bv: tfjs.Tensor | undefined): void {
  if (bm === undefined || bv === undefined) return;
  tf.tidy(() => {
    movingMean.assign(tf.add(tf.mul(movingMean, momentum), tf.mul(bm, 1 - momentum)));
    movingVar.assign(tf.add(tf.mul(movingVar, momentum), tf.mul(bv, 1 - momentum)));
  });
  bm.dispose();
  bv.dispose();
}
