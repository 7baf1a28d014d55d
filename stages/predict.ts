/** PLACEHOLDER: replaced by the real `predict` stage. */
import type { BuiltinStage } from './types.js';

export const predictStage: BuiltinStage<Record<string, unknown>> = {
  name: 'predict',
  version: '0',
  description: 'placeholder',
  inputs: [],
  async run() {
    throw new Error('stage predict is not implemented yet');
  },
};
