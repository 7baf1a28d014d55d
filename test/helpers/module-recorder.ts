/**
 * An `--import` data URL that registers an ESM resolve hook appending each
 * resolved module URL to a log file, one per line: for tests that check
 * what a real process (the CLI, a stage host) loads. It does not see
 * CommonJS `require`s (sharp and tfjs load that way); record `require.cache`
 * for those.
 */
export function moduleRecorder(log: string): string {
  const hooks = `
import fs from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  fs.appendFileSync(${JSON.stringify(log)}, r.url + '\\n');
  return r;
}`;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
  return `data:text/javascript,${encodeURIComponent(register)}`;
}
