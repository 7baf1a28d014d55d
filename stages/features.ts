/** PLACEHOLDER: replaced by the real `features` stage. */
import type { BuiltinStage } from './types.js';

export const featuresStage: BuiltinStage<Record<string, unknown>> = {
  name: 'features',
  version: '0',
  description: 'placeholder',
  inputs: [],
  async run() {
    throw new Error('stage features is not implemented yet');
  },
};
