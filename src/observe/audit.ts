import { mkdir, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

export type AuditResult = 'allowed' | 'denied' | 'succeeded' | 'failed';

export interface AuditActor {
  /** anonymous | user | token | oidc | cert */
  readonly kind: string;
  /** user name, token id, OIDC subject, certificate subject; null for anonymous */
  readonly id: string | null;
  readonly role: string | null;
}

export interface AuditEvent {
  /** ISO-8601, set by the caller. */
  readonly time: string;
  readonly actor: AuditActor;
  /** The permission, e.g. 'register', 'config:write', 'users:manage', 'signin'. */
  readonly action: string;
  /** The service the request touches, when there is one. */
  readonly service: string | null;
  readonly method: string;
  /** The route pattern, e.g. '/api/maxine/users/:userName' (never the raw URL: it may carry tokens in its query). */
  readonly route: string;
  /** Client address. */
  readonly address: string;
  readonly result: AuditResult;
  /** HTTP status answered. */
  readonly status: number;
  /** Why denied/failed, safe to show. */
  readonly reason: string | null;
  readonly traceId: string | null;
  readonly requestId: string;
}

export interface AuditOptions {
  /** JSON-lines file; null keeps only the in-memory ring. Its directory is created (mode 0700) if missing; the file is created with mode 0600. */
  readonly file: string | null;
  /** Rotate when the current file would exceed this many bytes. */
  readonly maxBytes: number;
  /** How many rotated files to keep besides the current one (audit.log.1 newest ... audit.log.N oldest; older ones deleted). */
  readonly retainedFiles: number;
  /** How many recent events the ring keeps for /api/actuator/audit. */
  readonly ringSize: number;
  /** Write problems (disk full, permissions) are reported here, never thrown into request handling. */
  readonly onError: (error: Error) => void;
}

export interface AuditQuery {
  readonly limit?: number;
  readonly actor?: string;
  readonly result?: AuditResult;
  readonly service?: string;
}

const DEFAULT_LIMIT = 100;

// A slow or failing disk must not turn the audit log into a memory leak:
// past either bound the oldest unwritten events give way to the newest.
const MAX_PENDING_EVENTS = 10_000;
const MAX_PENDING_BYTES = 8 * 1024 * 1024;

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 60_000;

/**
 * Who did what to which service, kept twice: in a fixed-size ring for the
 * actuator and, when a file is configured, as JSON lines on disk with
 * size-based rotation. Recording never waits for the disk, so a slow or
 * broken disk cannot stall or fail request handling.
 */
export class AuditLog {
  private readonly ring: (AuditEvent | undefined)[];
  private ringHead = 0;
  private ringCount = 0;
  private readonly writer: AuditFileWriter | null;
  private readonly report: (error: Error) => void;
  private closed = false;

  constructor(options: AuditOptions) {
    if (!(options.maxBytes > 0)) throw new RangeError(`audit maxBytes must be positive, got ${options.maxBytes}`);
    if (!Number.isInteger(options.retainedFiles) || options.retainedFiles < 0) {
      throw new RangeError(`audit retainedFiles must be a whole number >= 0, got ${options.retainedFiles}`);
    }
    if (!Number.isInteger(options.ringSize) || options.ringSize < 0) {
      throw new RangeError(`audit ringSize must be a whole number >= 0, got ${options.ringSize}`);
    }
    // A throwing error handler must not break the never-throws promise of record().
    this.report = (error) => {
      try {
        options.onError(error);
      } catch {
        // Nowhere left to report to.
      }
    };
    this.ring = new Array<AuditEvent | undefined>(options.ringSize).fill(undefined);
    this.writer =
      options.file === null
        ? null
        : new AuditFileWriter(options.file, options.maxBytes, options.retainedFiles, this.report);
  }

  record(event: AuditEvent): void {
    const size = this.ring.length;
    if (size > 0) {
      this.ring[this.ringHead] = event;
      this.ringHead = (this.ringHead + 1) % size;
      if (this.ringCount < size) this.ringCount++;
    }
    if (this.writer === null || this.closed) return;
    let line: Buffer;
    try {
      line = Buffer.from(`${serialise(event)}\n`);
    } catch (error) {
      // Only an event that bypassed the types (a BigInt, a cycle) gets here.
      this.report(new Error(`audit event could not be serialised: ${describe(error)}`, { cause: error }));
      return;
    }
    this.writer.enqueue(line);
  }

  recent(query: AuditQuery = {}): AuditEvent[] {
    const size = this.ring.length;
    const requested = query.limit ?? DEFAULT_LIMIT;
    const limit = Math.min(Number.isNaN(requested) ? DEFAULT_LIMIT : Math.max(0, Math.floor(requested)), size);
    const out: AuditEvent[] = [];
    for (let i = 1; i <= this.ringCount && out.length < limit; i++) {
      const event = this.ring[(this.ringHead - i + size) % size];
      if (event === undefined) break;
      if (query.actor !== undefined && event.actor.id !== query.actor) continue;
      if (query.result !== undefined && event.result !== query.result) continue;
      if (query.service !== undefined && event.service !== query.service) continue;
      out.push(event);
    }
    return out;
  }

  flush(): Promise<void> {
    return this.writer?.flush() ?? Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    return this.writer?.close() ?? Promise.resolve();
  }
}

/**
 * Fixed key order keeps lines diffable and greppable; listing the fields
 * (rather than stringifying the event) keeps anything a caller spread into
 * the object, such as a raw URL with a token, out of the file.
 */
function serialise(event: AuditEvent): string {
  const json = JSON.stringify({
    time: event.time,
    actor: { kind: event.actor.kind, id: event.actor.id, role: event.actor.role },
    action: event.action,
    service: event.service,
    method: event.method,
    route: event.route,
    address: event.address,
    result: event.result,
    status: event.status,
    reason: event.reason,
    traceId: event.traceId,
    requestId: event.requestId,
  });
  return escapeLineSeparators(json);
}

/**
 * JSON escapes the ASCII control characters but leaves NEL, LINE SEPARATOR
 * and PARAGRAPH SEPARATOR raw, and some readers (Python's splitlines, many
 * editors) break lines there: a hostile service name could otherwise forge
 * a line for them. These characters only occur inside JSON strings, where
 * the \u escape means the same thing.
 */
function escapeLineSeparators(json: string): string {
  return json.replace(/[\u0085\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Written where events were dropped, so a reader of the file sees the gap and its size. */
function droppedLine(dropped: number): Buffer {
  const line = JSON.stringify({
    time: new Date().toISOString(),
    action: 'audit:dropped',
    dropped,
    reason: 'audit buffer full: the disk was too slow or failing',
  });
  return Buffer.from(`${line}\n`);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

interface Batch {
  readonly data: Buffer;
  /** Bytes already on disk: after a failed write only the rest is retried, so no line is doubled or torn. */
  written: number;
  /** Sequence number of the last event in the batch (or dropped before it), for flush(). */
  readonly endSeq: number;
}

/**
 * Appends serialised events from a single in-flight write loop. Events that
 * arrive while a write is under way wait in a queue (array plus head index,
 * so taking from the front is O(1)) and go out together in the next write.
 */
class AuditFileWriter {
  private queue: (Buffer | undefined)[] = [];
  private queueHead = 0;
  private queueBytes = 0;
  /** Events ever enqueued / taken off the queue (written or dropped) / known to be on disk or dropped. */
  private enqueued = 0;
  private dequeued = 0;
  private settled = 0;
  private droppedSinceMarker = 0;
  private overflowReported = false;

  private batch: Batch | null = null;
  private handle: FileHandle | null = null;
  /** Tracked in memory so rotation needs no stat per write. */
  private size = 0;
  private running: Promise<void> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private retryDelay = FIRST_RETRY_MS;
  private failing = false;
  private waiters: (() => void)[] = [];
  private closing: Promise<void> | null = null;

  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
    private readonly retainedFiles: number,
    private readonly report: (error: Error) => void,
  ) {}

  private get pendingCount(): number {
    return this.queue.length - this.queueHead;
  }

  enqueue(line: Buffer): void {
    this.queue.push(line);
    this.queueBytes += line.length;
    this.enqueued++;
    // The newest event always stays, even alone over the byte bound.
    while (this.pendingCount > 1 && (this.pendingCount > MAX_PENDING_EVENTS || this.queueBytes > MAX_PENDING_BYTES)) {
      this.dequeue();
      this.droppedSinceMarker++;
      if (!this.overflowReported) {
        this.overflowReported = true;
        this.report(
          new Error(
            `audit log ${this.path}: more than ${MAX_PENDING_EVENTS} events or ${MAX_PENDING_BYTES} bytes waiting for the disk; ` +
              'dropping the oldest unwritten events (the file notes how many)',
          ),
        );
      }
    }
    this.schedule();
  }

  async flush(): Promise<void> {
    const target = this.enqueued;
    this.retryNow();
    while (this.running !== null && this.settled < target) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.retryNow();
    while (this.running !== null) await this.running;
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    const lost = this.enqueued - this.settled;
    if (lost > 0) this.report(new Error(`audit log ${this.path}: ${lost} events were never written`));
    await this.releaseHandle();
  }

  private retryNow(): void {
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.running !== null || this.retryTimer !== null) return;
    if (this.batch === null && this.pendingCount === 0) return;
    // Starting on the next turn of the event loop lets every event recorded
    // in this one (e.g. by a burst of requests) go out in the same write.
    this.running = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.pump())
      .catch((error: unknown) => this.report(new Error(`audit log ${this.path}: ${describe(error)}`, { cause: error })))
      .finally(() => {
        this.running = null;
        this.wake();
        // Events may have arrived after the loop saw an empty queue.
        this.schedule();
      });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  private async pump(): Promise<void> {
    while (this.batch !== null || this.pendingCount > 0) {
      try {
        await this.writeNextBatch();
      } catch (error) {
        // Reopen on the next attempt: the descriptor may be bad or the file moved.
        await this.releaseHandle();
        this.failed(error);
        return;
      }
      this.failing = false;
      this.retryDelay = FIRST_RETRY_MS;
      this.wake();
    }
    this.overflowReported = false;
  }

  private failed(error: unknown): void {
    // One report per failure episode: a full disk would otherwise repeat itself at every retry.
    if (!this.failing) {
      this.failing = true;
      this.report(new Error(`audit log ${this.path}: ${describe(error)}`, { cause: error }));
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.schedule();
    }, this.retryDelay);
    // A failing audit disk must not keep the process alive on its own.
    this.retryTimer.unref();
    this.retryDelay = Math.min(this.retryDelay * 2, MAX_RETRY_MS);
  }

  private async writeNextBatch(): Promise<void> {
    let handle = this.handle ?? (await this.openFile());
    // A batch interrupted by an error is finished first, whatever the size:
    // its start is already on disk and the line must not be left torn.
    if (this.batch === null) {
      if (this.size > 0 && this.size + this.nextItemBytes() > this.maxBytes) handle = await this.rotate(handle);
      this.batch = this.takeBatch(this.maxBytes - this.size);
    }
    const batch = this.batch;
    while (batch.written < batch.data.length) {
      const { bytesWritten } = await handle.write(batch.data, batch.written, batch.data.length - batch.written);
      batch.written += bytesWritten;
      this.size += bytesWritten;
    }
    this.batch = null;
    this.settled = batch.endSeq;
  }

  private nextItemBytes(): number {
    return this.droppedSinceMarker > 0 ? droppedLine(this.droppedSinceMarker).length : (this.queue[this.queueHead]?.length ?? 0);
  }

  /** At least one item, so an event larger than maxBytes is written (alone, into a fresh file) rather than stuck. */
  private takeBatch(room: number): Batch {
    const parts: Buffer[] = [];
    let bytes = 0;
    if (this.droppedSinceMarker > 0) {
      const marker = droppedLine(this.droppedSinceMarker);
      this.droppedSinceMarker = 0;
      parts.push(marker);
      bytes += marker.length;
    }
    for (let next = this.queue[this.queueHead]; next !== undefined; next = this.queue[this.queueHead]) {
      if (parts.length > 0 && bytes + next.length > room) break;
      this.dequeue();
      parts.push(next);
      bytes += next.length;
    }
    return { data: Buffer.concat(parts, bytes), written: 0, endSeq: this.dequeued };
  }

  private dequeue(): void {
    const line = this.queue[this.queueHead];
    if (line === undefined) return;
    this.queue[this.queueHead++] = undefined;
    this.queueBytes -= line.length;
    this.dequeued++;
    if (this.queueHead === this.queue.length) {
      this.queue = [];
      this.queueHead = 0;
    } else if (this.queueHead >= 1024 && this.queueHead * 2 >= this.queue.length) {
      // Compacting only once the dead front is half the array keeps dequeue amortised O(1).
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  private async openFile(): Promise<FileHandle> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const handle = await open(this.path, 'a', 0o600);
    try {
      // A restart appends to the existing file and must rotate it on time.
      this.size = (await handle.stat()).size;
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
    this.handle = handle;
    return handle;
  }

  private async releaseHandle(): Promise<void> {
    const handle = this.handle;
    if (handle === null) return;
    this.handle = null;
    try {
      await handle.close();
    } catch (error) {
      this.report(new Error(`audit log ${this.path}: ${describe(error)}`, { cause: error }));
    }
  }

  /**
   * Each step tolerates files that are already gone, so a rotation
   * interrupted by an error can simply be run again on retry without
   * losing or overwriting a file that still holds events.
   */
  private async rotate(handle: FileHandle): Promise<FileHandle> {
    this.handle = null;
    await handle.close();
    if (this.retainedFiles === 0) {
      await this.unlinkIfExists(this.path);
    } else {
      // Only the run of existing files is shifted, so a large retention
      // costs nothing until it fills, and an older file beyond a gap (left by
      // an interrupted rotation or a manual delete) is never overwritten.
      let top = 1;
      while (top < this.retainedFiles && (await this.exists(`${this.path}.${top}`))) top++;
      for (let n = top - 1; n >= 1; n--) {
        await this.renameIfExists(`${this.path}.${n}`, `${this.path}.${n + 1}`);
      }
      await this.renameIfExists(this.path, `${this.path}.1`);
    }
    // Leftovers of a larger retention setting from an earlier run.
    let n = this.retainedFiles + 1;
    while (await this.unlinkIfExists(`${this.path}.${n}`)) n++;
    return this.openFile();
  }

  private async exists(path: string): Promise<boolean> {
    try {
      await stat(path);
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  private async renameIfExists(from: string, to: string): Promise<void> {
    try {
      await rename(from, to);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  private async unlinkIfExists(path: string): Promise<boolean> {
    try {
      await unlink(path);
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }
}
