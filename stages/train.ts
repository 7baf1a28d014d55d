/** PLACEHOLDER: replaced by the real `train` stage. */
import type { BuiltinStage } from './types.js';

export const trainStage: BuiltinStage<Record<string, unknown>> = {
  name: 'train',
  version: '0',
  description: 'placeholder',
  inputs: [],
  async run() {
    throw new Error('stage train is not implemented yet');
  },
};
