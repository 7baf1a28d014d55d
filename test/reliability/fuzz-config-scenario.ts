/**
 * Seeded fuzzer of pipeline files, shared by the fast test
 * (`test/reliability/fuzz-config.test.ts`) and the stress run
 * (`test/stress/fuzz-config.stress.ts`).
 *
 * Each case is built from the example pipelines (`pipelines/*.yaml`) and a
 * few fixture pipelines by one mutator (byte/line/token edits, wrong types at
 * every position, deep nesting, huge strings and keys, aliases and billion
 * laughs, merge keys, duplicate keys, tabs, BOMs, invalid UTF-8, unicode,
 * tags, multiple documents, `${...}` edge cases, foreach/matrix blow-ups and
 * `-S` overrides) and loaded in-process with `loadPipeline`, the function the
 * CLI calls. The oracle: no throw; a failure is a list of diagnostics, each
 * with a location inside the file it names; an accepted pipeline writes no
 * output outside its workspace; each file loads within a time and heap
 * budget. A sample of cases also goes through the real CLI process
 * (`node bin/pipeline.js status|dag -f FILE [-S ...]`): exit code 0, 2 or 3
 * and no stack trace on stderr.
 *
 * It does not judge figures (the test files assert the goals) and never runs
 * a stage.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { spawn } from 'node:child_process';
import { stringify as yamlStringify, parse as yamlParse } from 'yaml';
import { loadPipeline } from '../../src/config/load.js';
import { parseOverride } from '../../src/config/overrides.js';
import type { Diagnostic, SourceLocation } from '../../src/diagnostic.js';
import type { JsonValue } from '../../src/pipeline.js';
import { mulberry32 } from '../../stages/ml/dataset.js';
import { repoRoot } from '../helpers/rig.js';

/** Small deterministic PRNG (mulberry32) with helpers. */
export function makeRng(seed: number): Rng {
  const next = mulberry32(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!, chance: (p: number) => next() < p };
}

/** The PRNG interface the mutators use. */
export interface Rng {
  next(): number;
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
}

/** One generated case: files to write into a fresh workspace (`pipeline.yaml` is loaded) and raw `-S` arguments. */
export interface FuzzCase {
  readonly mutator: string;
  readonly files: Readonly<Record<string, string | Buffer>>;
  readonly overrides?: readonly string[];
}

/** A broken promise found by the oracle. */
export interface FuzzProblem {
  readonly mutator: string;
  readonly index: number;
  /** `throw`, `unlocated`, `bad-location`, `escape-accepted`, `slow`, `memory`, `cli-exit`, `cli-stack`. */
  readonly kind: string;
  readonly message: string;
  /** Where the failing case was saved (when `keepDir` is set), else the first bytes of the file. */
  readonly sample: string;
}

/** Per-mutator counts. */
export interface MutatorStats {
  cases: number;
  /** Loaded to a graph. */
  accepted: number;
  /** Rejected with located diagnostics (or, for `-S`, a usage error). */
  rejected: number;
  /** Cases with a problem. */
  bad: number;
}

/** What a fuzz run found. */
export interface FuzzReport {
  readonly count: number;
  readonly seed: number;
  /** Cases with no problem. */
  readonly passed: number;
  readonly problems: readonly FuzzProblem[];
  readonly byMutator: Readonly<Record<string, MutatorStats>>;
  /** Slowest in-process load (CPU ms, user + system) and its mutator. */
  readonly maxMs: number;
  /** Slowest in-process load in wall time (ms; inflated by other load on the machine). */
  readonly maxWallMs: number;
  readonly maxMsMutator: string;
  /** Largest heap growth across one load (MiB; no GC forced, so it counts garbage not yet collected). */
  readonly maxHeapMiB: number;
  /** Largest RSS growth over the run's starting RSS (MiB). */
  readonly maxRssMiB: number;
  /** CLI sample: how many cases ran through the process, and their slowest wall time. */
  readonly cliCases: number;
  readonly cliMaxMs: number;
}

/** Options of a fuzz run. */
export interface FuzzOptions {
  readonly count: number;
  readonly seed: number;
  /** How many cases (evenly spread) also go through `node bin/pipeline.js`; default 0. */
  readonly cliSample?: number;
  /** Per-file budgets; defaults 1000 ms of CPU time (plus 2 s per MiB of input) and 64 MiB of heap growth (plus 128× the input's size); see runFuzzConfig. */
  readonly budgetMs?: number;
  readonly budgetMiB?: number;
}

// ---------------------------------------------------------------------------
// Seeds

const fixturePipelines: readonly string[] = [
  'name: tiny\nstages:\n  a:\n    cmd: [echo, hi]\n    outs: [out/a.txt]\n  b:\n    cmd: "cat ${stages.a.out}"\n    deps: [out/a.txt]\n',
  'name: params\nparams:\n  lr: 0.01\n  sizes: [16, 32]\n  nested: {deep: {x: 1}}\nstages:\n  train:\n    cmd: ["node", "train.js", "--lr", "${params.lr}"]\n    params: [lr, nested.deep.x]\n    outs: [{path: out/model, cache: false}]\n    metrics: [out/metrics.json]\n',
  'name: expand\nparams:\n  sizes: [16, 32, 64]\nstages:\n  resize:\n    foreach: ${params.sizes}\n    cmd: echo ${item}\n    outs: [out/r-${item}]\n  grid:\n    matrix: {lr: [0.1, 0.01], bs: [8, 16]}\n    cmd: [echo, "${item.lr}", "${item.bs}"]\n    outs: ["out/g-${item.lr}-${item.bs}"]\n    needs: [resize]\n',
  'name: deps\nstages:\n  a:\n    cmd: echo a\n    outs: [out/a]\n  b:\n    cmd: echo b\n    deps: [{stage: a, output: out/a}, data/in.csv]\n    env: {A: "${stages.a.out}", B: "x"}\n    cwd: sub\n    resources: {cpu: 1}\n    interrupt: false\n    description: b stage\n',
  'name: builtin\nparams:\n  source: data/images\nstages:\n  ingest:\n    uses: ingest\n    with: {source: "${params.source}"}\n  resize:\n    uses: resize\n    with: {size: [32, 32], channels: 3}\n    out: out/resized\n',
  'name: anchors\ndefaults: &d\n  cmd: [echo, x]\nstages:\n  a:\n    <<: *d\n    outs: [out/a]\n  b:\n    <<: *d\n    outs: [out/b]\n',
  'name: pf\nparams_files: [params.yaml]\nstages:\n  a:\n    cmd: "echo ${params.x.y}"\n',
];

