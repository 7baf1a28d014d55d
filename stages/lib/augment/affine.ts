/**
 * The affine matrix of Keras `apply_affine_transform`, reimplemented:
 * rotation · shift · shear · zoom (each only when non-trivial), moved about
 * the image centre (`transform_matrix_offset_center(m, h, w)`), then its x/y
 * axes swapped for a channels-last image (Keras' `col_axis > row_axis` branch)
 * so it maps output (row, col) to input (row, col) the way
 * `scipy.ndimage.affine_transform` reads it.
 *
 * Faithful quirks, kept on purpose: Keras applies `tx` (the height-shift
 * draw) and `zx` to the column axis after that swap, and centres the first
 * axis with `h/2 - 0.5`; for square images neither is visible.
 *
 * This module does not sample pixels (see warp.ts).
 */
import type { TransformParams } from './random-transform.js';

/** Maps output pixel (r, c) to input coordinates: `inRow = (r0 + r*rr) + c*rc`, `inCol = (c0 + r*cr) + c*cc`. */
export interface SamplingMatrix {
  /** Input row per output row. */
  readonly rr: number;
  /** Input row per output column. */
  readonly rc: number;
  /** Input row at output (0, 0). */
  readonly r0: number;
  /** Input column per output row. */
  readonly cr: number;
  /** Input column per output column. */
  readonly cc: number;
  /** Input column at output (0, 0). */
  readonly c0: number;
}

type Mat3 = [number, number, number, number, number, number, number, number, number];

function mul(a: Mat3, b: Mat3): Mat3 {
  const out = new Array<number>(9) as Mat3;
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      out[i * 3 + j] = a[i * 3]! * b[j]! + a[i * 3 + 1]! * b[3 + j]! + a[i * 3 + 2]! * b[6 + j]!;
    }
  }
  return out;
}

/** NumPy `deg2rad`: x * (pi / 180). */
function deg2rad(deg: number): number {
  return deg * (Math.PI / 180);
}

/**
 * The sampling matrix for `params` on an image of `height` x `width`, or
 * `null` when Keras would skip the warp entirely (no rotation, shift, shear or zoom).
 */
export function samplingMatrix(params: TransformParams, height: number, width: number): SamplingMatrix | null {
  let m: Mat3 | null = null;
  const then = (next: Mat3): void => {
    m = m === null ? next : mul(m, next);
  };
  if (params.theta !== 0) {
    const t = deg2rad(params.theta);
    then([Math.cos(t), -Math.sin(t), 0, Math.sin(t), Math.cos(t), 0, 0, 0, 1]);
  }
  if (params.tx !== 0 || params.ty !== 0) then([1, 0, params.tx, 0, 1, params.ty, 0, 0, 1]);
  if (params.shear !== 0) {
    const s = deg2rad(params.shear);
    then([1, -Math.sin(s), 0, 0, Math.cos(s), 0, 0, 0, 1]);
  }
  if (params.zx !== 1 || params.zy !== 1) then([params.zx, 0, 0, 0, params.zy, 0, 0, 0, 1]);
  if (m === null) return null;
  const ox = height / 2 - 0.5;
  const oy = width / 2 - 0.5;
  const t = mul(mul([1, 0, ox, 0, 1, oy, 0, 0, 1], m), [1, 0, -ox, 0, 1, -oy, 0, 0, 1]);
  // Swap axes 0 and 1 (rows and columns of the 3x3): scipy's first axis is the image row.
  return { rr: t[4], rc: t[3], r0: t[5], cr: t[1], cc: t[0], c0: t[2] };
}
