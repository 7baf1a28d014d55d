/** PLACEHOLDER: replaced by the real `build-model` stage. */
import type { BuiltinStage } from './types.js';

export const buildModelStage: BuiltinStage<Record<string, unknown>> = {
  name: 'build-model',
  version: '0',
  description: 'placeholder',
  inputs: [],
  async run() {
    throw new Error('stage build-model is not implemented yet');
  },
};
