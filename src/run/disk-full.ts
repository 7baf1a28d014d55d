/**
 * Names a full disk or an exceeded quota (ENOSPC, EDQUOT) in plain words, for
 * the engine's stage failures (`stage-exec.ts`) and the CLI's last-resort
 * handler (`cli/dispatch.ts`): these are the environment, not a bug.
 *
 * It does not say what to do about it (each caller adds its own advice) and
 * does no I/O.
 */

/** `no space left on device (ENOSPC) writing <file>` for a full-disk or quota error; undefined for anything else. */
export function diskFullText(e: unknown): string | undefined {
  const x = e as (NodeJS.ErrnoException & { dest?: string }) | null | undefined;
  const code = x?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return undefined;
  // A copy names its source as `path` and the file it could not write as `dest`.
  const where = x?.dest ?? x?.path;
  return `${code === 'ENOSPC' ? 'no space left on device (ENOSPC)' : 'disk quota exceeded (EDQUOT)'}${where ? ` writing ${where}` : ''}`;
}
