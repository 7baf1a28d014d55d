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
 * Every other layer runs through its own `apply` (tfjs gradients), so any
 * model trains; the fast paths are an optimisation only, checked against tfjs'
 * gradients in test/ml-stages/fast-graph.test.ts.
 *
 * This module does not build models, choose optimizers or compute losses.
 */
import type * as tfjs from '@tensorflow/tfjs';
import type { Tf } from './backbones/spec.js';

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

/** Compiles `model` for training-time execution (see module doc). */
export function compileFastGraph(tf: Tf, model: tfjs.LayersModel): FastGraph {
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
      const ctx: RunContext = { tf, opts, nextSeed, logitsLayer: opts.logits && softmaxOutput ? lastLayer : undefined, firstInputs: new Set() };
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
    const outs = isModel(layer) ? runModel(ctx, layer, ins, false) : [runLayer(ctx, layer, ins)];
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

function runLayer(ctx: RunContext, layer: AnyLayer, ins: tfjs.Tensor[]): tfjs.Tensor {
  const { tf, opts } = ctx;
  const x = ins[0]!;
  const cls = layer.getClassName();
  const finalAct = (): string | undefined => (ctx.logitsLayer === layer ? 'linear' : activationName(layer));
  switch (cls) {
    case 'Dense': {
      const kernel = layer.kernel.read() as tfjs.Tensor2D;
      let y = x.rank === 2 ? denseOp(tf, x as tfjs.Tensor2D, kernel) : layer.apply(x, { training: opts.training }) as tfjs.Tensor;
      if (x.rank !== 2) return y;
      if (layer.useBias) y = tf.add(y, layer.bias.read());
      return applyActivation(tf, finalAct(), y);
    }
    case 'Conv2D': {
      if (!fastConvOk(layer)) break;
      const kernel = layer.kernel.read() as tfjs.Tensor4D;
      let y = conv2dOp(tf, x as tfjs.Tensor4D, kernel, layer.padding as 'same' | 'valid', ctx.firstInputs.has(x));
      if (layer.useBias) y = tf.add(y, layer.bias.read());
      return applyActivation(tf, finalAct(), y);
    }
    case 'BatchNormalization':
      return batchNorm(ctx, layer, x);
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
      return applyActivation(tf, finalAct(), x);
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

/** x[N,K] @ w[K,U] with gradients that avoid transposed matMuls. */
function denseOp(tf: Tf, x: tfjs.Tensor2D, w: tfjs.Tensor2D): tfjs.Tensor2D {
  const f = cg(tf, (xi: tfjs.Tensor, wi: tfjs.Tensor, save: (ts: tfjs.Tensor[]) => void) => {
    save([xi, wi]);
    return {
      value: tf.matMul(xi as tfjs.Tensor2D, wi as tfjs.Tensor2D),
      gradFunc: (dy: tfjs.Tensor, saved: tfjs.Tensor[]) => {
        const [xs, ws] = saved as [tfjs.Tensor2D, tfjs.Tensor2D];
        return [tf.matMul(dy as tfjs.Tensor2D, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy as tfjs.Tensor2D)];
      },
    };
  });
  return f(x, w) as tfjs.Tensor2D;
}

/** Stride-1 conv with XNNPACK-friendly gradients (see module doc). */
function conv2dOp(tf: Tf, x: tfjs.Tensor4D, w: tfjs.Tensor4D, padding: 'same' | 'valid', inputIsConstant: boolean): tfjs.Tensor4D {
  const [kh, kw] = w.shape;
  const f = cg(tf, (xi: tfjs.Tensor, wi: tfjs.Tensor, save: (ts: tfjs.Tensor[]) => void) => {
    save([xi, wi]);
    return {
      value: tf.conv2d(xi as tfjs.Tensor4D, wi as tfjs.Tensor4D, 1, padding),
      gradFunc: (dy: tfjs.Tensor, saved: tfjs.Tensor[]) => {
        const [xs, ws] = saved as [tfjs.Tensor4D, tfjs.Tensor4D];
        const dy4 = dy as tfjs.Tensor4D;
        const ph = (kh - 1) / 2;
        const pw = (kw - 1) / 2;
        // Input gradient: full correlation of dy with the 180°-rotated kernel, in/out channels swapped.
        let dx: tfjs.Tensor;
        if (inputIsConstant) dx = tf.zerosLike(xs);
        else {
          const wr = tf.transpose(tf.reverse(ws, [0, 1]), [0, 1, 3, 2]) as tfjs.Tensor4D;
          dx = padding === 'same' ? tf.conv2d(dy4, wr, 1, 'same') : tf.conv2d(tf.pad(dy4, [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]]), wr, 1, 'valid');
        }
        // Filter gradient: treat channels as batch and batch as channels, dy as the kernel.
        const xp = padding === 'same' ? tf.pad(xs, [[0, 0], [ph, ph], [pw, pw], [0, 0]]) : xs;
        const xt = tf.transpose(xp, [3, 1, 2, 0]) as tfjs.Tensor4D; // [C, H+2p, W+2p, N]
        const dyt = tf.transpose(dy4, [1, 2, 0, 3]) as tfjs.Tensor4D; // [H, W, N, F]
        const dwT = tf.conv2d(xt, dyt, 1, 'valid'); // [C, kh, kw, F]
        const dw = tf.transpose(dwT, [1, 2, 0, 3]);
        return [dx, dw];
      },
    };
  });
  return f(x, w) as tfjs.Tensor4D;
}

function globalAvgPool(tf: Tf, x: tfjs.Tensor4D): tfjs.Tensor2D {
  const [, h, w, c] = x.shape;
  const f = cg(tf, (xi: tfjs.Tensor) => ({
    value: tf.mean(xi, [1, 2]),
    gradFunc: (dy: tfjs.Tensor) => tf.mul(tf.reshape(dy, [-1, 1, 1, c]), tf.fill([1, h, w, 1], 1 / (h * w))),
  }));
  return f(x) as tfjs.Tensor2D;
}

function batchNorm(ctx: RunContext, layer: AnyLayer, x: tfjs.Tensor): tfjs.Tensor {
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
  const f = cg(tf, (xi: tfjs.Tensor, g: tfjs.Tensor, b: tfjs.Tensor, save: (ts: tfjs.Tensor[]) => void) => {
    const x2 = tf.reshape(xi, [m, c]) as tfjs.Tensor2D;
    const ones = tf.fill([1, m], 1 / m) as tfjs.Tensor2D;
    const mean = tf.matMul(ones, x2);
    const xc = tf.sub(x2, mean);
    const variance = tf.matMul(ones, tf.square(xc));
    const invstd = tf.rsqrt(tf.add(variance, eps));
    const xhat = tf.mul(xc, invstd);
    batchMean = tf.keep(tf.reshape(mean, [c]));
    batchVar = tf.keep(tf.reshape(variance, [c]));
    save([xhat, invstd, g]);
    return {
      value: tf.reshape(tf.add(tf.mul(xhat, g), b), shape),
      gradFunc: (dy: tfjs.Tensor, saved: tfjs.Tensor[]) => {
        const [xh, inv, gs] = saved as [tfjs.Tensor2D, tfjs.Tensor, tfjs.Tensor];
        const dy2 = tf.reshape(dy, [m, c]) as tfjs.Tensor2D;
        const onesSum = tf.ones([1, m]) as tfjs.Tensor2D;
        const dbeta = tf.matMul(onesSum, dy2); // [1,c]
        const dgamma = tf.matMul(onesSum, tf.mul(dy2, xh)); // [1,c]
        // dx = gamma*invstd/m * (m*dy - dbeta - xhat*dgamma)
        const scale = tf.div(tf.mul(gs, inv), m);
        const dx = tf.mul(scale, tf.sub(tf.sub(tf.mul(dy2, m), dbeta), tf.mul(xh, dgamma)));
        return [tf.reshape(dx, shape), tf.reshape(dgamma, [c]), tf.reshape(dbeta, [c])];
      },
    };
  });
  const y = f(x, gamma, beta);
  // Moving averages (Keras: moving = moving * momentum + batch * (1 - momentum)); unbiased variance like Keras 3? Keras uses the biased batch variance.
  if (batchMean !== undefined && batchVar !== undefined) {
    const bm = batchMean;
    const bv = batchVar;
    tf.tidy(() => {
      movingMean.assign(tf.add(tf.mul(movingMean, momentum), tf.mul(bm, 1 - momentum)));
      movingVar.assign(tf.add(tf.mul(movingVar, momentum), tf.mul(bv, 1 - momentum)));
    });
    bm.dispose();
    bv.dispose();
  }
  return y;
}
