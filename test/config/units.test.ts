/**
 * Unit tests of the pure pieces: -S parsing, template parsing, cmd
 * tokenising, did-you-mean, and the diagnostic printer (colour, tabs,
 * related notes, missing source).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOverride } from '../../src/config/overrides.js';
import { parseTemplate } from '../../src/interpolate.js';
import { tokenizeCommand } from '../../src/config/tokenize.js';
import { didYouMean, editDistance } from '../../src/did-you-mean.js';
import { formatDiagnostic, lineColumn } from '../../src/diagnostic-printer.js';
import { deepMerge, getParam } from '../../src/config/params.js';
import { globToRegExp, depTouchesOutput, normalizeRel } from '../../src/analyze/paths.js';

test('parseOverride: YAML scalars, sweeps, quoting, escapes, brackets', () => {
  assert.deepEqual(parseOverride('train.lr=0.001'), { ok: true, value: { path: 'train.lr', values: [0.001] } });
  assert.deepEqual(parseOverride('train.lr=0.001,0.01'), { ok: true, value: { path: 'train.lr', values: [0.001, 0.01] } });
  assert.deepEqual(parseOverride('a=true,null,x,"1"'), { ok: true, value: { path: 'a', values: [true, null, 'x', '1'] } });
  assert.deepEqual(parseOverride('msg="a,b",\'c,d\',e\\,f'), { ok: true, value: { path: 'msg', values: ['a,b', 'c,d', 'e,f'] } });
  assert.deepEqual(parseOverride('size=[32,32],[64,64]'), { ok: true, value: { path: 'size', values: [[32, 32], [64, 64]] } });
  assert.deepEqual(parseOverride('o={a: 1, b: 2}'), { ok: true, value: { path: 'o', values: [{ a: 1, b: 2 }] } });
  assert.deepEqual(parseOverride('s=a: b'), { ok: true, value: { path: 's', values: ['a: b'] } });
  assert.deepEqual(parseOverride('name='), { ok: true, value: { path: 'name', values: [''] } });
  assert.deepEqual(parseOverride('x.y=a=b'), { ok: true, value: { path: 'x.y', values: ['a=b'] } });
  assert.deepEqual(parseOverride('train.lr'), { ok: false, error: '-S train.lr: expected path=value, e.g. -S train.lr=0.01' });
  assert.deepEqual(parseOverride('=3'), { ok: false, error: "-S =3: missing param path before '='" });
  assert.deepEqual(parseOverride('a..b=3'), { ok: false, error: "-S a..b=3: invalid param path 'a..b' (dotted keys, e.g. train.lr)" });
  assert.deepEqual(parseOverride('a="x'), { ok: false, error: '-S a="x: unterminated " quote' });
});

test('parseTemplate: refs, text, escapes, errors with offsets', () => {
  assert.deepEqual(parseTemplate('plain'), { ok: true, value: [{ kind: 'text', text: 'plain' }] });
  assert.deepEqual(parseTemplate('${params.a.b}'), { ok: true, value: [{ kind: 'ref', ref: { kind: 'params', path: 'a.b' }, raw: '${params.a.b}', offset: 0, length: 13 }] });
  assert.deepEqual(parseTemplate('x=${ item.k }!'), {
    ok: true,
    value: [
      { kind: 'text', text: 'x=' },
      { kind: 'ref', ref: { kind: 'item', path: ['k'] }, raw: '${ item.k }', offset: 2, length: 11 },
      { kind: 'text', text: '!' },
    ],
  });
  assert.deepEqual(parseTemplate('${stages.sweep@lr=0.1,bs=16.out}'), {
    ok: true,
    value: [{ kind: 'ref', ref: { kind: 'stages', stage: 'sweep@lr=0.1,bs=16', field: 'out' }, raw: '${stages.sweep@lr=0.1,bs=16.out}', offset: 0, length: 32 }],
  });
  assert.deepEqual(parseTemplate('cost $${x}'), { ok: true, value: [{ kind: 'text', text: 'cost ${x}' }] });
  assert.deepEqual(parseTemplate('a ${params.x ${item}'), { ok: false, error: { message: "unterminated '${': missing '}'", offset: 2, length: 2 } });
  assert.deepEqual(parseTemplate('${params.}'), { ok: false, error: { message: "'params' needs a path, e.g. ${params.train.lr} in '${params.}'", offset: 0, length: 10 } });
  assert.deepEqual(parseTemplate('${params.a..b}'), { ok: false, error: { message: "empty path segment in '${params.a..b}'", offset: 0, length: 14 } });
  assert.deepEqual(parseTemplate('${env.HOME}'), { ok: false, error: { message: "unknown namespace 'env' (expected params, item or stages) in '${env.HOME}'", offset: 0, length: 11 } });
});

test('tokenizeCommand: whitespace, quotes, escapes, unterminated quotes', () => {
  const t = (s: string) => {
    const r = tokenizeCommand(s);
    return r.ok ? r.value.map((x) => x.text) : r.error;
  };
  assert.deepEqual(t('  a   b\tc '), ['a', 'b', 'c']);
  assert.deepEqual(t(`echo 'a  b' "c \\"d\\" \\\\" e\\ f x'y'"z"`), ['echo', 'a  b', 'c "d" \\', 'e f', 'xyz']);
  assert.deepEqual(t(`say "it's"`), ['say', "it's"]);
  assert.deepEqual(t(`a ''`), ['a', '']);
  assert.deepEqual(t(`a "b`), { message: 'unterminated double quote in cmd', offset: 2, length: 1 });
  const r = tokenizeCommand(`x '>' >`);
  assert.ok(r.ok);
  assert.deepEqual(r.value.map((x) => [x.text, x.quoted, x.offset]), [['x', false, 0], ['>', true, 2], ['>', false, 6]]);
});

test('did you mean: Damerau-Levenshtein with a length-scaled limit', () => {
  assert.equal(editDistance('ab', 'ba'), 1);
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(didYouMean('dep', ['cmd', 'deps', 'outs']), 'deps');
  assert.equal(didYouMean('ouput', ['path', 'output', 'stage']), 'output');
  assert.equal(didYouMean('Uses', ['uses', 'with']), 'uses');
  assert.equal(didYouMean('paramz', ['params', 'params_files']), 'params');
  assert.equal(didYouMean('x', ['env', 'out']), undefined);
  assert.equal(didYouMean('zzzzzz', ['uses', 'with']), undefined);
});

test('params: lookup with suggestions, deep merge replaces lists', () => {
  const tree = { train: { lr: 1, layers: [{ units: 3 }] } };
  assert.deepEqual(getParam(tree, 'train.layers.0.units'), { found: true, value: 3 });
  assert.deepEqual(getParam(tree, 'train.lrr'), { found: false, existing: 'train', missing: 'lrr', suggestion: 'train.lr' });
  assert.deepEqual(getParam(tree, 'train.lr.x'), { found: false, existing: 'train.lr', missing: 'x', suggestion: undefined });
  assert.deepEqual(deepMerge({ a: { b: 1, c: [1, 2] } }, { a: { c: [3] }, d: null }), { a: { b: 1, c: [3] }, d: null });
});

test('paths: normalisation, globs, dependency-touches-output', () => {
  assert.equal(normalizeRel('./a//b/'), 'a/b');
  assert.equal(normalizeRel('./'), '.');
  assert.ok(globToRegExp('data/**/*.csv').test('data/x.csv'));
  assert.ok(globToRegExp('data/**/*.csv').test('data/a/b/x.csv'));
  assert.ok(!globToRegExp('data/*.csv').test('data/a/x.csv'));
  assert.ok(globToRegExp('img.{png,jpg}').test('img.jpg'));
  assert.ok(depTouchesOutput('data/prepared/a.txt', 'data/prepared'));
  assert.ok(depTouchesOutput('data', 'data/prepared'));
  assert.ok(!depTouchesOutput('data2', 'data'));
  assert.ok(depTouchesOutput('data/*/x.csv', 'data/prepared'));
  assert.ok(!depTouchesOutput('*.md', 'data/prepared'));
  assert.ok(depTouchesOutput('*.md', 'README.md'));
});

