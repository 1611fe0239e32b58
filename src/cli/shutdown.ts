/** The little of a logger that shutdown needs; a pino Logger fits. */
export interface ShutdownLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ShutdownOptions {
  /** Where the signals arrive: `process`, or an EventEmitter in tests. */
  readonly signals: { on(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown };
  /** Stops accepting connections, drains, closes the store and flushes the log. */
  readonly close: () => Promise<void>;
  readonly logger: ShutdownLogger;
  /** How long `close` may take before the process gives up on it. */
  readonly timeoutMs: number;
  /** `process.exit`, injected so tests can observe it. */
  readonly exit: (code: number) => void;
}

export const SHUTDOWN_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * Closes the server on SIGTERM or SIGINT and exits 0 once it is closed, or 1
 * when closing fails or outlasts `timeoutMs`. A second signal exits 1 at once,
 * so an operator pressing Ctrl-C twice is never stuck behind a slow drain.
 */
export function exitOnSignals(opts: ShutdownOptions): void {
  let shuttingDown = false;
  let exited = false;
  let timer: NodeJS.Timeout | undefined;

  // Exactly one exit code wins; the rest arrive after the process would be gone.
  const finish = (code: number): void => {
    if (exited) return;
    exited = true;
    clearTimeout(timer);
    opts.exit(code);
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (shuttingDown) {
      opts.logger.warn({ signal }, 'second signal during shutdown, exiting now');
      finish(1);
      return;
    }
    shuttingDown = true;
    opts.logger.info({ signal }, 'shutting down');
    // Left referenced: if `close` stalls with nothing else pending, the process
    // must still wait for this timer and exit 1 rather than drift out with 0.
    timer = setTimeout(() => {
      opts.logger.error({ timeoutMs: opts.timeoutMs }, 'shutdown timed out');
      finish(1);
    }, opts.timeoutMs);
    // The executor turns a synchronous throw from `close` into a rejection.
    new Promise<void>((resolve) => resolve(opts.close())).then(
      () => finish(0),
      (err: unknown) => {
        opts.logger.error({ err }, 'shutdown failed');
        finish(1);
      },
    );
  };

  for (const signal of SHUTDOWN_SIGNALS) opts.signals.on(signal, onSignal);
}
