/** PLACEHOLDER: replaced by the real `partition` stage. */
import type { BuiltinStage } from './types.js';

export const partitionStage: BuiltinStage<Record<string, unknown>> = {
  name: 'partition',
  version: '0',
  description: 'placeholder',
  inputs: [],
  async run() {
    throw new Error('stage partition is not implemented yet');
  },
};
