/**
 * JSON Schema validation of YAML values, with ajv errors turned into located
 * diagnostics: one per real problem, pointing at the offending value (or key,
 * for unknown keys, with "did you mean"). `anyOf` branches are resolved to the
 * branch the value was evidently meant to match, so `{stag: x}` in `deps:`
 * says "unknown key 'stag'; did you mean 'stage'?" rather than three errors.
 *
 * Does not read files other than the schema files it is asked for, and does
 * no semantic checks (`analyze` does).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ErrorObject } from 'ajv';
import type { Diagnostic, DiagnosticReason } from '../diagnostic.js';
import { didYouMean } from '../did-you-mean.js';
import { ok, err, type Result } from '../result.js';
import { compileSchema, type SchemaValidator } from './schema-cache.js';
import { locate, locateKey, pathToString, type TreePath, type YamlSource } from './source.js';

/** Where a validated value sits in its YAML file, for locating errors. */
export interface ValidationTarget {
  readonly source: YamlSource;
  /** Path of the validated value inside `source` (empty for the whole document). */
  readonly basePath: TreePath;
  /** How to name the root in messages when `basePath` is empty, e.g. `the pipeline file`. */
  readonly rootName: string;
}

/**
 * Runs `validate` on `data` and returns diagnostics for every problem (empty
 * when valid). `ignore` lists value paths (relative to the validated value)
 * already reported elsewhere, e.g. strings whose `${...}` failed: errors at
 * or below them are dropped.
 */
export function validateValue(validate: SchemaValidator, data: unknown, target: ValidationTarget, ignore: readonly TreePath[] = []): Diagnostic[] {
  if (validate(data)) return [];
  const ignored = ignore.map((p) => `/${p.map((s) => String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`);
  const errors = (validate.errors ?? []).filter((e) => !ignored.some((i) => e.instancePath === i || e.instancePath.startsWith(`${i}/`)));
  return schemaErrorsToDiagnostics(errors, target);
}

/**
 * The validator for `schemas/pipeline.schema.json`, without its editor-only
 * `definitions.builtinStage.allOf` (built-in `with:` blocks are validated
 * separately against their own schema).
 */
export function pipelineSchemaValidator(schemasDir: string, cacheDir: string | undefined): SchemaValidator {
  const schema = JSON.parse(fs.readFileSync(path.join(schemasDir, 'pipeline.schema.json'), 'utf8')) as {
    definitions?: { builtinStage?: { allOf?: unknown } };
  };
  delete schema.definitions?.builtinStage?.allOf;
  const v = compileSchema(schema, { useDefaults: false, cacheDir });
  if (!v.ok) throw new Error(`schemas/pipeline.schema.json: ${v.error}`); // our own schema: a bug
  return v.value;
}

/** Loads and compiles a built-in stage's params schema; the error says why it is unusable. */
export function stageSchemaValidator(file: string, cacheDir: string | undefined): Result<SchemaValidator, string> {
  let schema: object;
  try {
    schema = JSON.parse(fs.readFileSync(file, 'utf8')) as object;
  } catch (e) {
    return err((e as NodeJS.ErrnoException).code === 'ENOENT' ? `no params schema at ${file}` : `cannot read params schema ${file}: ${(e as Error).message}`);
  }
  const v = compileSchema(schema, { useDefaults: true, cacheDir });
  return v.ok ? ok(v.value) : err(`${file}: ${v.error}`);
}

type Err = ErrorObject & { propertyName?: string };