/** Seed texts: the example pipelines plus the fixtures above. */
export function seedTexts(): string[] {
  const dir = path.join(repoRoot, 'pipelines');
  const examples = fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.yaml'))
    .sort()
    .map((n) => fs.readFileSync(path.join(dir, n), 'utf8'));
  return [...examples, ...fixturePipelines];
}

// ---------------------------------------------------------------------------
// Building blocks

const evilTokens: readonly string[] = [
  'null', '~', '[]', '{}', '[', ']', '{', '}', '"', "'", '&a', '*a', '*nosuch', '!!binary aGk=', '!!js/function "x"', '!custom x', '!!set', '!!omap',
  '!!int x', '!!float y', '!!timestamp 2020-01-01', '!!str', '<<', '? x', '- ', ':', ': :', '#', '%YAML 1.1', '---', '...', '|', '>', '|-', '>+',
  '.nan', '.inf', '-.inf', '1e400', '-0', '0x1F', '0o17', '123456789012345678901234567890', 'yes', 'on', 'NO', '"\\u0000"', '"\\uD800"', '"\\x80"',
  '${', '${}', '${params}', '${params.}', '${params..x}', '${item}', '${stages.}', '${stages.x.out}', '$${params.x}', '${${params.x}}', '"${params.lr"',
  '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '../x', '/etc/passwd', 'C:\\x', '\\\\srv\\share', '..', '.', '\t', '\u00a0',
  '\u202e', '\u0301', '\ufeff', '😀', '𝔘', 'x@y', '@', ',', '*', '**', 'é', 'Ä\u0308',
];

const unicodeBits: readonly string[] = [
  '\u202e', '\u202d', '\u200f', '\u0301\u0301\u0301', '\u0000', '\ud800', '\udfff', '\ufeff', '😀', '👨‍👩‍👧', '🏳️‍🌈', '\u200b', '\u2028', '\u2029', '\u0085', 'ﬁ', 'ß', 'İ', '\u00a0', '\u3000', 'م', '漢字', '\u{10ffff}',
];

const snippets: readonly string[] = [
  'x: &a [1, 2]\ny: *a\n', 'z: *undefined_anchor\n', '<<: {a: 1}\n', '<<: [*a]\n', '<<: 3\n', '? [complex, key]\n: v\n', '? {a: 1}\n: v\n', '%YAML 1.2\n---\n', '---\n', '...\n',
  '--- !!map\n', 'tagged: !!binary aGVsbG8=\n', 'fn: !!js/function "function(){}"\n', 'custom: !mytag {a: 1}\n', 'set: !!set {a, b}\n', 'omap: !!omap [a: 1]\n',
  'lit: |\n  a\n  b\n', 'fold: >-\n  a\n\tb\n', 'name: dup\n', 'stages: {}\n', 'params: {a: "${params.a}"}\n', '\t- tab\n', '"unterminated\n', "'also\n", '[unclosed\n', '{unclosed: \n',
  'k: "\\uD800\\uDC00\\uDFFF"\n', 'k: "\\xff\\x00"\n', '# comment ${params.x}\n', 'stages:\n  "😀":\n    cmd: echo\n', 'stages:\n  "a\u202eb":\n    cmd: echo\n',
];

/** Wrong-typed replacements (YAML source) for any value. */
const wrongValues: readonly JsonValue[] = [null, true, false, 0, -1, 1.5, 1e308, -1e-308, '', ' ', 'x', '${params.nope}', [], [null], [[]], {}, { a: null }, { '': '' }, [1, 'a', { b: [] }], 'yes', '0', '[1]'];

function splitLines(s: string): string[] {
  return s.split('\n');
}

/** Every path in a JSON tree (containers and leaves). */
function allPaths(v: JsonValue, base: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(base);
  if (Array.isArray(v)) v.forEach((x, i) => allPaths(x, [...base, i], out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) allPaths(x, [...base, k], out);
  return out;
}

function setAt(root: JsonValue, p: readonly (string | number)[], value: JsonValue): JsonValue {
  if (p.length === 0) return value;
  const [h, ...rest] = p;
  if (Array.isArray(root)) {
    const c = [...root];
    c[h as number] = setAt(root[h as number]!, rest, value);
    return c;
  }
  const o = { ...(root as Record<string, JsonValue>) };
  Object.defineProperty(o, h as string, { value: setAt(o[h as string]!, rest, value), enumerable: true, writable: true, configurable: true });
  return o;
}

function getAt(root: JsonValue, p: readonly (string | number)[]): JsonValue | undefined {
  let cur: JsonValue | undefined = root;
  for (const s of p) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = Array.isArray(cur) ? cur[s as number] : (cur as Record<string, JsonValue>)[s as string];
  }
  return cur;
}

/** Renames key `p[last]` of its parent map to `name`, keeping order. */
function renameKey(root: JsonValue, p: readonly (string | number)[], name: string): JsonValue {
  const parentPath = p.slice(0, -1);
  const parent = getAt(root, parentPath);
  if (parent === null || typeof parent !== 'object' || Array.isArray(parent)) return root;
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(parent)) Object.defineProperty(out, k === p[p.length - 1] ? name : k, { value: v, enumerable: true, writable: true, configurable: true });
  return setAt(root, parentPath, out);
}

