import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

/** File helpers for the stores that keep their state in files (local and shared-file). */

/** Makes created, renamed and deleted directory entries durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A single write() may be short; loop until everything is out. */
export async function writeAll(handle: FileHandle, data: string | Buffer): Promise<void> {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  let offset = 0;
  while (offset < buf.length) {
    const { bytesWritten } = await handle.write(buf, offset, buf.length - offset, null);
    offset += bytesWritten;
  }
}
