/**
 * A small command-line flag parser shared by the subcommands: `--flag`,
 * `--flag value`, `--flag=value`, short aliases (`-S a=1`, `-j4` is not
 * supported), repeatable flags and greedy lists (`--stage a b c`), `--` to end
 * flags. Usage mistakes come back as a message (exit code 2), never a throw.
 *
 * It does not know any command's flags and does not print.
 */
import { err, ok, type Result } from '../result.js';

/** How one flag takes its value. */
export interface FlagSpec {
  /**
   * - `boolean`: present or not.
   * - `string`: one value (the last one wins).
   * - `number`: one value, a positive integer.
   * - `list`: repeatable; with `greedy`, also takes every following token that does not start with `-`
   *   and does not look like a pipeline file (`.yaml`, `.yml`, `.json`).
   */
  readonly type: 'boolean' | 'string' | 'number' | 'list';
  /** One-letter alias, e.g. `S` for `-S`. */
  readonly short?: string;
  readonly greedy?: boolean;
  /** For `number`: the smallest accepted value (default 1). */
  readonly min?: number;
}

/** Parsed flags: booleans, strings, numbers and string lists, by flag name (without dashes). */
export interface ParsedArgs {
  readonly flags: Readonly<Record<string, boolean | string | number | string[]>>;
  readonly positionals: readonly string[];
}

/** Parses `argv` against `spec` (flag name → spec). */
export function parseArgs(argv: readonly string[], spec: Readonly<Record<string, FlagSpec>>): Result<ParsedArgs, string> {
  const flags: Record<string, boolean | string | number | string[]> = {};
  const positionals: string[] = [];
  const byShort = new Map(Object.entries(spec).flatMap(([name, s]) => (s.short ? [[s.short, name] as const] : [])));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      inline = eq >= 0 ? a.slice(eq + 1) : undefined;
      if (!(name in spec)) return err(`unknown option --${name}`);
    } else if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) {
      const short = a.slice(1, 2);
      name = byShort.get(short);
      if (name === undefined) return err(`unknown option ${a}`);
      if (a.length > 2) inline = a.slice(2).replace(/^=/, '');
    } else {
      positionals.push(a);
      continue;
    }
    const s = spec[name];
    if (s.type === 'boolean') {
      if (inline !== undefined) return err(`option --${name} takes no value`);
      flags[name] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length) return err(`option --${name} needs a value`);
      value = argv[++i];
    }
    if (s.type === 'string') flags[name] = value;
    else if (s.type === 'number') {
      const min = s.min ?? 1;
      if (!/^\d+$/.test(value) || Number(value) < min) return err(`option --${name} needs ${min === 1 ? 'a positive integer' : `an integer >= ${min}`}, got "${value}"`);
      flags[name] = Number(value);
    } else {
      const list = (flags[name] as string[] | undefined) ?? [];
      list.push(value);
      // A pipeline file name ends a greedy list, so `run --stage a b pipelines/x.yaml` works.
      if (s.greedy) while (i + 1 < argv.length && !argv[i + 1].startsWith('-') && !/\.(ya?ml|json)$/.test(argv[i + 1])) list.push(argv[++i]);
      flags[name] = list;
    }
  }
  return ok({ flags, positionals });
}

/** A list flag split on commas too (`--stage a,b --stage c` → a, b, c). */
export function listFlag(p: ParsedArgs, name: string): string[] {
  const v = p.flags[name];
  if (!Array.isArray(v)) return [];
  return v.flatMap((x) => x.split(',')).filter((x) => x !== '');
}
