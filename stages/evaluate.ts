/** PLACEHOLDER: replaced by the real `evaluate` stage. */
import type { BuiltinStage } from './types.js';

export const evaluateStage: BuiltinStage<Record<string, unknown>> = {
  name: 'evaluate',
  version: '0',
  description: 'placeholder',
  inputs: [],
  async run() {
    throw new Error('stage evaluate is not implemented yet');
  },
};
