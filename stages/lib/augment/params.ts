/**
 * The `augment` stage's params (the Keras `ImageDataGenerator` arguments plus
 * `copies`, `seed`, `preview_per_class`), their Keras defaults, and the
 * normalised generator config the random draws use.
 *
 * Validation of shapes and ranges lives in `schemas/stages/augment.json`; this
 * module only applies defaults and Keras' own normalisation (e.g.
 * `zoom_range: z` → `[1 - z, 1 + z]`). It does no I/O.
 */

/** Fill modes for points outside the input (scipy.ndimage boundary modes, as Keras passes them). */
export const FILL_MODES = ['nearest', 'constant', 'reflect', 'wrap'] as const;
/** One fill mode. */
export type FillMode = (typeof FILL_MODES)[number];

/** Interpolation orders Keras supports (`interpolation_order`): 0 nearest, 1 bilinear. */
export const INTERPOLATION_ORDERS = [0, 1] as const;
/** One interpolation order. */
export type InterpolationOrder = (typeof INTERPOLATION_ORDERS)[number];

/**
 * A shift range, as Keras accepts it: a number (< 1: fraction of the image
 * size, uniform in [-r, r); >= 1 and integral: whole pixels drawn as
 * `randint(0, r) * ±1`; >= 1 and fractional: pixels, uniform) or a list of
 * choices (each drawn value gets a random sign; all < 1 means fractions).
 */
export type ShiftRange = number | readonly number[];

/** Params as written under `with:` (snake_case like Keras). Every field is optional. */
export interface AugmentParams {
  /** Degrees; theta ~ uniform(-r, r). Keras default 0. */
  readonly rotation_range?: number;
  /** Horizontal shift (see ShiftRange). Keras default 0. */
  readonly width_shift_range?: ShiftRange;
  /** Vertical shift (see ShiftRange). Keras default 0. */
  readonly height_shift_range?: ShiftRange;
  /** Shear angle in degrees (Keras >= 2.1.3), uniform(-r, r). Keras default 0. */
  readonly shear_range?: number;
  /** `z` → zoom in [1 - z, 1 + z], or `[lo, hi]`; x and y drawn independently. Keras default 0. */
  readonly zoom_range?: number | readonly [number, number];
  /** Intensity added to all channels, uniform(-r, r), clipped to the image's min/max. Keras default 0. */
  readonly channel_shift_range?: number;
  /** `[lo, hi]` factor as PIL `ImageEnhance.Brightness`; null = off (Keras default). */
  readonly brightness_range?: readonly [number, number] | null;
  /** Mirror left-right with p = 0.5. Keras default false. */
  readonly horizontal_flip?: boolean;
  /** Mirror top-bottom with p = 0.5. Keras default false. */
  readonly vertical_flip?: boolean;
  /** Keras default 'nearest'. */
  readonly fill_mode?: FillMode;
  /** Value for `fill_mode: constant`, 0..255. Keras default 0. */
  readonly cval?: number;
  /** 0 nearest or 1 bilinear. Keras default 1. */
  readonly interpolation_order?: InterpolationOrder;
  /** Augmented variants per training image (K). Default 1. */
  readonly copies?: number;
  /** Overrides the run seed for this stage's draws. */
  readonly seed?: number;
  /** Training images per class shown in preview.png. Default 2. */
  readonly preview_per_class?: number;
}

/** The generator config after Keras' `__init__` normalisation; what the draws and the warp read. */
export interface AugmentConfig {
  /** `rotation_range`, degrees. */
  readonly rotationRange: number;
  /** `width_shift_range` as given (drives Keras' `ty`). */
  readonly widthShiftRange: ShiftRange;
  /** `height_shift_range` as given (drives Keras' `tx`). */
  readonly heightShiftRange: ShiftRange;
  /** `shear_range`, degrees. */
  readonly shearRange: number;
  /** Zoom factor bounds, always a pair, as Keras stores it. */
  readonly zoomRange: readonly [number, number];
  /** `channel_shift_range`. */
  readonly channelShiftRange: number;
  /** Brightness factor bounds, or null when off. */
  readonly brightnessRange: readonly [number, number] | null;
  /** Whether the horizontal-flip draw may flip. */
  readonly horizontalFlip: boolean;
  /** Whether the vertical-flip draw may flip. */
  readonly verticalFlip: boolean;
  /** Boundary mode of the warp. */
  readonly fillMode: FillMode;
  /** Fill value for `constant`. */
  readonly cval: number;
  /** 0 nearest, 1 bilinear. */
  readonly interpolationOrder: InterpolationOrder;
}

/** Params with every default applied (what `augment.json` records). */
export interface ResolvedAugmentParams {
  /** What the draws and the warp read. */
  readonly config: AugmentConfig;
  /** Variants per train image. */
  readonly copies: number;
  /** `params.seed`, or undefined to use the run seed. */
  readonly seed: number | undefined;
  /** Train images per class in the preview. */
  readonly previewPerClass: number;
}

/** Applies the Keras defaults and Keras' normalisation. Assumes the params passed the schema. */
export function resolveAugmentParams(p: AugmentParams): ResolvedAugmentParams {
  const zoom = p.zoom_range ?? 0;
  return {
    config: {
      rotationRange: p.rotation_range ?? 0,
      widthShiftRange: p.width_shift_range ?? 0,
      heightShiftRange: p.height_shift_range ?? 0,
      shearRange: p.shear_range ?? 0,
      zoomRange: typeof zoom === 'number' ? [1 - zoom, 1 + zoom] : [zoom[0], zoom[1]],
      channelShiftRange: p.channel_shift_range ?? 0,
      brightnessRange: p.brightness_range ? [p.brightness_range[0], p.brightness_range[1]] : null,
      horizontalFlip: p.horizontal_flip ?? false,
      verticalFlip: p.vertical_flip ?? false,
      fillMode: p.fill_mode ?? 'nearest',
      cval: p.cval ?? 0,
      interpolationOrder: p.interpolation_order ?? 1,
    },
    copies: p.copies ?? 1,
    seed: p.seed,
    previewPerClass: p.preview_per_class ?? 2,
  };
}

/**
 * The config as a fixed-order plain object: the part of the params that can
 * change a variant's pixels (not `copies`, `seed` or the preview), for cache keys.
 */
export function canonicalConfig(c: AugmentConfig): Record<string, unknown> {
  return {
    rotation_range: c.rotationRange,
    width_shift_range: c.widthShiftRange,
    height_shift_range: c.heightShiftRange,
    shear_range: c.shearRange,
    zoom_range: c.zoomRange,
    channel_shift_range: c.channelShiftRange,
    brightness_range: c.brightnessRange,
    horizontal_flip: c.horizontalFlip,
    vertical_flip: c.verticalFlip,
    fill_mode: c.fillMode,
    cval: c.cval,
    interpolation_order: c.interpolationOrder,
  };
}
