import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';

type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

interface Answer {
  readonly resolve: (ttl: number) => void;
  readonly reject: (error: Error) => void;
}

/** How long close() waits for etcd to acknowledge the last renewals. */
const CLOSE_DRAIN_MS = 1000;

/**
 * Keeps etcd leases alive over one LeaseKeepAlive stream per replica.
 *
 * A heartbeat only notes its instance's lease in a Set (O(1), no I/O, and a
 * lease renewed ten times in one interval is sent once); every flushMs the
 * noted leases are written to the stream together. etcd answers each with
 * the lease's new TTL, 0 when the lease is gone (its instance already
 * expired; the feed reports that). The stream is opened lazily and reopened
 * at the next flush after it breaks; renewals written to a stream that broke
 * are lost, like heartbeats during an outage.
 */
export class KeepAlives {
  private pending = new Set<string>();
  private stream: KeepAliveStream | null = null;
  private opening = false;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  /** Callers of once(), per lease, in the order their keep-alives were written. */
  private readonly answers = new Map<string, Answer[]>();
  private sent = 0;
  private answered = 0;
  private drained: (() => void) | null = null;

  constructor(
    private readonly client: Etcd3,
    private readonly flushMs: number,
    private readonly onFailure: (error: Error) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.flush(), this.flushMs);
    this.timer.unref();
  }

  /** Keep `lease` alive with the next flush. */
  renew(lease: string): void {
    if (!this.closed) this.pending.add(lease);
  }

  /** Keep one lease alive now; resolves to its TTL in seconds (0: the lease no longer exists). */
  once(lease: string, timeoutMs: number): Promise<number> {
    if (this.closed) return Promise.reject(new Error('lease keep-alives are closed'));
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        const queue = this.answers.get(lease);
        if (queue) this.answers.set(lease, queue.filter((a) => a !== answer));
        reject(new Error(`etcd did not answer a lease keep-alive within ${timeoutMs} ms`));
      }, timeoutMs);
      const answer: Answer = {
        resolve: (ttl) => {
          clearTimeout(timer);
          resolve(ttl);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const queue = this.answers.get(lease);
      if (queue) queue.push(answer);
      else this.answers.set(lease, [answer]);
      this.pending.add(lease);
      this.flush();
    });
  }

  /** Stops the timer, sends what is still noted and waits (briefly) for etcd to take it, then closes the stream. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.flush();
    if (this.pending.size > 0 || this.opening || this.answered < this.sent) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, CLOSE_DRAIN_MS);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.drained = done;
      });
    }
    this.closed = true;
    this.drained = null;
    this.failAnswers(new Error('lease keep-alives are closed'));
    const stream = this.stream;
    this.stream = null;
    stream?.cancel();
  }

  private flush(): void {
    if (this.pending.size === 0) return;
    const stream = this.stream;
    if (stream === null) {
      this.open();
      return;
    }
    for (const ID of this.pending) stream.write({ ID });
    this.sent += this.pending.size;
    this.pending.clear();
  }

  private open(): void {
    if (this.opening || this.closed) return;
    this.opening = true;
    this.client.leaseClient.leaseKeepAlive().then(
      (stream) => {
        this.opening = false;
        // Also absorbs the CANCELLED error that cancel() itself causes.
        stream.on('error', (error) => this.broken(stream, error));
        if (this.closed) {
          stream.cancel();
          return;
        }
        stream.on('end', () => this.broken(stream, new Error('etcd ended the lease keep-alive stream')));
        stream.on('data', (answer) => this.onAnswer(answer));
        this.stream = stream;
        this.sent = 0;
        this.answered = 0;
        this.flush();
      },
      (error: Error) => {
        this.opening = false;
        this.failed(error);
      },
    );
  }

  private onAnswer(answer: ILeaseKeepAliveResponse): void {
    this.answered++;
    const queue = this.answers.get(answer.ID);
    const waiting = queue?.shift();
    if (queue?.length === 0) this.answers.delete(answer.ID);
    waiting?.resolve(Number(answer.TTL));
    if (this.drained && this.pending.size === 0 && this.answered >= this.sent) this.drained();
  }

  private broken(stream: KeepAliveStream, error: Error): void {
    if (this.stream !== stream) return;
    this.stream = null;
    stream.cancel();
    this.failed(error);
  }

  private failed(error: Error): void {
    this.failAnswers(error);
    this.drained?.();
    if (!this.closed) this.onFailure(error);
  }

  private failAnswers(error: Error): void {
    const all = [...this.answers.values()].flat();
    this.answers.clear();
    for (const answer of all) answer.reject(error);
  }
}
