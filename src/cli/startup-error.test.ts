import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { test } from 'node:test';
import { describeStartupError } from './startup-error.ts';

async function listen(server: Server, port: number): Promise<void> {
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
}

test('a port in use is explained in one line naming the address', async () => {
  const holder = createServer();
  await listen(holder, 0);
  const address = holder.address();
  assert.ok(address !== null && typeof address === 'object');
  const second = createServer();
  try {
    second.listen(address.port, '127.0.0.1');
    const [err] = await once(second, 'error');
    assert.equal(
      describeStartupError(err, { host: '127.0.0.1', port: address.port }),
      `cannot listen on 127.0.0.1:${address.port}: address already in use`,
    );
  } finally {
    holder.close();
  }
});

test('IPv6 hosts are bracketed', () => {
  const err = Object.assign(new Error('listen EADDRNOTAVAIL'), { code: 'EADDRNOTAVAIL', syscall: 'listen' });
  assert.equal(describeStartupError(err, { host: 'fd00::1', port: 80 }), 'cannot listen on [fd00::1]:80: address not available on this machine');
});

test('other failures keep the first line of their message', () => {
  const fsError = Object.assign(new Error("EACCES: permission denied, mkdir '/data'\nmore"), { code: 'EACCES', syscall: 'mkdir' });
  assert.equal(describeStartupError(fsError, { host: '0.0.0.0', port: 80 }), "failed to start: EACCES: permission denied, mkdir '/data'");
  assert.equal(describeStartupError('plain', { host: '0.0.0.0', port: 80 }), 'failed to start: plain');
  assert.equal(describeStartupError(undefined, { host: '0.0.0.0', port: 80 }), 'failed to start: undefined');
});