function toYaml(v: JsonValue): string {
  return yamlStringify(v, { lineWidth: 0, aliasDuplicateObjects: false });
}

function parsedSeed(text: string): JsonValue | undefined {
  try {
    return yamlParse(text, { merge: true, maxAliasCount: 1000 }) as JsonValue;
  } catch {
    return undefined;
  }
}

function stringPaths(v: JsonValue): (string | number)[][] {
  return allPaths(v).filter((p) => typeof getAt(v, p) === 'string');
}

function keyPaths(v: JsonValue): (string | number)[][] {
  return allPaths(v).filter((p) => p.length > 0 && typeof p[p.length - 1] === 'string');
}

function interpEdge(rng: Rng): string {
  const cases = [
    '${', '${params', '${params.', '${params.a', 'x ${params.lr', '${}', '${ }', '${params. lr}', '${${params.lr}}', '${params.${item}}', '${params.train.${x}}',
    '$${params.lr}', '$$${params.lr}', '$$$${', '$$', '${params.nope}', '${params.train.nope}', '${params.__proto__}', '${params.constructor}', '${params.toString}',
    '${params.train.lr.x}', '${params.0}', '${item}', '${item.__proto__}', '${item.a.b.c}', '${stages.}', '${stages..out}', '${stages.x.out}', '${stages.nosuch.out}',
    '${stages.__proto__.out}', '${stages.ingest.outs}', '${env.HOME}', '${PATH}', '$(rm -rf /)', '`id`', '${params.a}${params.a}${params.a}', '${params.self}',
    `\${params.${'a.'.repeat(2000)}x}`, `\${params.${'x'.repeat(100000)}}`, '${'.repeat(rng.int(2, 5000)), `${'$'.repeat(rng.int(1, 5000))}{params.lr}`, '}'.repeat(100),
  ];
  return rng.pick(cases);
}

function deepNest(rng: Rng, depth: number): string {
  switch (rng.int(0, 4)) {
    case 0:
      return `${'['.repeat(depth)}1${']'.repeat(depth)}`;
    case 1:
      return `${'{a: '.repeat(depth)}1${'}'.repeat(depth)}`;
    case 2:
      return `${'['.repeat(depth)}`; // never closed
    case 3:
      return `${'[{a: '.repeat(depth)}1${'}]'.repeat(depth)}`;
    default:
      return `${'{'.repeat(depth)}${'}'.repeat(depth)}`;
  }
}

function blockNest(depth: number, seq: boolean): string {
  let s = '';
  for (let i = 0; i < depth; i++) s += `${' '.repeat(i)}${seq ? '-' : 'k:'}\n`;
  return `${s}${' '.repeat(depth)}x\n`;
}

function hugeString(rng: Rng): string {
  const n = rng.pick([64 * 1024, 256 * 1024, 1024 * 1024, 2 * 1024 * 1024]);
  const unit = rng.pick(['a', 'ab ', '${', '😀', 'é', '\\', '$$', '../', '"', ' ']);
  return unit.repeat(Math.ceil(n / unit.length));
}

function quote(s: string): string {
  return JSON.stringify(s);
}

// ---------------------------------------------------------------------------
// Mutators: each returns a case from a seed text.

type Mutator = (rng: Rng, seed: string) => FuzzCase;

