import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { exitOnSignals, type ShutdownLogger } from './shutdown.ts';

/** Wires exitOnSignals to fakes and records what it did. */
function harness(close: () => Promise<void>, timeoutMs = 1000) {
  const signals = new EventEmitter();
  const logs: string[] = [];
  const record = (level: string) => (_obj: object, msg: string) => void logs.push(`${level}: ${msg}`);
  const logger: ShutdownLogger = { info: record('info'), warn: record('warn'), error: record('error') };
  const exits: number[] = [];
  let exited!: (code: number) => void;
  const firstExit = new Promise<number>((resolve) => (exited = resolve));
  exitOnSignals({
    signals,
    close,
    logger,
    timeoutMs,
    exit: (code) => {
      exits.push(code);
      exited(code);
    },
  });
  return { signals, logs, exits, firstExit };
}

test('SIGTERM closes the server, then exits 0', async () => {
  let closed = 0;
  const h = harness(async () => void closed++);
  h.signals.emit('SIGTERM', 'SIGTERM');
  assert.equal(await h.firstExit, 0);
  assert.equal(closed, 1);
  assert.deepEqual(h.logs, ['info: shutting down']);
});

test('SIGINT does the same', async () => {
  const h = harness(async () => {});
  h.signals.emit('SIGINT', 'SIGINT');
  assert.equal(await h.firstExit, 0);
});

test('a close that outlasts the timeout exits 1', async () => {
  const h = harness(() => new Promise<void>(() => {}), 20);
  h.signals.emit('SIGTERM', 'SIGTERM');
  assert.equal(await h.firstExit, 1);
  assert.deepEqual(h.logs, ['info: shutting down', 'error: shutdown timed out']);
});

test('a close that finishes after the timeout does not exit again', async () => {
  let finishClose!: () => void;
  const h = harness(() => new Promise<void>((resolve) => (finishClose = resolve)), 20);
  h.signals.emit('SIGTERM', 'SIGTERM');
  assert.equal(await h.firstExit, 1);
  finishClose();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(h.exits, [1]);
});

test('a second signal during shutdown exits 1 at once, and only once', async () => {
  let finishClose!: () => void;
  let closes = 0;
  const h = harness(() => {
    closes++;
    return new Promise<void>((resolve) => (finishClose = resolve));
  });
  h.signals.emit('SIGTERM', 'SIGTERM');
  h.signals.emit('SIGINT', 'SIGINT');
  assert.deepEqual(h.exits, [1]);
  finishClose();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(h.exits, [1]);
  assert.equal(closes, 1);
  assert.deepEqual(h.logs, ['info: shutting down', 'warn: second signal during shutdown, exiting now']);
});

test('a failing close exits 1, also when it throws synchronously', async () => {
  for (const close of [() => Promise.reject(new Error('store stuck')), (): Promise<void> => {
    throw new Error('boom');
  }]) {
    const h = harness(close);
    h.signals.emit('SIGTERM', 'SIGTERM');
    assert.equal(await h.firstExit, 1);
    assert.deepEqual(h.logs, ['info: shutting down', 'error: shutdown failed']);
  }
});
