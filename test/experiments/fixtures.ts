/** Hand-made experiment records for the table and diff tests. */
import type { ExperimentRecord } from '../../src/experiments/record.js';

export function record(id: string, minute: number, params: ExperimentRecord['params'], metrics: Record<string, number>, extra: Partial<ExperimentRecord> = {}): ExperimentRecord {
  return {
    format: 'pipeline.experiment/v1',
    id,
    createdAt: `2026-11-28T10:${String(minute).padStart(2, '0')}:00.000Z`,
    pipeline: { name: 'demo', file: '/w/pipeline.yaml', workspace: '/w' },
    params,
    stages: {},
    metrics,
    status: 'succeeded',
    durationMs: 1000,
    ...extra,
  };
}

export const three: ExperimentRecord[] = [
  record('a1b2c3d', 1, { train: { lr: 0.001, epochs: 5 }, resize: { size: [32, 32] } }, { 'evaluate.accuracy': 0.81, 'train.loss': 0.52 }, { name: 'baseline' }),
  record('b2c3d4e', 2, { train: { lr: 0.01, epochs: 5 }, resize: { size: [32, 32] } }, { 'evaluate.accuracy': 0.86, 'train.loss': 0.41 }),
  record('c3d4e5f', 3, { train: { lr: 0.01, epochs: 5 }, resize: { size: [64, 64] } }, { 'evaluate.accuracy': 0.8312, 'train.loss': 0.44 }, { status: 'failed' }),
];
