/**
 * Stage process groups a run has started, remembered on disk under
 * `<workspace>/.pipeline/children/<pid>` (pid + /proc start time), so that
 * when a run is killed with SIGKILL (no chance to clean up), the next run,
 * right after taking the workspace lock, kills the orphaned groups before they
 * can race it on the same output files.
 *
 * Only the lock holder uses this directory. It does not spawn anything.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isAlive, processStart } from '../cache/process-id.js';
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
      fs.writeFileSync(file, JSON.stringify({ pid, hostname: os.hostname(), start: processStart(pid) }));
    } catch {
      return () => {};
    }
    return () => fs.rmSync(file, { force: true });
  }

  /** Kills (SIGKILL, whole group) every remembered process still alive from a dead run; returns how many. */
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
        const id = JSON.parse(fs.readFileSync(file, 'utf8')) as { pid: number; hostname: string; start?: string };
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
