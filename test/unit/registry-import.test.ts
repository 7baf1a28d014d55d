/**
 * Importing `stages/registry.ts` must stay cheap: config analysis and the runner
 * load it just for stage metadata (bench `config`, import.stages-registry: 46 ms
 * CPU), and a whole no-op `pipeline run` is 0.12 s CPU (bench `engine-noop`, 1k files).
 * Heavy libraries (tfjs, sharp, h5wasm, ...) must be loaded inside the
 * functions that use them (see `stages/lib/lazy-modules.ts`), never at a stage
 * module's top level.
 *
 * The check runs in a fresh `node` whose module resolve hook (module.register)
 * refuses the heavy specifiers, so a top-level `import` of one anywhere under the
 * registry fails with the importing file named; the child also looks in the
 * CommonJS cache for a heavy package loaded through `createRequire`.
 *
 * This test does NOT time the import (speed figures live in bench/, not tests).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Packages (and builtins) no stage module may load while the registry is imported. */
const HEAVY = ['@tensorflow/tfjs', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'sharp', 'h5wasm', 'nsfwjs', 'p-limit', 'chokidar', 'execa', 'worker_threads'];

const registryUrl = new URL('../../stages/registry.js', import.meta.url).href;

/** Resolve hook (runs on the loader thread): a heavy specifier is an error naming its importer. */
function hookSource(heavy: readonly string[]): string {
  return `
const HEAVY = ${JSON.stringify(heavy)};
function pkgOf(s) {
  if (s.startsWith('node:')) return s.slice(5);
  if (s.startsWith('.') || s.startsWith('/') || s.includes(':')) return undefined;
  const parts = s.split('/');
  return s.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}
export async function resolve(specifier, context, next) {
  const pkg = pkgOf(specifier);
  if (pkg !== undefined && HEAVY.includes(pkg)) {
    throw new Error('HEAVY-IMPORT ' + specifier + ' imported at load time by ' + context.parentURL);
  }
  return next(specifier, context);
}
`;
}

function dataUrl(src: string): string {
  return `data:text/javascript,${encodeURIComponent(src)}`;
}

interface ChildReport {
  readonly stages: string[];
  readonly cjsHeavy: string[];
}

async function importRegistryInChild(heavy: readonly string[], target = registryUrl): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const registerScript = `import { register } from 'node:module'; register(${JSON.stringify(dataUrl(hookSource(heavy)))});`;
  const main = `
import { createRequire } from 'node:module';
const HEAVY = ${JSON.stringify(heavy)};
const mod = await import(${JSON.stringify(target)});
const cache = createRequire(${JSON.stringify(target)}).cache;
const cjsHeavy = Object.keys(cache).filter((p) => HEAVY.some((h) => p.includes('/node_modules/' + h + '/')));
process.stdout.write(JSON.stringify({ stages: [...(mod.builtinStages?.keys() ?? [])], cjsHeavy }));
`;
  const child = spawn(process.execPath, ['--no-warnings', '--import', dataUrl(registerScript), '--input-type=module', '-e', main], {
    cwd: fileURLToPath(new URL('../../..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  });
  return { code, stdout, stderr };
}

test('importing the stage registry loads no heavy module (tfjs, sharp, h5wasm, p-limit, worker_threads, ...)', async () => {
  const r = await importRegistryInChild(HEAVY);
  const heavyLine = /HEAVY-IMPORT [^\n]*/.exec(r.stderr)?.[0];
  assert.equal(heavyLine, undefined, `a stage module imports a heavy library at top level; load it lazily inside the function that uses it:\n${heavyLine}`);
  assert.equal(r.code, 0, `child failed:\n${r.stderr}`);
  const report = JSON.parse(r.stdout) as ChildReport;
  assert.deepEqual(report.cjsHeavy, [], 'heavy CommonJS packages were loaded during the registry import');
  // The registry still works: every built-in is there.
  assert.deepEqual(report.stages.sort(), ['augment', 'build-model', 'evaluate', 'features', 'ingest', 'partition', 'predict', 'resize', 'train']);
});

test('the guard fires: a static heavy import is reported with its importer, a createRequire one via the CJS cache', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'registry-import-'));
  try {
    const staticImport = path.join(dir, 'static-import.mjs');
    await fs.writeFile(staticImport, "import sharp from 'sharp';\nexport const builtinStages = new Map([['x', sharp]]);\n");
    const a = await importRegistryInChild(HEAVY, pathToFileURL(staticImport).href);
    assert.notEqual(a.code, 0);
    assert.match(a.stderr, /HEAVY-IMPORT sharp imported at load time by file:\/\/\S+\/static-import\.mjs/);

    const projectRoot = fileURLToPath(new URL('../../../package.json', import.meta.url));
    const viaRequire = path.join(dir, 'via-require.mjs');
    await fs.writeFile(viaRequire, `import { createRequire } from 'node:module';\nconst sharp = createRequire(${JSON.stringify(projectRoot)})('sharp');\nexport const builtinStages = new Map([['x', sharp]]);\n`);
    const b = await importRegistryInChild(HEAVY, pathToFileURL(viaRequire).href);
    assert.equal(b.code, 0, b.stderr);
    const report = JSON.parse(b.stdout) as ChildReport;
    assert.ok(report.cjsHeavy.some((p) => p.includes('/node_modules/sharp/')), `sharp not seen in the CJS cache: ${JSON.stringify(report.cjsHeavy)}`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
