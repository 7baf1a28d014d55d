/**
 * Test rig for the config front end: a temp workspace, a small test-only
 * built-in registry with its own params schemas (stable while the real stages
 * change during development), and helpers to load a pipeline and render its
 * diagnostics exactly as the CLI prints them (no colour, paths relative to
 * the workspace).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BuiltinStage } from '../../stages/types.js';
import type { Diagnostic } from '../../src/diagnostic.js';
import type { PipelineGraph } from '../../src/pipeline.js';
import { loadPipeline, type LoadOptions } from '../../src/config/load.js';
import { formatDiagnostics } from '../../src/diagnostic-printer.js';
import type { Result } from '../../src/result.js';

const noRun = async (): Promise<never> => {
  throw new Error('test-only stage: analysis tests never run stages');
};

/** Test built-ins: `ingest` (no inputs), `resize` (input `images`), `train` (input `features`, optional `validation`). */
const ingest: BuiltinStage<{ source: string }> = { name: 'ingest', version: '1', description: 'test ingest', inputs: [], fileDeps: (p) => [p.source], run: noRun };
const resize: BuiltinStage<unknown> = { name: 'resize', version: '1', description: 'test resize', inputs: ['images'], run: noRun };
const train: BuiltinStage<{ device: string }> = {
      name: 'train',
      version: '1',
      description: 'test train',
      inputs: ['features'],
      optionalInputs: ['validation'],
      resources: (p): Record<string, number> => (p.device === 'gpu' ? { gpu: 1 } : {}),
      run: noRun,
};
export const testRegistry: ReadonlyMap<string, BuiltinStage<any>> = new Map<string, BuiltinStage<any>>([ingest, resize, train].map((s) => [s.name, s]));

const testSchemas: Record<string, object> = {
  ingest: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', required: ['source'], additionalProperties: false, properties: { source: { type: 'string' } } },
  resize: {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    additionalProperties: false,
    properties: {
      size: { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 2, maxItems: 2, default: [224, 224] },
      interpolation: { enum: ['bilinear', 'nearest'], default: 'bilinear' },
    },
  },
  train: {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    additionalProperties: false,
    required: ['lr'],
    properties: {
      lr: { type: 'number', exclusiveMinimum: 0 },
      epochs: { type: 'integer', minimum: 1, default: 10 },
      device: { enum: ['cpu', 'gpu'], default: 'cpu' },
      layers: { type: 'array', items: { type: 'object' } },
    },
  },
};

/** A temp workspace with the test schemas; remove with `dispose()`. */
export interface ConfigRig {
  readonly dir: string;
  /** Writes files (relative path → text) into the workspace. */
  write(files: Record<string, string>): void;
  /** Writes `pipeline.yaml` (or `name`) and loads it with the test registry. */
  load(yaml: string, opts?: LoadOptions & { name?: string }): Promise<Result<PipelineGraph, Diagnostic[]>>;
  /** Loads and asserts failure; returns the printed diagnostics. */
  diagnose(yaml: string, opts?: LoadOptions & { name?: string }): Promise<string>;
  /** Loads and asserts success. */
  graph(yaml: string, opts?: LoadOptions & { name?: string }): Promise<PipelineGraph>;
  dispose(): void;
}

export function configRig(): ConfigRig {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-test-')));
  const stageSchemasDir = path.join(dir, '.schemas');
  fs.mkdirSync(stageSchemasDir);
  for (const [name, schema] of Object.entries(testSchemas)) fs.writeFileSync(path.join(stageSchemasDir, `${name}.json`), JSON.stringify(schema));
  const write = (files: Record<string, string>): void => {
    for (const [rel, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), text);
    }
  };
  const load: ConfigRig['load'] = async (yaml, opts = {}) => {
    const name = opts.name ?? 'pipeline.yaml';
    write({ [name]: yaml });
    return loadPipeline(path.join(dir, name), { registry: testRegistry, stageSchemasDir, ...opts });
  };
  const render = (ds: readonly Diagnostic[]): string =>
    formatDiagnostics(ds, {
      color: false,
      relativeTo: dir,
      readSource: (f) => {
        try {
          return fs.readFileSync(f, 'utf8');
        } catch {
          return undefined;
        }
      },
    });
  return {
    dir,
    write,
    load,
    async diagnose(yaml, opts) {
      const r = await load(yaml, opts);
      if (r.ok) throw new Error('expected diagnostics, got a graph');
      return render(r.error);
    },
    async graph(yaml, opts) {
      const r = await load(yaml, opts);
      if (!r.ok) throw new Error(`expected a graph, got:\n${render(r.error)}`);
      return r.value;
    },
    dispose: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
