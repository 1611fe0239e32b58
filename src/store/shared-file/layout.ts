import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The shared directory:
 *   log/000000000000.json      the genesis record (empty), so every record has a predecessor
 *   log/<position>.json        one record per position, 12 digits, created exclusively
 *   log/.append-*.tmp          a record being written (a crashed writer may leave one)
 *   snapshot-<position>.json   the state after <position>, written by the leader
 *   .snapshot-*.tmp            a snapshot being written
 */
export const LOG_DIR = 'log';

const POSITION_DIGITS = 12;
const RECORD_NAME = /^(\d{12,})\.json$/;
const SNAPSHOT_NAME = /^snapshot-(\d{12,})\.json$/;

export function recordName(position: number): string {
  return `${String(position).padStart(POSITION_DIGITS, '0')}.json`;
}

export function snapshotName(position: number): string {
  return `snapshot-${String(position).padStart(POSITION_DIGITS, '0')}.json`;
}

/** A name no other writer (in any process, on any machine) will pick. */
export function tempName(kind: 'append' | 'snapshot'): string {
  return `.${kind}-${randomBytes(8).toString('hex')}.tmp`;
}

export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.endsWith('.tmp');
}

export class Layout {
  readonly logDir: string;

  constructor(readonly root: string) {
    this.logDir = join(root, LOG_DIR);
  }

  recordPath(position: number): string {
    return join(this.logDir, recordName(position));
  }

  snapshotPath(position: number): string {
    return join(this.root, snapshotName(position));
  }

  /** Positions of the snapshots present, ascending. */
  async snapshots(): Promise<number[]> {
    return positions(await readdir(this.root), SNAPSHOT_NAME);
  }

  /** Positions of the records present, ascending. Reads the whole log directory: not for hot paths. */
  async records(): Promise<number[]> {
    return positions(await readdir(this.logDir), RECORD_NAME);
  }
}

function positions(names: readonly string[], pattern: RegExp): number[] {
  const found: number[] = [];
  for (const name of names) {
    const match = pattern.exec(name);
    if (match) found.push(Number(match[1]));
  }
  return found.sort((a, b) => a - b);
}
