/**
 * Stage process groups a run has started, remembered on disk under
 * `<workspace>/.pipeline/children/<pid>` (pid + /proc start time), so that
 * when a run is killed with SIGKILL (no chance to clean up), the next run,
 * right after taking the workspace lock, kills the orphaned groups before they
 * can race it on the same output files.
 *
 * Entries name the run that owns them; only entries whose owner is dead are
 * reaped, so two processes working in one workspace never kill each other's
 * stages. It does not spawn anything.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { currentProcess, isAlive, processStart, type ProcessId } from '../cache/process-id.js';
import { killGroup } from '../exec/cmd.js';

/** The on-disk registry of live stage process groups for one workspace. */
export class ChildRegistry {
  readonly dir: string;

  constructor(workspace: string) {
    this.dir = path.join(workspace, '.pipeline', 'children');
  }

  /** Remembers a spawned group leader; returns the function that forgets it. */
  track(pid: number): () => void {
    const file = path.join(this.dir, String(pid));
    try {
      fs.mkdirSync(this.dir, { recursive: true });
      fs.writeFileSync(file, JSON.stringify({ pid, hostname: os.hostname(), start: processStart(pid), owner: currentProcess() }));
    } catch {
      return () => {};
    }
    return () => fs.rmSync(file, { force: true });
  }

  /**
   * Kills (SIGKILL, whole group) every remembered process that is still alive
   * while the run that started it is dead; returns how many. Entries of a live
   * run (another process, e.g. a watch session) are left alone.
   */
  reapOrphans(): number {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return 0;
    }
    let killed = 0;
    for (const n of names) {
      const file = path.join(this.dir, n);
      try {
        const id = JSON.parse(fs.readFileSync(file, 'utf8')) as { pid: number; hostname: string; start?: string; owner?: ProcessId };
        if (id.owner !== undefined && isAlive(id.owner)) continue;
        if (id.start !== undefined && isAlive(id)) {
          killGroup(id.pid, 'SIGKILL', false);
          killed++;
        }
      } catch {
        /* unreadable entry: nothing to kill */
      }
      fs.rmSync(file, { force: true });
    }
    return killed;
  }
}
