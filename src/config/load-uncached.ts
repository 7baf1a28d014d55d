/**
 * The full load path behind `loadPipeline` (which first tries the graph
 * cache): read → parse YAML (positions kept) → validate against
 * schemas/pipeline.schema.json → merge params (inline, params_files, -S
 * overrides) → analyse (`src/analyze.ts`). Bad input of any kind (missing
 * file, directory, empty file, non-YAML, non-mapping root) is a diagnostic,
 * never an exception. It does not plan, fingerprint or run anything, and does
 * not cache (load.ts does).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Diagnostic } from '../diagnostic.js';
import type { JsonObject, JsonValue, PipelineGraph } from '../pipeline.js';
import { ok, err, type Result } from '../result.js';
import { schemasDir as defaultSchemasDir } from '../paths.js';
import { defaultValidatorCacheDir, type LoadOptions } from './load-options.js';
import { analyzePipeline, type StageRegistry } from '../analyze.js';
import { dedupeDiagnostics, isObject, shown } from '../analyze/context.js';
import { unusablePath } from '../analyze/paths.js';
import { locate, parseYamlSource, type YamlSource } from './source.js';
import { pipelineSchemaValidator, stageSchemaValidator, validateValue } from './validate.js';
import { deepMerge, setParam } from './params.js';
import type { SchemaValidator } from './schema-cache.js';

/** What the uncached load produced, and every file whose content it depended on (for the graph cache). */
export interface UncachedLoad {
  readonly result: Result<PipelineGraph, Diagnostic[]>;
  /** Schema files read (config files are in `graph.configFiles`). */
  readonly schemaFiles: readonly string[];
}

/** Loads, validates and analyses a pipeline file (`text`: its content, if already read). */
export async function loadPipelineUncached(abs: string, opts: LoadOptions = {}, text?: string): Promise<UncachedLoad> {
  const schemaFiles: string[] = [];
  const result = await load(abs, opts, text, schemaFiles);
  return { result, schemaFiles };
}

async function load(abs: string, opts: LoadOptions, knownText: string | undefined, schemaFiles: string[]): Promise<Result<PipelineGraph, Diagnostic[]>> {
  const schemasDir = opts.schemasDir ?? defaultSchemasDir;
  const stageSchemasDir = opts.stageSchemasDir ?? path.join(schemasDir, 'stages');
  const cacheDir = opts.validatorCacheDir === false ? undefined : (opts.validatorCacheDir ?? defaultValidatorCacheDir);

  const read = knownText !== undefined ? ok(knownText) : readSourceFile(abs, 'the pipeline file');
  if (!read.ok) return err([{ ...read.error, location: { file: abs, offset: 0, length: 0 } }]);
  if (read.value.includes('\u0000')) return err([{ ...fileProblem('yaml-syntax', 'the pipeline file is not a text file'), location: { file: abs, offset: 0, length: 0 } }]);
  const parsed = parseYamlSource(abs, read.value);
  if (parsed.diagnostics.length > 0) return err(parsed.diagnostics);
  const { source } = parsed;
  const config = source.value;
  if (config === undefined || config === null) {
    return err([{ severity: 'error', reason: 'invalid-value', message: 'the pipeline file is empty; it needs at least name: and stages:', location: { file: abs, offset: 0, length: 0 } }]);
  }
  if (!isObject(config)) {
    return err([{ severity: 'error', reason: 'invalid-value', message: `the pipeline file must be a mapping with name: and stages:, got ${Array.isArray(config) ? 'a list' : `a ${typeof config}`}`, location: locate(source, []) }]);
  }

  const diagnostics: Diagnostic[] = [];
  schemaFiles.push(path.join(schemasDir, 'pipeline.schema.json'));
  diagnostics.push(...validateValue(pipelineSchemaValidator(schemasDir, cacheDir), config, { source, basePath: [], rootName: 'the pipeline file' }));

  const workspace = path.resolve(opts.workspace ?? path.dirname(abs));
  const configFiles = [abs];
  let params: JsonObject = isObject(config.params) ? config.params : {};
  if (Array.isArray(config.params_files)) {
    config.params_files.forEach((entry, i) => {
      if (typeof entry !== 'string' || entry === '') return; // schema reported it
      const pf = path.resolve(path.dirname(abs), entry);
      configFiles.push(pf);
      const loaded = loadParamsFile(pf, entry, source, i);
      if (!loaded.ok) diagnostics.push(...loaded.error);
      else params = deepMerge(params, loaded.value);
    });
  }
  for (const o of opts.overrides ?? []) {
    const r = setParam(params, o.path, o.value);
    if (r.ok) params = r.value;
    else {
      const where = r.lookup.existing === '' ? 'params' : `params.${r.lookup.existing}`;
      const hint = r.lookup.suggestion ? `; did you mean '${r.lookup.suggestion}'?` : '';
      // Located at the deepest part of the path that exists in the file (or `params:` itself).
      const at = ['params', ...(r.lookup.existing === '' ? [] : r.lookup.existing.split('.').map((s) => (/^\d+$/.test(s) ? Number(s) : s)))];
      diagnostics.push({ severity: 'error', reason: 'unknown-param', message: `-S ${shown(o.path)}: no such param (${shown(where)} has no key '${shown(r.lookup.missing)}')${hint}`, location: locate(source, at) });
    }
  }

  const cacheUnusable = typeof config.cache === 'string' ? unusablePath(config.cache) : undefined;
  if (cacheUnusable !== undefined) diagnostics.push({ severity: 'error', reason: 'invalid-value', message: `cache: ${cacheUnusable}`, location: locate(source, ['cache']) });
  const needsRegistry = isObject(config.stages) && Object.values(config.stages).some((s) => isObject(s) && s.uses !== undefined);
  const registry: StageRegistry = opts.registry ?? (needsRegistry ? await importRegistry() : new Map());
  const schemaMemo = new Map<string, Result<SchemaValidator, string>>();
  const analysed = analyzePipeline({
    source,
    config,
    params,
    workspace,
    configFiles,
    ...(typeof config.cache === 'string' && cacheUnusable === undefined ? { cacheDir: path.resolve(path.dirname(abs), config.cache) } : {}),
    registry: () => registry,
    stageSchema: (name) => {
      let v = schemaMemo.get(name);
      if (!v) {
        schemaFiles.push(path.join(stageSchemasDir, `${name}.json`));
        schemaMemo.set(name, (v = stageSchemaValidator(path.join(stageSchemasDir, `${name}.json`), cacheDir)));
      }
      return v;
    },
  });
  if (!analysed.ok) diagnostics.push(...analysed.error);
  if (diagnostics.length > 0) return err(dedupeDiagnostics(diagnostics));
  if (!analysed.ok) throw new Error('unreachable: analysis failed without diagnostics');
  return ok(analysed.value);
}