const src = 'name: x\nstages:\n\ta: {cmd: echo, dep: [x]}\n';
const file = '/w/pipeline.yaml';

test('printer: line:col, tab-preserving squiggle, notes, relative names, colour', () => {
  assert.deepEqual(lineColumn(src, src.indexOf('dep')), { line: 3, column: 17, lineText: '\ta: {cmd: echo, dep: [x]}' });
  const d = {
    severity: 'error' as const,
    reason: 'unknown-key' as const,
    message: "unknown key 'dep'",
    location: { file, offset: src.indexOf('dep'), length: 3 },
    related: [{ message: 'first here', location: { file: '/elsewhere/p.yaml', offset: 0, length: 4 } }],
  };
  const readSource = (f: string) => (f === file ? src : f === '/elsewhere/p.yaml' ? 'name: y' : undefined);
  assert.equal(
    formatDiagnostic(d, { color: false, readSource, relativeTo: '/w' }),
    [
      "pipeline.yaml:3:17: error: unknown key 'dep'",
      '  3 | \ta: {cmd: echo, dep: [x]}',
      '    | \t               ~~~',
      '/elsewhere/p.yaml:1:1: note: first here',
      '  1 | name: y',
      '    | ~~~~',
    ].join('\n'),
  );
  assert.equal(formatDiagnostic(d, { color: false }), "/w/pipeline.yaml: error: unknown key 'dep'\n/elsewhere/p.yaml: note: first here");
  const colored = formatDiagnostic({ ...d, related: [] }, { color: true, readSource });
  assert.equal(
    colored,
    [
      "\x1b[1m/w/pipeline.yaml:3:17\x1b[0m: \x1b[1m\x1b[31merror\x1b[0m: \x1b[1munknown key 'dep'\x1b[0m",
      '  \x1b[2m3 |\x1b[0m \ta: {cmd: echo, dep: [x]}',
      '  \x1b[2m  |\x1b[0m \t               \x1b[31m~~~\x1b[0m',
    ].join('\n'),
  );
  assert.ok(!formatDiagnostic(d, { color: false, readSource }).includes('\x1b'), 'no escape codes without colour');
});
