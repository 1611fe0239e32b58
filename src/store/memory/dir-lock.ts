import { open, readFile, rm } from 'node:fs/promises';
import { resolve } from 'node:path';

const LOCK_FILE = 'maxine.lock';

/** Directories locked by this process; a lock file with our own pid may be a previous incarnation's (pid 1 in containers). */
const heldHere = new Set<string>();

/** True when a process with this pid exists (signal 0 only checks). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Claims the data directory for this process: two stores appending to the
 * same log would corrupt it. The lock file holds the owner's pid; a lock left
 * by a process that no longer exists (a crash, kill -9) is taken over.
 */
export async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  const path = resolve(dir, LOCK_FILE);
  if (heldHere.has(path)) throw new Error(`memory store: ${dir} is already open in this process`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      heldHere.add(path);
      return async () => {
        heldHere.delete(path);
        await rm(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(owner) && owner !== process.pid && alive(owner)) {
      throw new Error(`memory store: ${dir} is in use by process ${owner} (${path}); one Maxine per data directory`);
    }
    await rm(path, { force: true });
  }
  throw new Error(`memory store: could not lock ${dir} (${path} keeps reappearing)`);
}
