/**
 * Registers the kernels tfjs-backend-wasm 4.22 lacks for training:
 * `Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropFilter`,
 * `DepthwiseConv2dNativeBackpropInput` and `UnsortedSegmentSum`. The list was
 * found by training a conv+BN+ReLU+maxpool+dropout+dense CNN and a
 * depthwise-separable net (Adam, categorical cross-entropy) on wasm and
 * registering each kernel it reported missing; everything else those
 * gradients need (Conv2DBackpropInput, MaxPoolGrad, AvgPoolGrad, …) exists.
 *
 * It also replaces three existing wasm kernels with faster equivalents that
 * keep the work on XNNPACK (see `matmul.ts`, `conv2d-backprop-input.ts`):
 * `BatchMatMul` and `_FusedMatMul` with transposed operands (every Dense
 * backward pass), `Conv2DBackpropInput` (a scalar loop in 4.22), and `Tile` /
 * leading-axes `Sum` (BatchNormalization's backward pass, `tile-sum.ts`), and
 * `MaxPoolGrad` (`pool-grad.ts`). The
 * originals stay reachable as fallbacks inside the wrappers.
 *
 * This module does NOT make tfjs' gradients support dilated convolutions
 * (tfjs-core itself refuses those).
 */
import { conv2dBackpropFilter } from './conv2d-backprop-filter.js';
import { depthwiseBackpropFilter, depthwiseBackpropInput } from './depthwise-backprop.js';
import { unsortedSegmentSum } from './unsorted-segment-sum.js';
import { untransposedMatMul } from './matmul.js';
import { conv2dBackpropInputFast } from './conv2d-backprop-input.js';
import { fastTile, leadingAxesSum } from './tile-sum.js';
import { fastMaxPoolGrad } from './pool-grad.js';
import type { Info, Tf } from './util.js';

type KernelImpl = (tf: Tf, args: { inputs: Record<string, Info>; backend: unknown; attrs?: unknown }) => Info;

/** Kernel name → implementation; exported so tests can list what is covered. */
export const WASM_TRAINING_KERNELS: Readonly<Record<string, KernelImpl>> = {
  Conv2DBackpropFilter: conv2dBackpropFilter,
  DepthwiseConv2dNativeBackpropFilter: depthwiseBackpropFilter,
  DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInput,
  UnsortedSegmentSum: unsortedSegmentSum,
};

type Wrapped = (args: { inputs: Record<string, Info>; backend: unknown; attrs?: unknown }) => Info;
type Wrapper = (tf: Tf, original: Wrapped) => Wrapped;

/** Existing wasm kernels replaced by faster wrappers around the original. */
export const WASM_KERNEL_OVERRIDES: Readonly<Record<string, Wrapper>> = {
  BatchMatMul: untransposedMatMul,
  _FusedMatMul: untransposedMatMul,
  Conv2DBackpropInput: conv2dBackpropInputFast,
  Tile: fastTile,
  Sum: leadingAxesSum,
  MaxPoolGrad: fastMaxPoolGrad,
};

/** Kernel functions installed by this module (so a second call can tell them apart from tfjs' own). */
const installed = new WeakSet<object>();

type KernelFunc = Parameters<Tf['registerKernel']>[0]['kernelFunc'];

/**
 * Registers the missing training kernels for the `wasm` backend and installs
 * the faster overrides. Idempotent: kernels already registered by an earlier
 * call are kept. Returns the kernel names it registered or replaced in this call.
 */
export function registerWasmTrainingKernels(tf: Tf): string[] {
  const added: string[] = [];
  for (const [kernelName, impl] of Object.entries(WASM_TRAINING_KERNELS)) {
    if (tf.getKernel(kernelName, 'wasm') !== undefined) continue;
    const kernelFunc = ((args: { inputs: Record<string, Info>; backend: unknown; attrs?: unknown }) => impl(tf, args)) as unknown as KernelFunc;
    installed.add(kernelFunc);
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
    added.push(kernelName);
  }
  for (const [kernelName, wrap] of Object.entries(WASM_KERNEL_OVERRIDES)) {
    const original = tf.getKernel(kernelName, 'wasm');
    if (original === undefined || installed.has(original.kernelFunc)) continue;
    const kernelFunc = wrap(tf, original.kernelFunc as unknown as Wrapped) as unknown as KernelFunc;
    installed.add(kernelFunc);
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ ...original, kernelFunc });
    added.push(kernelName);
  }
  return added;
}
