/**
 * The backbone registry: one entry per architecture ({@link BACKBONES}), the
 * preprocessing each expects ({@link preprocess}), and {@link loadBackbone},
 * which builds an entry and fills it with weights (ImageNet download, the
 * bundled nsfwjs models, random, or a local .h5).
 *
 * This module does not train, pool or cache features (the stages do), and
 * does not pick a compute backend: the caller passes its `tf`.
 */
import type * as tfjs from '@tensorflow/tfjs';
import { spec as all } from './all.js';
import { spec as inceptionV3 } from './inception-v3.js';
import { spec as mobilenetV2 } from './mobilenet-v2.js';
import { spec as resnet50 } from './resnet50.js';
import { spec as simpleCnn } from './simple-cnn.js';
import { spec as vgg19 } from './vgg19.js';
import { spec as xception } from './xception.js';
import { BACKBONE_NAMES, type BackboneName, type BackboneSpec, type Preprocessing, type Tf } from './spec.js';
import { unreachable } from '../../../src/result.js';

export * from './spec.js';
export { paramCounts } from './layers.js';

/** Every backbone by name, in {@link BACKBONE_NAMES} order. */
export const BACKBONES: ReadonlyMap<BackboneName, BackboneSpec> = new Map(
  [mobilenetV2, inceptionV3, xception, resnet50, vgg19, all, simpleCnn].map((s) => [s.name, s] as const),
);

if (BACKBONES.size !== BACKBONE_NAMES.length) throw new Error('backbone registry out of sync with BACKBONE_NAMES');

/** The ImageNet BGR channel means subtracted by `caffe` preprocessing (Keras imagenet_utils). */
export const CAFFE_BGR_MEANS = [103.939, 116.779, 123.68] as const;

/**
 * Applies `kind` to a batch of float32 RGB pixels in 0..255 ([b, h, w, c]); returns a new tensor (the input is
 * not disposed). `caffe` needs 3 channels; the others work on any channel count.
 */
export function preprocess(tf: Tf, kind: Preprocessing, x: tfjs.Tensor4D): tfjs.Tensor4D {
  return tf.tidy(() => {
    switch (kind) {
      case 'tf':
        return tf.sub(tf.div(x, 127.5), 1) as tfjs.Tensor4D;
      case 'caffe': {
        if (x.shape[3] !== 3) throw new Error(`caffe preprocessing needs 3 channels, got ${x.shape[3]}`);
        const bgr = tf.reverse(x, -1);
        return tf.sub(bgr, tf.tensor1d([...CAFFE_BGR_MEANS])) as tfjs.Tensor4D;
      }
      case 'unit':
        return tf.div(x, 255) as tfjs.Tensor4D;
      case 'none':
        return tf.clone(x);
      default:
        return unreachable(kind);
    }
  });
}
