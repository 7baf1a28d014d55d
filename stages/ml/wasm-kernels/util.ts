/**
 * Helpers for composite wasm kernels: call another registered wasm kernel
 * directly on the backend (no engine, no tape) and free intermediates.
 *
 * This module does NOT register anything; see `index.ts`.
 */
import type * as tfTypes from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** The tfjs namespace the kernels are registered into (the project's single tfjs-core instance). */
export type Tf = typeof tfTypes;
/** A backend-level tensor handle (dataId + shape + dtype), as kernels receive and return. */
export type Info = tfTypes.TensorInfo;

/** Runs registered wasm kernels by name on one backend and tracks intermediates for disposal. */
export class WasmOps {
  private readonly temps: Info[] = [];
  constructor(
    private readonly tf: Tf,
    readonly backend: BackendWasm,
  ) {}

  /** Runs kernel `name` and remembers its output as an intermediate (freed by `dispose` unless `keep`). */
  run(name: string, inputs: Record<string, Info>, attrs: Record<string, unknown> = {}): Info {
    const kernel = this.tf.getKernel(name, 'wasm');
    if (kernel === undefined) throw new Error(`wasm kernel ${name} is not registered`);
    const out = kernel.kernelFunc({ inputs, backend: this.backend, attrs: attrs as tfTypes.NamedAttrMap }) as Info;
    this.temps.push(out);
    return out;
  }

  /** Remembers an output produced outside `run` (e.g. by an original kernel function) as an intermediate. */
  track(x: Info): Info {
    this.temps.push(x);
    return x;
  }

  reshape(x: Info, shape: number[]): Info {
    return this.run('Reshape', { x }, { shape });
  }

  pad(x: Info, paddings: [number, number][]): Info {
    if (paddings.every(([a, b]) => a === 0 && b === 0)) return x;
    return this.run('PadV2', { x }, { paddings, constantValue: 0 });
  }

  slice(x: Info, begin: number[], size: number[]): Info {
    if (begin.every((b) => b === 0) && size.every((s, i) => s === x.shape[i])) return x;
    return this.run('Slice', { x }, { begin, size });
  }

  stridedSlice(x: Info, begin: number[], end: number[], strides: number[]): Info {
    return this.run('StridedSlice', { x }, { begin, end, strides, beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0 });
  }

  /** Marks `x` as the result: it survives `dispose`. */
  keep(x: Info): Info {
    const i = this.temps.indexOf(x);
    if (i >= 0) this.temps.splice(i, 1);
    return x;
  }

  /** Frees every intermediate not kept. */
  dispose(): void {
    for (const t of this.temps) this.backend.disposeData(t.dataId);
    this.temps.length = 0;
  }
}

/** Normalises a stride/dilation attr to [h, w]. */
export function pair(v: number | [number, number] | readonly number[]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0]!, v[1]!];
}

/**
 * Pads (or crops, for negative amounts) the two spatial axes of an NHWC tensor.
 * Used to build exactly the rows/columns a stride-1 correlation needs.
 */
export function padOrCrop(ops: WasmOps, x: Info, top: number, bottom: number, left: number, right: number): Info {
  const [b, h, w, c] = x.shape as [number, number, number, number];
  const cropT = Math.max(0, -top);
  const cropB = Math.max(0, -bottom);
  const cropL = Math.max(0, -left);
  const cropR = Math.max(0, -right);
  const cropped = ops.slice(x, [0, cropT, cropL, 0], [b, h - cropT - cropB, w - cropL - cropR, c]);
  return ops.pad(cropped, [
    [0, 0],
    [Math.max(0, top), Math.max(0, bottom)],
    [Math.max(0, left), Math.max(0, right)],
    [0, 0],
  ]);
}
