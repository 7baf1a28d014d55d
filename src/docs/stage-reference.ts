/**
 * Generates the built-in stage reference (docs/stages.md) from
 * `schemas/stages/*.json`, so the documentation cannot drift from what the
 * loader validates. Pure: schemas in, Markdown out. The test suite fails when
 * the committed file differs from the generated one (`npm run docs` fixes it).
 */

/** The subset of JSON Schema the stage schemas use. */
export interface SchemaNode {
  readonly title?: string;
  readonly description?: string;
  readonly type?: string | readonly string[];
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly default?: unknown;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: number;
  readonly items?: SchemaNode;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly required?: readonly string[];
  readonly oneOf?: readonly SchemaNode[];
  readonly anyOf?: readonly SchemaNode[];
  readonly $ref?: string;
  readonly definitions?: Readonly<Record<string, SchemaNode>>;
  readonly $defs?: Readonly<Record<string, SchemaNode>>;
}

function resolve(root: SchemaNode, n: SchemaNode): SchemaNode {
  if (!n.$ref) return n;
  const m = /^#\/(definitions|\$defs)\/(.+)$/.exec(n.$ref);
  const target = m ? (m[1] === 'definitions' ? root.definitions : root.$defs)?.[m[2]!] : undefined;
  return target ? { ...target, ...n, $ref: undefined, description: n.description ?? target.description } : n;
}

/** A one-line type description, e.g. `integer ≥ 1`, `"cover" \| "contain"`, `[integer, integer]`. */
export function describeType(root: SchemaNode, node: SchemaNode): string {
  const n = resolve(root, node);
  if (n.enum) return n.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (n.const !== undefined) return JSON.stringify(n.const);
  const alts = n.oneOf ?? n.anyOf;
  if (alts) return alts.map((a) => describeType(root, a)).join(' or ');
  const t: string = typeof n.type === 'string' ? n.type : n.type ? n.type.join(' | ') : 'any';
  if (t === 'array' && n.items) {
    const item = describeType(root, n.items);
    if (n.minItems !== undefined && n.minItems === n.maxItems) return `${n.minItems} × ${item}`;
    return `list of ${item}`;
  }
  const bounds = [
    n.minimum !== undefined ? `≥ ${n.minimum}` : n.exclusiveMinimum !== undefined ? `> ${n.exclusiveMinimum}` : '',
    n.maximum !== undefined ? `≤ ${n.maximum}` : '',
  ].filter(Boolean);
  return bounds.length ? `${t} ${bounds.join(', ')}` : t;
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n+/g, ' ');
}

function rows(root: SchemaNode, node: SchemaNode, prefix: string, out: string[]): void {
  const n = resolve(root, node);
  const required = new Set(n.required ?? []);
  for (const [name, raw] of Object.entries(n.properties ?? {})) {
    const p = resolve(root, raw);
    const full = prefix ? `${prefix}.${name}` : name;
    const def = p.default !== undefined ? `\`${JSON.stringify(p.default)}\`` : required.has(name) ? '**required**' : '—';
    out.push(`| \`${full}\` | ${cell(describeType(root, p))} | ${def} | ${cell(p.description ?? '')} |`);
    if (p.properties && Object.keys(p.properties).length > 0 && (p.type === 'object' || p.type === undefined)) rows(root, p, full, out);
  }
}

/** The Markdown reference for the given stage schemas (name → schema), sorted by the given order. */
export function renderStageReference(stages: readonly { name: string; schema: SchemaNode; inputs: readonly string[]; optionalInputs: readonly string[] }[]): string {
  const out = [
    '# Built-in stage reference',
    '',
    '<!-- Generated from schemas/stages/*.json by `npm run docs`; the test suite fails when this file is stale. Do not edit by hand. -->',
    '',
    'Use a built-in stage with `uses: <name>` and set its params under `with:`. Input slots name the upstream stage that feeds the stage; a slot not mapped under `inputs:` defaults to the stage whose id is the slot name.',
    '',
    ...stages.map((s) => `- [\`${s.name}\`](#${s.name})`),
    '',
  ];
  for (const s of stages) {
    out.push(`## ${s.name}`, '');
    if (s.schema.description) out.push(s.schema.description, '');
    out.push(`Inputs: ${s.inputs.length ? s.inputs.map((i) => `\`${i}\``).join(', ') : 'none'}${s.optionalInputs.length ? `; optional: ${s.optionalInputs.map((i) => `\`${i}\``).join(', ')}` : ''}.`, '');
    const body: string[] = [];
    rows(s.schema, s.schema, '', body);
    if (body.length === 0) out.push('No params.', '');
    else out.push('| param | type | default | description |', '|---|---|---|---|', ...body, '');
  }
  return out.join('\n');
}
