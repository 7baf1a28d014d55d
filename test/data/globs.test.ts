/**
 * ingest's include/exclude globs (stages/lib/globs.ts): pattern semantics on
 * hand-picked paths, and `pathFilter` (one alternation per list, no test for a
 * match-all include) agreeing with testing each pattern on its own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { globToRegExp, pathFilter } from '../../stages/lib/globs.js';
import { INGEST_DEFAULTS } from '../../stages/ingest.js';

const PATHS = [
  'a.png',
  '.hidden.png',
  'cat/a.png',
  'cat/.a.png',
  'cat/.cache/a.png',
  'cat/sub/.cache/x/a.png',
  'cat/sub/deeper/a.jpg',
  'cat/Thumbs.db',
  'cat/sub/desktop.ini',
  'cat/Thumbs.db.png',
  'cat/new\nline.png',
  'cat/new\nline/.x',
  'cat/new\nline/x/.y/z',
  'dog/skip/a.png',
  'dogskip/a.png',
  'a/b',
  'a/x/y/b',
  'ab',
  'img.jpg',
  'img.jpeg',
];

test('globs: ** spans zero or more whole segments (names with newlines included), * and ? stay within one', () => {
  const cases: [string, string, boolean][] = [
    ['**/.*', '.hidden.png', true],
    ['**/.*', 'cat/.a.png', true],
    ['**/.*', 'cat/new\nline/.x', true],
    ['**/.*', 'cat/a.png', false],
    ['**/.*/**', 'cat/.cache/a.png', true],
    ['**/.*/**', 'cat/new\nline/x/.y/z', true],
    ['**/.*/**', 'cat/.a.png', false],
    ['**/Thumbs.db', 'cat/Thumbs.db', true],
    ['**/Thumbs.db', 'Thumbs.db', true],
    ['**/Thumbs.db', 'cat/Thumbs.db.png', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'ab', false],
    ['*.png', 'cat/a.png', false],
    ['*/*.png', 'cat/a.png', true],
    ['cat/?.png', 'cat/a.png', true],
    ['img.{jpg,jpeg}', 'img.jpeg', true],
    ['[!a]*', 'ab', false],
    ['**', 'cat/sub/deeper/a.jpg', true],
  ];
  for (const [glob, rel, want] of cases) assert.equal(globToRegExp(glob).test(rel), want, `${glob} on ${JSON.stringify(rel)}`);
});

test('globs: pathFilter gives what testing each include and exclude pattern on its own gives', () => {
  const lists: [string[], string[]][] = [
    [[...INGEST_DEFAULTS.include], [...INGEST_DEFAULTS.exclude]],
    [['**/*.png'], ['dog/skip/**']],
    [['cat/**', 'a/**/b'], ['**/.*', '**/*.jpg']],
    [['**'], []],
    [[], ['**/Thumbs.db']],
    [['*.{png,jpg}', '**/a.*'], ['cat/sub/**', '**/new\nline*']],
  ];
  for (const [include, exclude] of lists) {
    const f = pathFilter(include, exclude);
    const inc = include.map(globToRegExp);
    const exc = exclude.map(globToRegExp);
    for (const rel of PATHS) {
      const want = (inc.length === 0 || inc.some((r) => r.test(rel))) && !exc.some((r) => r.test(rel));
      assert.equal(f.accepts(rel), want, `include ${JSON.stringify(include)} exclude ${JSON.stringify(exclude)} on ${JSON.stringify(rel)}`);
    }
  }
  // The defaults: dot files and folders, Thumbs.db and desktop.ini are out; everything else is in.
  const defaults = pathFilter(INGEST_DEFAULTS.include, INGEST_DEFAULTS.exclude);
  assert.deepEqual(
    PATHS.filter((p) => !defaults.accepts(p)),
    ['.hidden.png', 'cat/.a.png', 'cat/.cache/a.png', 'cat/sub/.cache/x/a.png', 'cat/Thumbs.db', 'cat/sub/desktop.ini', 'cat/new\nline/.x', 'cat/new\nline/x/.y/z'],
  );
});