async function importRegistry(): Promise<StageRegistry> {
  const mod = (await import('../../stages/registry.js')) as { builtinStages: StageRegistry };
  return mod.builtinStages;
}

function fileProblem(reason: Diagnostic['reason'], message: string): Diagnostic {
  return { severity: 'error', reason, message };
}

/** Reads a config file's text; every failure is a diagnostic (without location) naming it as `what`. */
function readSourceFile(abs: string, what: string): Result<string, Diagnostic> {
  try {
    const st = fs.statSync(abs);
    if (st.isDirectory()) {
      const hint = fs.existsSync(path.join(abs, 'pipeline.yaml')) ? ` (it contains pipeline.yaml: pass that file)` : '';
      return err(fileProblem('file-not-found', `${what} is a directory${hint}`));
    }
    const text = fs.readFileSync(abs, 'utf8');
    if (text.includes('\u0000')) return err(fileProblem('yaml-syntax', `${what} is not a text file`));
    return ok(text);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : `cannot be read (${code ?? (e as Error).message})`;
    return err(fileProblem('file-not-found', `${what} ${why}`));
  }
}

/** Loads one params file (a YAML mapping); problems located in it, or at its `params_files` entry. */
function loadParamsFile(file: string, written: string, pipeline: YamlSource, index: number): Result<JsonObject, Diagnostic[]> {
  const at = locate(pipeline, ['params_files', index]);
  const read = readSourceFile(file, `params file '${written}'`);
  if (!read.ok) return err([{ ...read.error, location: at }]);
  const parsed = parseYamlSource(file, read.value);
  if (parsed.diagnostics.length > 0) return err(parsed.diagnostics);
  const v = parsed.source.value;
  if (v === undefined || v === null) return ok({});
  if (!isObject(v)) {
    return err([{ severity: 'error', reason: 'invalid-value', message: `params file must be a mapping, got ${Array.isArray(v) ? 'a list' : `a ${typeof v}`}`, location: locate(parsed.source, []) }]);
  }
  return ok(v);
}