/** Turns ajv errors (allErrors + verbose) into diagnostics located in `target.source`. */
export function schemaErrorsToDiagnostics(errors: readonly ErrorObject[], target: ValidationTarget): Diagnostic[] {
  // `if` and `propertyNames` only summarise the errors nested under them.
  const kept = dropRequiredExplainedByTypo(resolveAnyOf(errors.filter((e) => e.keyword !== 'if' && e.keyword !== 'propertyNames') as Err[]));
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  for (const e of kept) {
    const d = toDiagnostic(e, target);
    const k = `${d.location?.offset}:${d.message}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(d);
  }
  return out.sort((a, b) => (a.location?.offset ?? 0) - (b.location?.offset ?? 0));
}

/**
 * For each failed `anyOf` (outermost first), keep only the errors of the
 * branch whose `type` matches the value (fewest errors wins a tie); when no
 * branch's type matches, replace them all by one "must be X or Y" error.
 */
function resolveAnyOf(all: Err[]): Err[] {
  let errors = all;
  const anyOfs = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').sort((a, b) => a.schemaPath.length - b.schemaPath.length);
  for (const a of anyOfs) {
    if (!errors.includes(a)) continue;
    const prefix = `${a.schemaPath}/`;
    const branches = new Map<string, Err[]>();
    for (const e of errors) {
      // Same schema location AND same value (list items share one schemaPath).
      if (!e.schemaPath.startsWith(prefix) || !(e.instancePath === a.instancePath || e.instancePath.startsWith(`${a.instancePath}/`))) continue;
      const b = e.schemaPath.slice(prefix.length).split('/')[0];
      branches.set(b, [...(branches.get(b) ?? []), e]);
    }
    if (branches.size === 0) continue; // oneOf matched several branches: keep it, toDiagnostic explains
    const typeFails = (b: string, es: Err[]): boolean => es.some((e) => e.keyword === 'type' && e.instancePath === a.instancePath && e.schemaPath === `${prefix}${b}/type`);
    const matching = [...branches].filter(([b, es]) => !typeFails(b, es)).sort((x, y) => x[1].length - y[1].length);
    const drop = new Set<Err>([a]);
    for (const es of branches.values()) for (const e of es) drop.add(e);
    let insert: Err[] = [];
    if (matching.length > 0) {
      for (const e of matching[0][1]) drop.delete(e);
    } else {
      const types = [...branches.values()].flatMap((es) => es.filter((e) => e.keyword === 'type' && e.instancePath === a.instancePath).map((e) => String(e.params.type)));
      insert = [{ ...a, keyword: 'type', params: { type: [...new Set(types.flatMap((t) => t.split(',')))].join(',') } }];
    }
    errors = [...errors.filter((e) => !drop.has(e)), ...insert];
  }
  return errors;
}

/** `stagse:` → "unknown key 'stagse'; did you mean 'stages'?" already says it; drop "missing 'stages'". */
function dropRequiredExplainedByTypo(errors: Err[]): Err[] {
  return errors.filter((e) => {
    if (e.keyword !== 'required') return true;
    const missing = String(e.params.missingProperty);
    // A stage needs cmd: or uses:, so a typo of either explains a missing cmd:.
    const explains = missing === 'cmd' ? ['cmd', 'uses'] : [missing];
    return !errors.some(
      (o) => o.keyword === 'additionalProperties' && o.instancePath === e.instancePath && explains.includes(didYouMean(String(o.params.additionalProperty), explains) ?? ''),
    );
  });
}

const builtinOnlyKeys = ['with', 'inputs', 'out'];
const cmdOnlyKeys = ['cmd', 'cwd', 'deps', 'outs', 'metrics', 'params'];

/** For a key that belongs to the other stage kind, says so (instead of listing the allowed keys). */
function stageKindHint(key: string, allowed: readonly string[]): string | undefined {
  const isCmdStage = allowed.includes('cmd');
  const isBuiltinStage = allowed.includes('with') && !isCmdStage;
  if (isCmdStage && builtinOnlyKeys.includes(key)) return `: '${key}:' belongs to built-in stages, which need 'uses:'`;
  if (isBuiltinStage && cmdOnlyKeys.includes(key)) return `: '${key}:' belongs to command stages; a built-in (uses:) cannot also have it`;
  return undefined;
}

function instanceToPath(instancePath: string): string[] {
  if (instancePath === '') return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function toTreePath(target: ValidationTarget, instancePath: string): TreePath {
  // Sequence indices must be numbers for `findNode`.
  const segs = instanceToPath(instancePath);
  return [...target.basePath, ...segs.map((s) => (/^\d+$/.test(s) ? Number(s) : s))];
}

function describe(target: ValidationTarget, p: TreePath): string {
  return p.length === 0 ? target.rootName : pathToString(p);
}

function typeOfValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `string '${v.length > 40 ? `${v.slice(0, 40)}…` : v}'`;
  return `${typeof v} ${String(v)}`;
}

const typeNames: Record<string, string> = { object: 'a mapping', array: 'a list', string: 'a string', number: 'a number', integer: 'an integer', boolean: 'a boolean', null: 'null' };

function toDiagnostic(e: Err, target: ValidationTarget): Diagnostic {
  const p = toTreePath(target, e.instancePath);
  const where = describe(target, p);
  const mk = (reason: DiagnosticReason, message: string, location = locate(target.source, p)): Diagnostic => ({ severity: 'error', reason, message, location });
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(e.params.additionalProperty);
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {}).filter((k) => k !== '$schema');
      const suggestion = didYouMean(key, allowed);
      const otherKind = stageKindHint(key, allowed);
      const tail = suggestion ? `; did you mean '${suggestion}'?` : otherKind ? otherKind : allowed.length > 0 ? ` (expected one of: ${allowed.join(', ')})` : '';
      return mk('unknown-key', `unknown key '${key}' in ${where}${tail}`, locateKey(target.source, [...p, key]));
    }
    case 'required': {
      const missing = String(e.params.missingProperty);
      const loc = p.length > 0 ? locateKey(target.source, p) : locate(target.source, p);
      if (missing === 'cmd' && p.length === target.basePath.length + 2 && p[p.length - 2] === 'stages') {
        return mk('missing-key', `stage '${String(p[p.length - 1])}' needs either 'uses:' (a built-in stage) or 'cmd:' (a command)`, loc);
      }
      return mk('missing-key', `${where} is missing required key '${missing}'`, loc);
    }
    case 'type': {
      const want = String(e.params.type)
        .split(',')
        .map((t) => typeNames[t] ?? t);
      const list = want.length > 1 ? `${want.slice(0, -1).join(', ')} or ${want[want.length - 1]}` : want[0];
      return mk('invalid-value', `${where} must be ${list}, got ${typeOfValue(e.data)}`);
    }
    case 'enum': {
      const allowed = (e.params.allowedValues as unknown[]) ?? [];
      const s = typeof e.data === 'string' ? didYouMean(e.data, allowed.map(String)) : undefined;
      return mk('invalid-value', `${where} must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(e.data)}${s ? `; did you mean ${JSON.stringify(s)}?` : ''}`);
    }
    case 'const':
      return mk('invalid-value', `${where} must be ${JSON.stringify(e.params.allowedValue)}, got ${JSON.stringify(e.data)}`);
    case 'propertyNames':
    case 'pattern': {
      if (e.propertyName !== undefined) {
        return mk('invalid-value', `invalid key '${e.propertyName}' in ${where} (must match ${String(e.params.pattern ?? e.message)})`, locateKey(target.source, [...p, e.propertyName]));
      }
      if (e.keyword === 'propertyNames') return mk('invalid-value', `${where} has an invalid key`);
      return mk('invalid-value', `${where} must match ${String(e.params.pattern)}, got ${typeOfValue(e.data)}`);
    }
    case 'oneOf': {
      // Reached only when several alternatives matched (see resolveAnyOf).
      const alts = ((e.parentSchema as { oneOf?: { required?: string[] }[] } | undefined)?.oneOf ?? []).map((a) => a.required?.join(' + ')).filter(Boolean);
      return mk('invalid-value', alts.length > 0 ? `${where} must set only one of: ${alts.join(', ')}` : `${where} matches more than one alternative; it must match exactly one`);
    }
    case 'minItems':
      return mk('invalid-value', `${where} must have at least ${String(e.params.limit)} item${e.params.limit === 1 ? '' : 's'}`);
    case 'minProperties':
      return mk('invalid-value', `${where} must have at least ${String(e.params.limit)} key${e.params.limit === 1 ? '' : 's'}`);
    case 'minLength':
      return mk('invalid-value', e.params.limit === 1 ? `${where} must not be empty` : `${where} must be at least ${String(e.params.limit)} characters long`);
    default:
      return mk('invalid-value', `${where} ${e.message ?? 'is invalid'}, got ${typeOfValue(e.data)}`);
  }
}
