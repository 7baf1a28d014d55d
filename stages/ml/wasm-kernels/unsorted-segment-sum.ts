/**
 * `UnsortedSegmentSum` for wasm, in plain JS over the wasm heap. It is the
 * gradient of `gather` (embeddings, index lookups), which is not a hot path in
 * the CNNs we train, so a single pass in JS is enough.
 *
 * This module does NOT validate ids beyond skipping out-of-range ones
 * (TensorFlow drops negative ids the same way).
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { Info, Tf } from './util.js';

/** Kernel function: inputs {x, segmentIds}; attrs {numSegments}. */
export function unsortedSegmentSum(_tf: Tf, args: { inputs: Record<string, Info>; backend: unknown; attrs?: unknown }): Info {
  const { x, segmentIds } = args.inputs as { x: Info; segmentIds: Info };
  const { numSegments } = args.attrs as { numSegments: number };
  const backend = args.backend as BackendWasm;
  const ids = backend.readSync(segmentIds.dataId) as Int32Array | Float32Array;
  const idShape = segmentIds.shape;
  const inner = x.shape.slice(idShape.length).reduce((p, d) => p * d, 1);
  const outShape = [numSegments, ...x.shape.slice(idShape.length)];
  const out = backend.makeOutput(outShape, x.dtype);
  // Read x after allocating the output: makeOutput may grow the heap and detach earlier views.
  const xs = backend.typedArrayFromHeap(x);
  const os = backend.typedArrayFromHeap(out);
  os.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i]!;
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let k = 0; k < inner; k++) os[dst + k]! += xs[src + k]!;
  }
  return out;
}
