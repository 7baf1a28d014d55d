/**
 * Registers the kernels tfjs-backend-wasm 4.22 lacks for training:
 * `Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropFilter`,
 * `DepthwiseConv2dNativeBackpropInput` and `UnsortedSegmentSum`. The list was
 * found by training a conv+BN+ReLU+maxpool+dropout+dense CNN and a
 * depthwise-separable net (Adam, categorical cross-entropy) on wasm and
 * registering each kernel it reported missing; everything else those
 * gradients need (Conv2DBackpropInput, MaxPoolGrad, AvgPoolGrad, …) exists.
 *
 * This module does NOT register anything the wasm backend already has, and
 * does not make tfjs' gradients support dilated convolutions (tfjs-core
 * itself refuses those).
 */
import { conv2dBackpropFilter } from './conv2d-backprop-filter.js';
import { depthwiseBackpropFilter, depthwiseBackpropInput } from './depthwise-backprop.js';
import { unsortedSegmentSum } from './unsorted-segment-sum.js';
import type { Info, Tf } from './util.js';

type KernelImpl = (tf: Tf, args: { inputs: Record<string, Info>; backend: unknown; attrs?: unknown }) => Info;

/** Kernel name → implementation; exported so tests can list what is covered. */
export const WASM_TRAINING_KERNELS: Readonly<Record<string, KernelImpl>> = {
  Conv2DBackpropFilter: conv2dBackpropFilter,
  DepthwiseConv2dNativeBackpropFilter: depthwiseBackpropFilter,
  DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInput,
  UnsortedSegmentSum: unsortedSegmentSum,
};

/**
 * Registers the missing training kernels for the `wasm` backend. Idempotent:
 * kernels already registered (by an earlier call or a future tfjs) are kept.
 * Returns the names it registered in this call.
 */
export function registerWasmTrainingKernels(tf: Tf): string[] {
  const added: string[] = [];
  for (const [kernelName, impl] of Object.entries(WASM_TRAINING_KERNELS)) {
    if (tf.getKernel(kernelName, 'wasm') !== undefined) continue;
    tf.registerKernel({
      kernelName,
      backendName: 'wasm',
      kernelFunc: ((args: { inputs: Record<string, Info>; backend: unknown; attrs?: unknown }) => impl(tf, args)) as unknown as Parameters<Tf['registerKernel']>[0]['kernelFunc'],
    });
    added.push(kernelName);
  }
  return added;
}
