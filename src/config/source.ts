/**
 * A parsed YAML file that remembers where everything came from: the text, the
 * `yaml` Document and helpers turning a JSON path into a `SourceLocation`
 * (value node, or key node for "this key is wrong"). Does no file I/O and no
 * validation.
 */
import { parseDocument, isMap, isSeq, isPair, isScalar, isNode, visit, LineCounter, type Alias, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import type { Diagnostic, SourceLocation } from '../diagnostic.js';
import type { JsonValue } from '../pipeline.js';

/** A path into a JSON/YAML tree: map keys and sequence indices. */
export type TreePath = readonly (string | number)[];

/** A YAML file parsed with positions. */
export interface YamlSource {
  /** Absolute path. */
  readonly file: string;
  readonly text: string;
  readonly doc: Document.Parsed;
  /** Line starts of `text` (yaml's LineCounter), for callers that need line/column of an offset. */
  readonly lineCounter: LineCounter;
  /** The document as plain JSON (undefined for an empty document). */
  readonly value: JsonValue | undefined;
}

/** Parses `text`; YAML syntax errors (and warnings) come back as located diagnostics. */
export function parseYamlSource(file: string, text: string): { source: YamlSource; diagnostics: Diagnostic[] } {
  const lineCounter = new LineCounter();
  // logLevel error: yaml's warnings would go to process.emitWarning (stderr noise); the ones that matter are diagnostics here.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true, merge: true, logLevel: 'error' });
  const diagnostics: Diagnostic[] = doc.errors.map((e) => {
    const [start, end] = e.pos;
    const length = Math.max(1, Math.min(end, lineEnd(text, start)) - start);
    const where = { file, offset: Math.min(start, Math.max(0, text.length - 1)), length };
    const message = firstLine(e.message);
    // Unclosed brackets and quotes are noticed lines later: point at the opener, note where YAML gave up.
    const kind = /end with a \]/.test(message) ? '[' : /end with a \}/.test(message) ? '{' : /Missing closing .?quote/.test(message) ? 'quote' : undefined;
    const opener = kind ? unclosedOpener(text, start, kind) : undefined;
    if (opener) {
      const what = opener.char === '[' || opener.char === '{' ? `'${opener.char}' is never closed` : `string opened with ${opener.char} is never closed`;
      return {
        severity: 'error',
        reason: 'yaml-syntax',
        message: `invalid YAML: ${what}`,
        location: { file, offset: opener.offset, length: 1 },
        related: [{ message: `YAML gave up here: ${message}`, location: where }],
      } satisfies Diagnostic;
    }
    return { severity: 'error', reason: 'yaml-syntax', message: `invalid YAML: ${message}`, location: where } satisfies Diagnostic;
  });
  if (diagnostics.length === 0) {
    // `? [a, b]: v` would become the key "a,b" in JSON: say so instead.
    visit(doc, {
      Pair(_, pair) {
        if (!isMap(pair.key) && !isSeq(pair.key)) return undefined;
        const [start, end] = pair.key.range ?? [0, 0];
        diagnostics.push({ severity: 'error', reason: 'yaml-syntax', message: 'invalid YAML here: a mapping key must be plain text, not a list or mapping', location: { file, offset: start, length: Math.max(1, Math.min(end, lineEnd(text, start)) - start) } });
        return visit.BREAK;
      },
    });
  }
  let value: JsonValue | undefined;
  if (diagnostics.length === 0) {
    try {
      value = (doc.toJS({ maxAliasCount: 1000 }) ?? undefined) as JsonValue | undefined;
    } catch (e) {
      // yaml throws (not reports) for an alias to an anchor defined later or nowhere, and for an
      // alias expansion past maxAliasCount (the "billion laughs" attack): both are bad input.
      diagnostics.push(aliasDiagnostic(file, text, doc, e));
    }
  }
  return { source: { file, text, doc, lineCounter, value }, diagnostics };
}

/** The diagnostic for an exception from `toJS`, located at the alias responsible (or the document start). */
function aliasDiagnostic(file: string, text: string, doc: Document.Parsed, e: unknown): Diagnostic {
  const msg = e instanceof Error ? e.message : String(e);
  let first: Alias | undefined;
  let unresolved: Alias | undefined;
  visit(doc, {
    Alias(_, node) {
      first ??= node;
      if (!unresolved && node.resolve(doc) === undefined) unresolved = node;
      return unresolved ? visit.BREAK : undefined;
    },
  });
  const at = (/excessive alias/i.test(msg) ? first : unresolved) ?? unresolved ?? first;
  const [start, end] = at?.range ?? [0, Math.max(0, lineEnd(text, 0))];
  const location = { file, offset: Math.min(start, text.length), length: Math.max(0, Math.min(end, text.length) - Math.min(start, text.length)) };
  const message = /excessive alias/i.test(msg)
    ? 'invalid YAML: aliases expand to too many nodes (more than 1000 alias uses; a "billion laughs" document?)'
    : at && unresolved === at
      ? `invalid YAML: alias *${at.source} refers to no anchor defined before it`
      : `invalid YAML: ${firstLine(msg)}`;
  return { severity: 'error', reason: 'yaml-syntax', message, location };
}

/**
 * The last bracket or quote still open at `end`, scanning `text` the way YAML
 * flow syntax nests (quotes, `#` comments, `[`/`{` pairs). A heuristic for
 * messages only; undefined when everything is balanced.
 */
