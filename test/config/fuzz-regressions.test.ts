/**
 * Regressions for bugs the pipeline-file fuzzer found
 * (test/reliability/fuzz-config-scenario.ts): each was a throw, an
 * unlocated diagnostic, a quadratic or exponential blow-up, or a lost key.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { configRig } from './rig.js';
import { globToRegExp, normalizeRel } from '../../src/analyze/paths.js';

const rig = configRig();
after(() => rig.dispose());

async function diagnostics(yaml: string, opts: Parameters<typeof rig.load>[1] = {}) {
  const r = await rig.load(yaml, opts);
  assert.ok(!r.ok, 'expected diagnostics');
  for (const d of r.error) {
    assert.ok(d.location, `unlocated: ${d.message}`);
    assert.ok(d.location.offset >= 0 && d.location.offset + d.location.length <= yaml.length, `out of bounds: ${JSON.stringify(d.location)}`);
  }
  return r.error;
}

test('billion laughs: a located YAML diagnostic, not a thrown ReferenceError', async () => {
  const lines = ['name: lol', 'l0: &l0 lol'];
  for (let i = 1; i < 9; i++) lines.push(`l${i}: &l${i} [${Array(9).fill(`*l${i - 1}`).join(', ')}]`);
  lines.push('stages: {a: {cmd: [echo, *l8]}}', '');
  const yaml = lines.join('\n');
  const ds = await diagnostics(yaml);
  assert.equal(ds.length, 1);
  assert.equal(ds[0].reason, 'yaml-syntax');
  assert.match(ds[0].message, /aliases expand to too many nodes/);
  assert.equal(yaml.slice(ds[0].location!.offset, ds[0].location!.offset + ds[0].location!.length), '*l0');
});

test('an alias to an anchor defined nowhere (or later) is located at the alias', async () => {
  const yaml = 'name: x\nstages: {a: {cmd: [echo, *nosuch]}}\n';
  const ds = await diagnostics(yaml);
  assert.equal(ds[0].message, 'invalid YAML: alias *nosuch refers to no anchor defined before it');
  assert.equal(yaml.slice(ds[0].location!.offset, ds[0].location!.offset + ds[0].location!.length), '*nosuch');
});

test('a list or mapping as a mapping key is a located diagnostic (it used to become the key "a,b" with a warning on stderr)', async () => {
  const yaml = 'name: x\nstages:\n  ? [a, b]\n  : {cmd: echo}\n';
  const ds = await diagnostics(yaml);
  assert.match(ds[0].message, /a mapping key must be plain text/);
  assert.equal(yaml.slice(ds[0].location!.offset, ds[0].location!.offset + ds[0].location!.length), '[a, b]');
});

test('a matrix of a billion combinations is refused at matrix:, not expanded until memory runs out', { timeout: 60_000 }, async () => {
  const list = `[${Array.from({ length: 1000 }, (_, i) => i).join(', ')}]`;
  const yaml = `name: m\nstages:\n  g:\n    matrix: {a: ${list}, b: ${list}, c: ${list}}\n    cmd: [echo, "\${item.a}"]\n`;
  const ds = await diagnostics(yaml);
  assert.equal(ds.length, 1);
  assert.equal(ds[0].message, "stage 'g' expands to 1,000,000,000 stages by matrix:; a pipeline may have at most 10,000");
  assert.equal(yaml.slice(ds[0].location!.offset, ds[0].location!.offset + 6), 'matrix');
  // Under the bound still works.
  const ok = await rig.graph(`name: m\nstages:\n  g:\n    foreach: [${Array.from({ length: 100 }, (_, i) => i).join(', ')}]\n    cmd: [echo, "\${item}"]\n`);
  assert.equal(ok.stages.size, 100);
});

test('n stages writing one output give n-1 diagnostics, not n² (5,000 foreach items used to hang)', { timeout: 60_000 }, async () => {
  const yaml = `name: m\nstages:\n  f:\n    foreach: [${Array.from({ length: 500 }, (_, i) => i).join(', ')}]\n    cmd: [echo]\n    outs: [out/same]\n`;
  const ds = await diagnostics(yaml);
  assert.equal(ds.length, 499);
  assert.ok(ds.every((d) => d.reason === 'duplicate-output' && /already declares/.test(d.message)));
  // Nested outputs of three stages: each inner one reported once, against its nearest enclosing output.
  const nested = await diagnostics('name: n\nstages:\n  a: {cmd: echo, outs: [out]}\n  b: {cmd: echo, outs: [out/x]}\n  c: {cmd: echo, outs: [out/x/y]}\n');
  assert.deepEqual(
    nested.map((d) => d.message),
    ["output 'out/x' of stage 'b' overlaps output 'out' of stage 'a' ('out/x' is inside 'out')", "output 'out/x/y' of stage 'c' overlaps output 'out/x' of stage 'b' ('out/x/y' is inside 'out/x')"],
  );
});

test("a 1 MB '../../…' output path is refused promptly, with the path cut in the message", { timeout: 60_000 }, async () => {
  const big = '../'.repeat(350_000);
  const ds = await diagnostics(`name: h\nstages:\n  a:\n    cmd: echo\n    outs: [${JSON.stringify(big)}]\n`);
  assert.equal(ds.length, 1);
  assert.match(ds[0].message, /^stages\.a\.outs\[0\] must be a path inside the workspace, got '(\.\.\/){66}\.\.… \(1,050,000 characters\)'$/);
});

test('normalizeRel: linear rewrite agrees with path.posix.normalize on the tricky cases', () => {
  const cases: [string, string][] = [
    ['', '.'], ['.', '.'], ['./a//b/', 'a/b'], ['/', '/'], ['//a', '/a'], ['/a/../..', '/'], ['..', '..'], ['a/../..', '..'], ['foo/../../x', '../x'],
    ['a\\b\\..\\c', 'a/c'], ['\\\\srv\\share', '/srv/share'], ['...', '...'], ['./..', '..'], ['a/b/../../../..', '../..'], ['x/', 'x'],
  ];
  for (const [input, want] of cases) assert.equal(normalizeRel(input), want, JSON.stringify(input));
});

test('-S naming a param that does not exist is located in the file (the deepest part that exists)', async () => {
  const yaml = 'name: s\nparams:\n  train:\n    lr: 0.1\nstages: {a: {cmd: "echo ${params.train.lr}"}}\n';
  const ds = await diagnostics(yaml, { overrides: [{ path: 'train.lrr', value: 1 }] });
  assert.equal(ds.length, 1);
  assert.match(ds[0].message, /^-S train\.lrr: no such param \(params\.train has no key 'lrr'\); did you mean 'train\.lr'\?$/);
  assert.equal(yaml.slice(ds[0].location!.offset, ds[0].location!.offset + 5), 'train');
  const proto = await diagnostics(yaml, { overrides: [{ path: '__proto__.polluted', value: 1 }] });
  assert.match(proto[0].message, /no key '__proto__'/);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
});

test('a params-file key named __proto__ stays a param (it used to replace the merged object\'s prototype)', async () => {
  rig.write({ 'p.yaml': '__proto__:\n  polluted: yes\nx: 1\n' });
  const g = await rig.graph('name: p\nparams: {x: 0}\nparams_files: [p.yaml]\nstages: {a: {cmd: "echo ${params.__proto__.polluted} ${params.x}"}}\n');
  const a = g.stages.get('a' as never)!;
  assert.ok(a.kind === 'cmd');
  assert.deepEqual(a.argv, ['echo', 'yes', '1']);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  assert.equal(Object.getPrototypeOf(g.params), Object.prototype);
});

test("a NUL byte in cache: or in a built-in's file parameter is a located diagnostic (file system calls would throw on it at run time)", async () => {
  let ds = await diagnostics('name: c\ncache: "ca\\0che"\nstages: {a: {cmd: echo}}\n');
  assert.equal(ds[0].message, 'cache: contains a NUL character');
  ds = await diagnostics('name: c\nstages:\n  a:\n    uses: ingest\n    with: {source: "da\\0ta"}\n');
  assert.match(ds[0].message, /^stages\.a\.with names a file path that contains a NUL character/);
});

test('a dep with an unclosed { or [ (e.g. a literal $${) is analysed, not a thrown "Invalid regular expression"', async () => {
  for (const dep of ['$${params.x', 'data/{a', 'data/[z-a]', 'x{a,{b}', 'data/x[']) {
    const g = await rig.graph(`name: g\nstages:\n  a:\n    cmd: echo\n    outs: [data/out]\n  b:\n    cmd: echo\n    deps: [${JSON.stringify(dep)}]\n`);
    assert.ok(g.stages.has('b' as never), dep);
  }
  assert.equal(globToRegExp('data/{a').test('data/{a'), true, 'an unclosed brace is literal');
  assert.equal(globToRegExp('[z-a]').test('[z-a]'), true, 'a class JavaScript rejects is literal');
  assert.equal(globToRegExp('{a,b}/*.csv').test('b/x.csv'), true);
  assert.equal(globToRegExp('**/a,b').test('x/a,b'), true, 'a comma outside braces is literal');
});
