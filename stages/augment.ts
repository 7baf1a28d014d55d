/** PLACEHOLDER: replaced by the real `augment` stage. */
import type { BuiltinStage } from './types.js';

export const augmentStage: BuiltinStage<Record<string, unknown>> = {
  name: 'augment',
  version: '0',
  description: 'placeholder',
  inputs: [],
  async run() {
    throw new Error('stage augment is not implemented yet');
  },
};