function unclosedOpener(text: string, end: number, kind: '[' | '{' | 'quote'): { char: string; offset: number } | undefined {
  const stack: { char: string; offset: number }[] = [];
  let quote: { char: string; offset: number } | undefined;
  for (let i = 0; i < end && i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (quote.char === '"' && c === '\\') i++;
      else if (c === quote.char) {
        if (c === "'" && text[i + 1] === "'") i++;
        else quote = undefined;
      }
      continue;
    }
    if (c === '#' && (i === 0 || /\s/.test(text[i - 1]))) {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl;
    } else if ((c === '"' || c === "'") && (i === 0 || /[\s:,[{]/.test(text[i - 1]))) quote = { char: c, offset: i };
    else if (c === '[' || c === '{') stack.push({ char: c, offset: i });
    else if ((c === ']' || c === '}') && stack.length > 0) stack.pop();
  }
  if (kind === 'quote') return quote;
  return stack.filter((o) => o.char === kind).at(-1);
}

function firstLine(s: string): string {
  const nl = s.indexOf('\n');
  const line = nl < 0 ? s : s.slice(0, nl);
  return line.replace(/ at line \d+, column \d+:?$/, '').trim();
}

function lineEnd(text: string, offset: number): number {
  const nl = text.indexOf('\n', offset);
  return nl < 0 ? text.length : nl;
}

/** The node at `path` and, when the last step is a map key, that key's node. */
export function findNode(source: YamlSource, path: TreePath): { node?: Node; key?: Node } {
  let cur: unknown = source.doc.contents;
  let key: Node | undefined;
  for (const seg of path) {
    key = undefined;
    if (isMap(cur)) {
      const pair = pairIndex(cur).get(String(seg));
      if (!pair) return {};
      key = isNode(pair.key) ? pair.key : undefined;
      cur = pair.value;
    } else if (isSeq(cur) && typeof seg === 'number') {
      cur = cur.items[seg];
    } else {
      return {};
    }
  }
  return { node: isNode(cur) ? cur : undefined, key };
}

/**
 * Each mapping's pairs by key (the first of duplicates), built on first use:
 * a linear `find` per lookup made locating every stage of an n-stage
 * pipeline O(n²) (5,000 stages: seconds).
 */
const pairIndexes = new WeakMap<object, Map<string, Pair>>();

function pairIndex(map: YAMLMap): Map<string, Pair> {
  let index = pairIndexes.get(map);
  if (index && index.size <= map.items.length) return index;
  index = new Map();
  for (const p of map.items) {
    if (!isPair(p)) continue;
    const k = keyString(p.key);
    if (k !== undefined && !index.has(k)) index.set(k, p);
  }
  pairIndexes.set(map, index);
  return index;
}

function keyString(k: unknown): string | undefined {
  if (isScalar(k)) return String(k.value);
  if (typeof k === 'string') return k;
  return undefined;
}

/** Location of a node's value, trimmed to its first line (block collections span many). */
export function nodeLocation(source: YamlSource, node: Node): SourceLocation {
  const [start, valueEnd] = node.range ?? [0, 0];
  const end = Math.min(valueEnd, lineEnd(source.text, start));
  return { file: source.file, offset: start, length: Math.max(1, end - start) };
}

/**
 * Where to point for the value at `path`: the value node if it is a scalar or
 * a one-line flow collection, else its key; walks up to the nearest existing
 * ancestor when the path does not exist (e.g. a defaulted key).
 */
export function locate(source: YamlSource, path: TreePath): SourceLocation {
  for (let n = path.length; n >= 0; n--) {
    const { node, key } = findNode(source, path.slice(0, n));
    if (!node && !key) continue;
    if (node && (isScalar(node) || isFlowOneLine(source, node))) return nodeLocation(source, node);
    if (key) return nodeLocation(source, key);
    if (node) return firstKeyOr(source, node);
  }
  return { file: source.file, offset: 0, length: Math.max(1, lineEnd(source.text, 0)) };
}

/** Where to point for "this key": the key node at `path` (falls back to `locate`). */
export function locateKey(source: YamlSource, path: TreePath): SourceLocation {
  const { key } = findNode(source, path);
  return key ? nodeLocation(source, key) : locate(source, path);
}

/** For the root mapping (no key), the first key; else the node's first line. */
function firstKeyOr(source: YamlSource, node: Node): SourceLocation {
  if (isMap(node) && node.items.length > 0 && isNode(node.items[0].key)) return nodeLocation(source, node.items[0].key);
  return nodeLocation(source, node);
}

function isFlowOneLine(source: YamlSource, node: Node): boolean {
  if (!(isMap(node) || isSeq(node)) || !node.flow || !node.range) return false;
  return !source.text.slice(node.range[0], node.range[1]).includes('\n');
}

/**
 * Location of `needle` inside the source text of the value at `path` (the
 * `occurrence`-th match), e.g. one `${...}` inside a longer string; falls back
 * to the whole value.
 */
export function locateWithin(source: YamlSource, path: TreePath, needle: string, occurrence = 0): SourceLocation {
  const whole = locate(source, path);
  const { node } = findNode(source, path);
  if (!node?.range || needle === '') return whole;
  const [start, end] = node.range;
  const slice = source.text.slice(start, end);
  let idx = -1;
  for (let k = 0; k <= occurrence; k++) {
    idx = slice.indexOf(needle, idx + 1);
    if (idx < 0) return whole;
  }
  return { file: source.file, offset: start + idx, length: needle.length };
}

/** Renders a path for messages: `stages.report.deps[2]`. */
export function pathToString(path: TreePath): string {
  let s = '';
  for (const seg of path) s += typeof seg === 'number' ? `[${seg}]` : s === '' ? seg : `.${seg}`;
  return s;
}
