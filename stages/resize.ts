/** PLACEHOLDER: replaced by the real `resize` stage. */
import type { BuiltinStage } from './types.js';

export const resizeStage: BuiltinStage<Record<string, unknown>> = {
  name: 'resize',
  version: '0',
  description: 'placeholder',
  inputs: [],
  async run() {
    throw new Error('stage resize is not implemented yet');
  },
};
