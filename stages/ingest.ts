/** PLACEHOLDER: replaced by the real `ingest` stage. */
import type { BuiltinStage } from './types.js';

export const ingestStage: BuiltinStage<Record<string, unknown>> = {
  name: 'ingest',
  version: '0',
  description: 'placeholder',
  inputs: [],
  async run() {
    throw new Error('stage ingest is not implemented yet');
  },
};