const mutators: Record<string, { weight: number; make: Mutator }> = {
  byte: {
    weight: 12,
    make: (rng, seed) => {
      const buf = Buffer.from(seed, 'utf8');
      const bytes = [...buf];
      const n = rng.int(1, 8);
      for (let i = 0; i < n; i++) {
        const at = rng.int(0, Math.max(0, bytes.length - 1));
        const op = rng.int(0, 2);
        if (op === 0) bytes[at] = rng.int(0, 255);
        else if (op === 1) bytes.splice(at, 0, rng.int(0, 255));
        else bytes.splice(at, rng.int(1, 16));
      }
      return { mutator: 'byte', files: { 'pipeline.yaml': Buffer.from(bytes) } };
    },
  },
  line: {
    weight: 10,
    make: (rng, seed) => {
      const lines = splitLines(seed);
      const n = rng.int(1, 4);
      for (let i = 0; i < n; i++) {
        const a = rng.int(0, lines.length - 1);
        const b = rng.int(0, lines.length - 1);
        switch (rng.int(0, 5)) {
          case 0:
            lines.splice(a, 1);
            break;
          case 1:
            lines.splice(a, 0, lines[b] ?? '');
            break;
          case 2:
            [lines[a], lines[b]] = [lines[b] ?? '', lines[a] ?? ''];
            break;
          case 3:
            lines[a] = ' '.repeat(rng.int(1, 3)) + (lines[a] ?? '');
            break;
          case 4:
            lines[a] = (lines[a] ?? '').replace(/^\s+/, '');
            break;
          default:
            lines[a] = (lines[a] ?? '').replace(/^( *)/, (m) => '\t'.repeat(Math.max(1, m.length / 2)));
        }
      }
      return { mutator: 'line', files: { 'pipeline.yaml': lines.join('\n') } };
    },
  },
  token: {
    weight: 12,
    make: (rng, seed) => {
      const toks = [...seed.matchAll(/[^\s:,[\]{}#]+/g)];
      let text = seed;
      const n = rng.int(1, 3);
      for (let i = 0; i < n && toks.length > 0; i++) {
        const t = rng.pick(toks);
        const at = t.index!;
        if (at + t[0].length > text.length) continue;
        text = text.slice(0, at) + rng.pick(evilTokens) + text.slice(at + t[0].length);
      }
      return { mutator: 'token', files: { 'pipeline.yaml': text } };
    },
  },
  splice: {
    weight: 6,
    make: (rng, seed) => {
      const lines = splitLines(seed);
      const at = rng.int(0, lines.length);
      const indent = ' '.repeat(rng.pick([0, 0, 2, 4, 6]));
      const snip = splitLines(rng.pick(snippets)).map((l) => (l ? indent + l : l));
      lines.splice(at, 0, ...snip);
      return { mutator: 'splice', files: { 'pipeline.yaml': lines.join('\n') } };
    },
  },
  'wrong-type': {
    weight: 14,
    make: (rng, seed) => {
      const v = parsedSeed(seed);
      if (v === undefined || v === null) return { mutator: 'wrong-type', files: { 'pipeline.yaml': seed } };
      let cur: JsonValue = v;
      for (let i = rng.int(1, 3); i > 0; i--) {
        const paths = allPaths(cur);
        const p = rng.pick(paths);
        cur = setAt(cur, p, rng.pick(wrongValues));
      }
      return { mutator: 'wrong-type', files: { 'pipeline.yaml': toYaml(cur) } };
    },
  },
  interp: {
    weight: 10,
    make: (rng, seed) => {
      let v = parsedSeed(seed);
      if (v === undefined || v === null || typeof v !== 'object' || Array.isArray(v)) return { mutator: 'interp', files: { 'pipeline.yaml': seed } };
      const kind = rng.int(0, 5);
      if (kind === 0) {
        // Self- and mutually-referencing params, and huge expansion through a param.
        const big = 'y'.repeat(rng.pick([10, 1000, 100000]));
        v = setAt(v, ['params'], { self: '${params.self}', a: '${params.b}', b: '${params.a}', big, list: Array.from({ length: rng.int(1, 2000) }, (_, i) => i), lr: 0.1, train: { lr: 0.1 } });
        const refs = Array.from({ length: rng.int(1, 500) }, () => rng.pick(['${params.big}', 'x${params.big}y', '${params.list}', '${params.self}', '${params.a}', '$${params.big}']));
        v = setAt(v, ['stages', 'fz'], { cmd: ['echo', ...refs], outs: [`out/${rng.pick(['${params.self}', '${params.big}', 'ok'])}`] });
      } else if (kind === 1) {
        // Interpolation in keys, paths and cmd lists.
        const stages = getAt(v, ['stages']);
        const name = rng.pick(['${params.x}', '$${x}', 'a${item}', '${', 'ok']);
        v = setAt(v, ['stages'], { ...(stages !== null && typeof stages === 'object' && !Array.isArray(stages) ? stages : {}), [name]: { cmd: [interpEdge(rng), 'x'], deps: [interpEdge(rng)], outs: [interpEdge(rng)], env: { [interpEdge(rng)]: interpEdge(rng) } } });
      } else {
        const sp = stringPaths(v);
        for (let i = rng.int(1, 3); i > 0 && sp.length > 0; i--) {
          const p = rng.pick(sp);
          const old = getAt(v, p) as string;
          v = setAt(v, p, rng.chance(0.5) ? interpEdge(rng) : `${old}${interpEdge(rng)}`);
        }
      }
      return { mutator: 'interp', files: { 'pipeline.yaml': toYaml(v) } };
    },
  },
  unicode: {
    weight: 8,
    make: (rng, seed) => {
      let v = parsedSeed(seed);
      if (v === undefined || v === null) return { mutator: 'unicode', files: { 'pipeline.yaml': seed + rng.pick(unicodeBits) } };
      const bit = (): string => rng.pick(unicodeBits).repeat(rng.int(1, 3));
      for (let i = rng.int(1, 3); i > 0; i--) {
        if (rng.chance(0.5)) {
          const kp = keyPaths(v);
          // Stage names are the most interesting keys.
          const stageKeys = kp.filter((p) => p.length === 2 && p[0] === 'stages');
          const p = rng.chance(0.6) && stageKeys.length > 0 ? rng.pick(stageKeys) : kp.length > 0 ? rng.pick(kp) : undefined;
          if (p) v = renameKey(v, p, `${String(p[p.length - 1])}${bit()}`);
        } else {
          const sp = stringPaths(v);
          if (sp.length > 0) {
            const p = rng.pick(sp);
            const s = getAt(v, p) as string;
            const at = rng.int(0, s.length);
            v = setAt(v, p, s.slice(0, at) + bit() + s.slice(at));
          }
        }
      }
      return { mutator: 'unicode', files: { 'pipeline.yaml': toYaml(v) } };
    },
  },
  'dup-key': {
    weight: 4,
    make: (rng, seed) => {
      const lines = splitLines(seed);
      const keyLines = lines.map((l, i) => [l, i] as const).filter(([l]) => /^\s*[A-Za-z_$"][^:]*:/.test(l));
      if (keyLines.length === 0) return { mutator: 'dup-key', files: { 'pipeline.yaml': seed } };
      const [l, i] = rng.pick(keyLines);
      lines.splice(i + 1, 0, l.replace(/:.*$/, `: ${rng.pick(['1', 'x', '[]', '{}', 'null'])}`));
      return { mutator: 'dup-key', files: { 'pipeline.yaml': lines.join('\n') } };
    },
  },
  tabs: {
    weight: 3,
    make: (rng, seed) => {
      const text = seed.replace(/^( +)/gm, (m) => (rng.chance(0.3) ? m.replace(/ {2}/g, '\t') : m)).replace(/: /g, (m) => (rng.chance(0.1) ? ':\t' : m));
      return { mutator: 'tabs', files: { 'pipeline.yaml': text } };
    },
  },
  bom: {
    weight: 2,
    make: (rng, seed) => {
      const lines = splitLines(seed);
      const where = rng.int(0, 2);
      const text = where === 0 ? `\ufeff${seed}` : where === 1 ? `\ufeff\ufeff${seed}` : (lines.splice(rng.int(0, lines.length), 0, '\ufeff'), lines.join('\n'));
      const utf16 = rng.chance(0.2);
      return { mutator: 'bom', files: { 'pipeline.yaml': utf16 ? Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(seed, 'utf16le')]) : text } };
    },
  },
  'invalid-utf8': {
    weight: 3,
    make: (rng, seed) => {
      const bad = rng.pick([[0x80], [0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xfe, 0xfe, 0xff], [0xc3]]);
      const buf = Buffer.from(seed, 'utf8');
      const at = rng.int(0, buf.length);
      return { mutator: 'invalid-utf8', files: { 'pipeline.yaml': Buffer.concat([buf.subarray(0, at), Buffer.from(bad), buf.subarray(at)]) } };
    },
  },
  tags: {
    weight: 3,
    make: (rng, seed) => {
      const tag = rng.pick(['!!binary', '!!js/function', '!!js/undefined', '!!js/regexp', '!custom', '!', '!!set', '!!omap', '!!pairs', '!!timestamp', '!!int', '!!float', '!!bool', '!!null', '!!str', '!!map', '!!seq', '!<tag:yaml.org,2002:str>', '!e!x']);
      const text = seed.replace(/: (\S)/g, (m, c: string) => (rng.chance(0.15) ? `: ${tag} ${c}` : m));
      return { mutator: 'tags', files: { 'pipeline.yaml': text === seed ? `${tag} ${seed}` : text } };
    },
  },
  'multi-doc': {
    weight: 2,
    make: (rng, seed) => {
      const docs = rng.int(2, 4);
      const parts = Array.from({ length: docs }, (_, i) => (i === 0 || rng.chance(0.5) ? seed : rng.pick(['', 'name: other\n', '[1, 2]\n', '...\n'])));
      return { mutator: 'multi-doc', files: { 'pipeline.yaml': parts.join(rng.pick(['---\n', '\n---\n', '...\n---\n'])) } };
    },
  },
  'deep-nest': {
    weight: 2,
    make: (rng, seed) => {
      const depth = rng.pick([100, 1000, 5000, 20000]);
      const nest = rng.chance(0.7) ? deepNest(rng, depth) : `\n${blockNest(Math.min(depth, 1500), rng.chance(0.5))
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n')}`;
      const where = rng.int(0, 4);
      const text =
        where === 0
          ? nest
          : where === 1
            ? `name: deep\nparams:\n  x: ${nest}\nstages:\n  a:\n    cmd: "echo \${params.x}"\n`
            : where === 2
              ? `name: deep\nstages: ${nest}\n`
              : where === 3
                ? `name: deep\nstages:\n  a:\n    cmd: ${nest}\n`
                : `${seed}\nextra: ${nest}\n`;
      return { mutator: 'deep-nest', files: { 'pipeline.yaml': text } };
    },
  },
  huge: {
    weight: 2,
    make: (rng, seed) => {
      const big = hugeString(rng);
      const where = rng.int(0, 6);
      const text = [
        () => `name: huge\nstages:\n  a:\n    cmd: [echo, ${quote(big)}]\n`,
        () => `name: huge\nstages:\n  ${quote(big)}:\n    cmd: echo\n`,
        () => `name: huge\nparams:\n  ${quote(big)}: 1\nstages:\n  a:\n    cmd: echo\n`,
        () => `name: huge\nstages:\n  a:\n    cmd: echo\n    outs: [${quote(big)}]\n    needs: [${quote(big.slice(1))}]\n`,
        () => `# ${big.replace(/\n/g, ' ')}\n${seed}`,
        () => `name: huge\nstages:\n  a:\n    cmd: ${quote(big)}\n`,
        () => `name: huge\nparams:\n  p: ${quote(big)}\nstages:\n  a:\n    cmd: [echo, "\${params.p}\${params.p}"]\n  b:\n    cmd: echo\n    needs: [${quote(big)}]\n`,
      ][where]!();
      return { mutator: 'huge', files: { 'pipeline.yaml': text } };
    },
  },
  alias: {
    weight: 3,
    make: (rng, seed) => {
      const kind = rng.int(0, 4);
      if (kind === 0) {
        // Billion laughs.
        const levels = rng.int(4, 10);
        const fan = rng.int(4, 10);
        const lines = ['name: lol', `l0: &l0 ${quote('lol')}`];
        for (let i = 1; i < levels; i++) lines.push(`l${i}: &l${i} [${Array.from({ length: fan }, () => `*l${i - 1}`).join(', ')}]`);
        lines.push('stages:', '  a:', `    cmd: [echo, *l${levels - 1}]`, '');
        return { mutator: 'alias', files: { 'pipeline.yaml': lines.join('\n') } };
      }
      if (kind === 1) return { mutator: 'alias', files: { 'pipeline.yaml': `name: a\nx: &x [*x]\nstages: *x\n` } };
      if (kind === 2) return { mutator: 'alias', files: { 'pipeline.yaml': `name: a\nstages: &s\n  a:\n    cmd: echo\n    outs: [out/a]\n  b: *s\n` } };
      if (kind === 3) return { mutator: 'alias', files: { 'pipeline.yaml': `${seed}\nz: ${rng.pick(['*nosuch', '&', '*', '&a &b x', '*a *b'])}\n` } };
      // Anchor every mapping of the seed and alias it from elsewhere.
      const text = seed.replace(/^(\s*)(\w[\w-]*):\s*$/m, '$1$2: &anch').concat(`\nalias_use: *anch\nstages2: [*anch, *anch]\n`);
      return { mutator: 'alias', files: { 'pipeline.yaml': text } };
    },
  },
  merge: {
    weight: 3,
    make: (rng, seed) => {
      const val = rng.pick(['*d', '[*d, *e]', '3', '{}', '[]', 'null', '{cmd: 1}', '*d\n    <<: *e', '[*d, 3]', '{<<: *d}']);
      const text = `name: merge\nbase: &d\n  cmd: [echo, d]\n  outs: [out/d]\nother: &e\n  deps: [x]\nstages:\n  a:\n    <<: ${val}\n    ${rng.pick(['outs: [out/a]', 'cmd: echo a', '<<: *d', ''])}\n`;
      return { mutator: 'merge', files: { 'pipeline.yaml': rng.chance(0.8) ? text : `${seed}\n<<: ${val}\n` } };
    },
  },
  expansion: {
    weight: 3,
    make: (rng) => {
      const n = rng.pick([10, 100, 1000, 5000]);
      const kind = rng.int(0, 3);
      const list = (k: number): string => `[${Array.from({ length: k }, (_, i) => i).join(', ')}]`;
      const text = [
        () => `name: m\nstages:\n  g:\n    matrix: {a: ${list(n)}, b: ${list(n)}, c: ${list(rng.pick([2, 50, 1000]))}}\n    cmd: [echo, "\${item.a}"]\n    outs: ["out/\${item.a}-\${item.b}-\${item.c}"]\n`,
        () => `name: m\nparams:\n  xs: ${list(n * 20)}\nstages:\n  f:\n    foreach: \${params.xs}\n    cmd: [echo, "\${item}"]\n    outs: ["out/\${item}"]\n  g:\n    cmd: echo\n    needs: [f]\n`,
        () => `name: m\nstages:\n  f:\n    foreach: ${list(n)}\n    cmd: [echo]\n    outs: [out/same]\n`,
        () => `name: m\nstages:\n${Array.from({ length: n }, (_, i) => `  s${i}:\n    cmd: echo\n    outs: [out/s${i}]\n    deps: [out/s${(i + 1) % n}]\n`).join('')}`,
      ][kind]!();
      return { mutator: 'expansion', files: { 'pipeline.yaml': text } };
    },
  },
  'params-file': {
    weight: 3,
    make: (rng, seed) => {
      const inner = mutators[rng.pick(['byte', 'token', 'wrong-type', 'interp', 'unicode', 'dup-key', 'alias'])]!.make(rng, 'x:\n  y: 1\nlr: 0.1\nlist: [1, 2]\n__proto__: {polluted: 1}\n');
      const main = `name: pf\nparams:\n  x: {y: 0}\nparams_files: [params.yaml${rng.chance(0.3) ? ', missing.yaml, ../outside.yaml, /dev/null, .' : ''}]\nstages:\n  a:\n    cmd: "echo \${params.x.y}"\n`;
      return { mutator: 'params-file', files: { 'pipeline.yaml': rng.chance(0.8) ? main : seed, 'params.yaml': inner.files['pipeline.yaml']! } };
    },
  },
  override: {
    weight: 8,
    make: (rng, seed) => {
      const paths = [
        'train.lr', 'train.epochs', 'size', 'size.0', 'size.5', 'model.filters.1', 'source', 'nope', 'train.nope', 'train.lr.x', '__proto__', '__proto__.polluted', 'constructor',
        'constructor.prototype', 'toString', 'train.__proto__', 'a..b', '.a', 'a.', '', ' ', 'train .lr', `${'a.'.repeat(5000)}a`, 'x'.repeat(100000), '😀', 'lr\u0000', 'check.min_per_class', 'limit.train',
      ];
      const values = [
        '0.01', 'x', '', '[1,2]', '{a: 1}', '{', '[', '"', "'", 'null', '~', 'true', '1e400', '.nan', '!!binary aGk=', '&a x', '*a', 'a: b', '${params.train.lr}', '$(id)', '; rm -rf /',
        '1,2,3', 'a\\,b', '"a,b"', 'x'.repeat(rng.pick([10, 100000, 1000000])), '[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]', `${'['.repeat(5000)}`, '\u202e', '\ud800', '---\n- a',
      ];
      const n = rng.int(1, 3);
      const overrides = Array.from({ length: n }, () => (rng.chance(0.05) ? rng.pick(['noequals', '=x', '==', ' = ']) : `${rng.pick(paths)}=${rng.pick(values)}`));
      return { mutator: 'override', files: { 'pipeline.yaml': seed }, overrides };
    },
  },
};

const mutatorNames = Object.keys(mutators);
const totalWeight = mutatorNames.reduce((s, n) => s + mutators[n]!.weight, 0);

function pickMutator(rng: Rng): string {
  let r = rng.next() * totalWeight;
  for (const n of mutatorNames) {
    r -= mutators[n]!.weight;
    if (r < 0) return n;
  }
  return mutatorNames[mutatorNames.length - 1]!;
}

/** Case `index` of run `seed` (deterministic: a failure can be regenerated from its index). */
export function makeCase(seed: number, index: number, seeds: readonly string[] = seedTexts()): FuzzCase {
  const rng = makeRng((seed * 1_000_003 + index * 7919) >>> 0);
  const name = pickMutator(rng);
  return mutators[name]!.make(rng, rng.pick(seeds));
}

// ---------------------------------------------------------------------------
// Oracle

/** Problems with one diagnostic's location(s): missing, in a file that was not loaded, or outside the file's text. */
export function locationProblems(d: Diagnostic, texts: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  const check = (loc: SourceLocation | undefined, what: string): void => {
    if (!loc) {
      out.push(`unlocated ${what}: ${d.reason}: ${d.message.slice(0, 200)}`);
      return;
    }
    const text = texts.get(loc.file);
    if (text === undefined) {
      // A file the case did not write (e.g. a params file that does not exist): only offset 0 makes sense.
      if (loc.offset !== 0 || loc.length !== 0) out.push(`${what} in unknown file ${loc.file} at ${loc.offset}+${loc.length}`);
      return;
    }
    if (!Number.isInteger(loc.offset) || !Number.isInteger(loc.length) || loc.offset < 0 || loc.length < 0 || loc.offset + loc.length > text.length) {
      out.push(`${what} out of bounds: ${loc.offset}+${loc.length} in a file of ${text.length} chars: ${d.message.slice(0, 200)}`);
    }
  };
  check(d.location, 'diagnostic');
  for (const r of d.related ?? []) check(r.location, 'related location');
  if (/\n\s+at .+:\d+:\d+/.test(d.message)) out.push(`stack trace in message: ${d.message.slice(0, 200)}`);
  return out;
}

/** Whether a workspace-relative output path written by an accepted pipeline stays inside the workspace. */
function outputEscapes(p: string): boolean {
  return p.includes('\0') || path.posix.isAbsolute(p) || p === '..' || p.startsWith('../') || /^[A-Za-z]:/.test(p) || p.startsWith('\\');
}

let gcFn: (() => void) | undefined;
function gc(): void {
  if (!gcFn) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  }
  gcFn();
}

const MiB = 1024 * 1024;

/** Runs `count` cases with `seed`; never throws for a broken case (it is a problem in the report). */
export async function runFuzzConfig(opts: FuzzOptions): Promise<FuzzReport> {
  const budgetMs = opts.budgetMs ?? 1000;
  const budgetMiB = opts.budgetMiB ?? 64;
  const seeds = seedTexts();
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fuzz-config-')));
  const problems: FuzzProblem[] = [];
  const byMutator: Record<string, MutatorStats> = Object.fromEntries(mutatorNames.map((n) => [n, { cases: 0, accepted: 0, rejected: 0, bad: 0 }]));
  let maxMs = 0;
  let maxWallMs = 0;
  let maxMsMutator = '';
  let maxHeapMiB = 0;
  let maxRssMiB = 0;
  const cliEvery = opts.cliSample && opts.cliSample > 0 ? Math.max(1, Math.floor(opts.count / opts.cliSample)) : 0;
  const cliQueue: { index: number; c: FuzzCase }[] = [];
  let cliPending = false;
  gc();
  const rss0 = process.memoryUsage().rss;
  const ws = path.join(root, 'ws');
  try {
    // Warm up (imports, compiled validators, the registry) so the first case is not charged for them.
    fs.mkdirSync(ws, { recursive: true });
    for (const s of seeds) {
      fs.writeFileSync(path.join(ws, 'pipeline.yaml'), s);
      await loadPipeline(path.join(ws, 'pipeline.yaml'), { graphCacheDir: false });
    }
    for (let index = 0; index < opts.count; index++) {
      const c = makeCase(opts.seed, index, seeds);
      const stats = byMutator[c.mutator]!;
      stats.cases++;
      const found: { kind: string; message: string }[] = [];
      fs.rmSync(ws, { recursive: true, force: true });
      fs.mkdirSync(ws, { recursive: true });
      const texts = new Map<string, string>();
      for (const [rel, content] of Object.entries(c.files)) {
        const abs = path.join(ws, rel);
        fs.writeFileSync(abs, content);
        texts.set(abs, Buffer.isBuffer(content) ? content.toString('utf8') : Buffer.from(content, 'utf8').toString('utf8'));
      }
      // -S arguments go through the CLI's parser first; a parse error is a usage error (exit 2), a clean rejection.
      const overrides: { path: string; value: JsonValue }[] = [];
      let usageError = false;
      for (const raw of c.overrides ?? []) {
        let parsed;
        try {
          parsed = parseOverride(raw);
        } catch (e) {
          found.push({ kind: 'throw', message: `parseOverride(${JSON.stringify(raw.slice(0, 80))}) threw: ${(e as Error).stack ?? String(e)}` });
          break;
        }
        if (!parsed.ok) {
          usageError = true;
          if (/\n\s+at /.test(parsed.error)) found.push({ kind: 'cli-stack', message: parsed.error.slice(0, 300) });
          break;
        }
        overrides.push({ path: parsed.value.path, value: parsed.value.values[0]! });
      }
      if (process.env['FUZZ_TRACE']) process.stderr.write(`case ${index} ${c.mutator}\n`);
      const heap0 = process.memoryUsage().heapUsed;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      let accepted = false;
      if (!usageError && found.length === 0) {
        try {
          const r = await loadPipeline(path.join(ws, 'pipeline.yaml'), { graphCacheDir: false, overrides });
          if (r.ok) {
            accepted = true;
            for (const node of r.value.stages.values()) {
              const outs = node.kind === 'cmd' ? node.outs.map((o) => o.path) : [node.outDir];
              for (const o of outs) if (outputEscapes(o)) found.push({ kind: 'escape-accepted', message: `stage ${node.id} writes '${o}'` });
            }
          } else {
            if (r.error.length === 0) found.push({ kind: 'unlocated', message: 'a failed load with no diagnostics' });
            for (const d of r.error) for (const m of locationProblems(d, texts)) found.push({ kind: m.startsWith('unlocated') ? 'unlocated' : 'bad-location', message: m });
          }
        } catch (e) {
          found.push({ kind: 'throw', message: (e as Error)?.stack ?? String(e) });
        }
      }
      const wallMs = performance.now() - t0;
      const inputMiB = Object.values(c.files).reduce((n, f) => n + Buffer.byteLength(f), 0) / MiB;
      const cpu = process.cpuUsage(cpu0);
      // The budget is on CPU time: wall time on a shared 2-core machine measures the neighbours.
      const ms = (cpu.user + cpu.system) / 1000;
      maxWallMs = Math.max(maxWallMs, wallMs);
      const heapMiB = (process.memoryUsage().heapUsed - heap0) / MiB;
      if (ms > maxMs) {
        maxMs = ms;
        maxMsMutator = c.mutator;
      }
      maxHeapMiB = Math.max(maxHeapMiB, heapMiB);
      // The time budget, like the heap budget, grows linearly with the input (yaml parses a flow list of
      // 100,000 numbers, 0.7 MB, in ~1 s of CPU here): what it catches is super-linear work, such as
      // the quadratic paths this fuzzer found, which took minutes on 1 MB inputs.
      const caseBudgetMs = budgetMs * (1 + 2 * inputMiB);
      if (ms > caseBudgetMs) found.push({ kind: 'slow', message: `load took ${ms.toFixed(0)} ms CPU, ${wallMs.toFixed(0)} ms wall (budget ${caseBudgetMs.toFixed(0)} ms CPU for ${inputMiB.toFixed(2)} MiB of input)` });
      // The heap budget grows linearly with the input: yaml's parser allocates (transiently) up to
      // ~100 bytes per input byte (a flow list of 100,000 small numbers, 0.7 MB: ~117 MiB); a
      // blow-up is growth beyond that line.
      const caseBudgetMiB = budgetMiB + 128 * inputMiB;
      if (heapMiB > caseBudgetMiB) {
        // Garbage from earlier cases can be counted here: confirm after a full GC.
        gc();
        const h0 = process.memoryUsage().heapUsed;
        try {
          await loadPipeline(path.join(ws, 'pipeline.yaml'), { graphCacheDir: false, overrides });
        } catch {
          /* reported above */
        }
        const again = (process.memoryUsage().heapUsed - h0) / MiB;
        if (again > caseBudgetMiB) found.push({ kind: 'memory', message: `heap grew ${again.toFixed(0)} MiB (budget ${caseBudgetMiB.toFixed(0)} MiB for ${inputMiB.toFixed(1)} MiB of input)` });
      }
      if (index % 50 === 0) maxRssMiB = Math.max(maxRssMiB, (process.memoryUsage().rss - rss0) / MiB);
      // Linux refuses a single argument over 128 KiB (E2BIG): such -S cases cannot reach a process; the next case goes instead.
      const argvFits = (c.overrides ?? []).every((o) => Buffer.byteLength(o) < 100_000);
      if (cliEvery > 0 && index % cliEvery === 0 && cliQueue.length < opts.cliSample!) cliPending = true;
      if (cliPending && argvFits) {
        cliQueue.push({ index, c });
        cliPending = false;
      }
      if (found.length === 0) {
        if (accepted) stats.accepted++;
        else stats.rejected++;
      } else {
        stats.bad++;
        for (const f of found) problems.push({ mutator: c.mutator, index, kind: f.kind, message: f.message, sample: sampleOf(c) });
      }
    }
    maxRssMiB = Math.max(maxRssMiB, (process.memoryUsage().rss - rss0) / MiB);
    // CLI sample: the real process, one at a time.
    let cliMaxMs = 0;
    for (const { index, c } of cliQueue) {
      const dir = path.join(root, `cli-${index}`, 'ws');
      fs.mkdirSync(dir, { recursive: true });
      for (const [rel, content] of Object.entries(c.files)) fs.writeFileSync(path.join(dir, rel), content);
      // status and dag take no -S: cases with overrides go through `run --dry`, which loads with them and runs nothing.
      const cmd = c.overrides ? 'run' : index % 2 === 0 ? 'status' : 'dag';
      const cacheArgs = ['--cache', path.join(root, `cli-${index}`, 'cache')];
      const args = [
        path.join(repoRoot, 'bin', 'pipeline.js'),
        cmd,
        '-f',
        path.join(dir, 'pipeline.yaml'),
        ...(cmd === 'status' ? cacheArgs : cmd === 'run' ? ['--dry', ...cacheArgs, ...c.overrides!.flatMap((o) => ['-S', o])] : []),
      ];
      const t0 = performance.now();
      let r = await runProcess(process.execPath, args, path.dirname(dir), 30_000);
      // dist/ is shared with engineers rebuilding it: a module caught half-written is not the CLI's fault. Retry once.
      if (/does not provide an export named|Cannot find module|ERR_MODULE_NOT_FOUND/.test(r.stderr)) {
        await new Promise((res) => setTimeout(res, 3000));
        r = await runProcess(process.execPath, args, path.dirname(dir), 30_000);
      }
      cliMaxMs = Math.max(cliMaxMs, performance.now() - t0);
      const found: { kind: string; message: string }[] = [];
      if (r.code === null || ![0, 2, 3].includes(r.code)) found.push({ kind: 'cli-exit', message: `${cmd} exited ${r.code ?? r.signal}: ${r.stderr.slice(0, 500)}` });
      if (/\n\s+at .+:\d+:\d+\)?\s*$/m.test(r.stderr) || /internal error/.test(r.stderr)) found.push({ kind: 'cli-stack', message: r.stderr.slice(0, 800) });
      const stats = byMutator[c.mutator]!;
      if (found.length > 0) {
        stats.bad++;
        for (const f of found) problems.push({ mutator: c.mutator, index, kind: f.kind, message: f.message, sample: sampleOf(c) });
      }
      fs.rmSync(path.join(root, `cli-${index}`), { recursive: true, force: true });
    }
    const badCases = new Set(problems.map((p) => p.index)).size;
    return { count: opts.count, seed: opts.seed, passed: opts.count - badCases, problems, byMutator, maxMs, maxWallMs, maxMsMutator, maxHeapMiB, maxRssMiB, cliCases: cliQueue.length, cliMaxMs };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

function sampleOf(c: FuzzCase): string {
  const main = c.files['pipeline.yaml'];
  const text = main === undefined ? '' : Buffer.isBuffer(main) ? main.toString('utf8') : main;
  return `${JSON.stringify(text.slice(0, 300))}${c.overrides ? ` -S ${JSON.stringify(c.overrides.map((o) => o.slice(0, 80)))}` : ''}`;
}

/** A child process's exit and output (stdout is drained and dropped). */
function runProcess(cmd: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', PIPELINE_DEBUG: '' } });
    let stderr = '';
    child.stdout.resume();
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 1_000_000) stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stderr: `${stderr}spawn failed: ${e.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}
