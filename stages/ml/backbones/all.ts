/**
 * `all`: the seed's concatenation of InceptionV3 + Xception + ResNet50 on one
 * input. Each branch is the full keras.applications model nested as a layer
 * (named `inception_v3`, `xception`, `resnet50`), fed by its own preprocessing.
 * The branches share one automatic-name counter, as when the seed builds all
 * three in one Keras session: Xception's unnamed layers continue after
 * InceptionV3's (`conv2d_94`, `batch_normalization_94`, `add`), so no two
 * weights share a name and the model can be saved. Preprocessing:
 * - `tf_preprocess`: Rescaling x/127.5 − 1 for InceptionV3 and Xception;
 * - `caffe_preprocess`: a frozen 1x1 conv that swaps RGB→BGR and subtracts the
 *   ImageNet means for ResNet50 (12 fixed, non-trainable parameters).
 * So the model takes raw float RGB 0..255 (`preprocessing: 'none'`).
 *
 * Pooling, not flatten: the seed flattens each branch, which at 299x299 gives
 * 8·8·2048 + 10·10·2048 + 10·10·2048 = 540,672 values per image and a size that
 * changes with the input; we global-average-pool each branch and concatenate
 * (`features`, 3 × 2048 = 6144), the same reduction the other backbones get in
 * the features stage.
 *
 * This module only builds the architecture; loadBackbone loads each branch's
 * official weights into the nested models.
 */
import type * as tfjs from '@tensorflow/tfjs';
import { assertMinSize } from './layers.js';
import { spec as inceptionV3 } from './inception-v3.js';
import { spec as resnet50 } from './resnet50.js';
import { spec as xception } from './xception.js';
import type { BackboneSpec, BuildOptions, Tf } from './spec.js';

type T = tfjs.SymbolicTensor;

/** The branches in concatenation order, with the nested model names they get. */
export const ALL_PARTS = [inceptionV3, xception, resnet50] as const;

/** Sets the fixed RGB→BGR + mean-subtraction weights of a 1x1 conv with 3 in/out channels. */
function setCaffeWeights(tf: Tf, layer: tfjs.layers.Layer): void {
  const k = new Float32Array(9);
  // kernel[0][0][in][out]: out0 = B = in2, out1 = G = in1, out2 = R = in0
  k[2 * 3 + 0] = 1;
  k[1 * 3 + 1] = 1;
  k[0 * 3 + 2] = 1;
  const kernel = tf.tensor4d(k, [1, 1, 3, 3]);
  const bias = tf.tensor1d([-103.939, -116.779, -123.68]);
  layer.setWeights([kernel, bias]);
  kernel.dispose();
  bias.dispose();
}

function build(tf: Tf, opts: BuildOptions): tfjs.LayersModel {
  assertMinSize('all', opts.inputShape, spec.minSize);
  if (opts.inputShape[2] !== 3) throw new Error(`all: needs 3 input channels, got ${opts.inputShape[2]}`);
  const input = tf.input({ shape: [...opts.inputShape], name: 'input_layer' });
  const tfPre = tf.layers.rescaling({ scale: 1 / 127.5, offset: -1, name: 'tf_preprocess' }).apply(input) as T;
  const caffeLayer = tf.layers.conv2d({ filters: 3, kernelSize: 1, useBias: true, trainable: false, name: 'caffe_preprocess' });
  const caffePre = caffeLayer.apply(input) as T;
  const branchInput: Record<string, T> = { inception_v3: tfPre, xception: tfPre, resnet50: caffePre };
  const autoNames = new Map<string, number>();
  const pooled = ALL_PARTS.map((part, i) => {
    const sub = part.build(tf, { ...opts, autoNames, seed: opts.seed === undefined ? undefined : opts.seed + 1000 * (i + 1) });
    const out = sub.apply(branchInput[part.name]!) as T;
    return tf.layers.globalAveragePooling2d({ name: `${part.name}_avg_pool` }).apply(out) as T;
  });
  const features = tf.layers.concatenate({ axis: -1, name: 'features' }).apply(pooled) as T;
  const model = tf.model({ inputs: input, outputs: features, name: 'all' });
  setCaffeWeights(tf, caffeLayer);
  return model;
}

const sum = (k: 'total' | 'trainable' | 'nonTrainable'): number => ALL_PARTS.reduce((s, p) => s + p.params[k], 0);

/** Registry entry for `all`. ImageNet weights are the three branches' files (see ALL_PARTS), no single file. */
export const spec: BackboneSpec = {
  name: 'all',
  description: "the seed's InceptionV3 + Xception + ResNet50 on one input, each pooled, concatenated (6144-d); slow",
  defaultSize: [299, 299],
  minSize: [75, 75],
  channels: 3,
  preprocessing: 'none',
  featureLayer: 'features',
  featureDim: 3 * 2048,
  output: 'vector',
  pretrainedKinds: ['imagenet', 'none'],
  params: { total: sum('total') + 12, trainable: sum('trainable'), nonTrainable: sum('nonTrainable') + 12 },
  build,
};
