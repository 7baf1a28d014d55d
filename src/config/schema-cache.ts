/**
 * Compiled JSON Schema validators, fast on every run after the first.
 *
 * Importing ajv and compiling a schema costs ~50 ms, too much for a no-op
 * `pipeline run`. So each schema is compiled once with ajv's standalone code
 * generator and the generated CommonJS module is kept on disk, keyed by a
 * sha256 of (schema, options, ajv version); later processes just `require` it
 * (~1 ms) and never load ajv. If the cache directory is not writable, the
 * validator is compiled in memory as usual.
 *
 * Validators are memoised per process by key (a pure function of the schema,
 * so this is a cache, not hidden state). This module does not turn errors into
 * diagnostics (`validate.ts` does).
 */
import { createRequire } from 'node:module';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ErrorObject } from 'ajv';
import { ok, err, type Result } from '../result.js';

/** A compiled validator: returns true when valid, else sets `errors`. May fill defaults in place. */
export type SchemaValidator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/** Options for `compileSchema`. */
export interface CompileOptions {
  /** Fill `default`s into the validated data (ajv useDefaults). */
  readonly useDefaults: boolean;
  /** Directory for generated validator modules; undefined keeps them in memory only. */
  readonly cacheDir?: string;
}

/** Bump when the generated code or its post-processing changes. */
const CODEGEN_VERSION = 1;
const require = createRequire(import.meta.url);
const memo = new Map<string, SchemaValidator>();
let ajvVersion: string | undefined;

/** Returns a validator for `schema` (draft-07 by default, 2020-12 when `$schema` says so). */
export function compileSchema(schema: object, opts: CompileOptions): Result<SchemaValidator, string> {
  ajvVersion ??= (require('ajv/package.json') as { version: string }).version;
  const key = createHash('sha256')
    .update(JSON.stringify([CODEGEN_VERSION, ajvVersion, opts.useDefaults, schema]))
    .digest('hex')
    .slice(0, 32);
  const hit = memo.get(key);
  if (hit) return ok(hit);
  const file = opts.cacheDir ? path.join(opts.cacheDir, `${key}.cjs`) : undefined;
  if (file && fs.existsSync(file)) {
    try {
      const v = require(file) as SchemaValidator;
      memo.set(key, v);
      return ok(v);
    } catch {
      // A corrupt or stale cache entry: fall through and regenerate it.
    }
  }
  const compiled = compileWithAjv(schema, opts.useDefaults, file !== undefined);
  if (!compiled.ok) return compiled;
  const { validate, code } = compiled.value;
  if (file && code) writeAtomic(file, code);
  memo.set(key, validate);
  return ok(validate);
}

function compileWithAjv(schema: object, useDefaults: boolean, wantCode: boolean): Result<{ validate: SchemaValidator; code?: string }, string> {
  const is2020 = String((schema as { $schema?: unknown }).$schema ?? '').includes('2020-12');
  // Loaded on demand: ajv is only needed when a schema is not cached yet.
  const mod = require(is2020 ? 'ajv/dist/2020' : 'ajv') as { default: new (o: object) => AjvLike };
  const ajv = new mod.default({ allErrors: true, verbose: true, useDefaults, strict: false, code: { source: wantCode } });
  let validate: SchemaValidator;
  try {
    validate = ajv.compile(schema) as SchemaValidator;
  } catch (e) {
    return err(`invalid JSON Schema: ${(e as Error).message}`);
  }
  if (!wantCode) return ok({ validate });
  const standalone = (require('ajv/dist/standalone') as { default: (a: AjvLike, v: unknown) => string }).default;
  // Runtime helpers are required by absolute path so the module loads from any cache directory.
  const code = standalone(ajv, validate).replace(/require\("(ajv\/[^"]+)"\)/g, (_, spec: string) => `require(${JSON.stringify(require.resolve(spec))})`);
  return ok({ validate, code });
}

interface AjvLike {
  compile(schema: object): unknown;
}

function writeAtomic(file: string, text: string): void {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
    prune(path.dirname(file));
  } catch {
    // Read-only install or full disk: the in-memory validator still works.
  }
}

/** Validators kept per cache directory (one per schema version); past this the oldest half goes, on writes only. */
const MAX_VALIDATORS = 64;

function prune(dir: string): void {
  const names = fs.readdirSync(dir).filter((n) => n.endsWith('.cjs'));
  if (names.length <= MAX_VALIDATORS) return;
  const aged = names.map((n) => ({ n, t: fs.statSync(path.join(dir, n), { throwIfNoEntry: false })?.mtimeMs ?? 0 })).sort((a, b) => a.t - b.t);
  for (const { n } of aged.slice(0, aged.length - MAX_VALIDATORS / 2)) fs.rmSync(path.join(dir, n), { force: true });
}
