import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { request, type IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Catalog } from '../core/catalog.ts';
import type { ProxyPolicy } from './policy.ts';
import { Proxy } from './proxy.ts';
import { catalogOf } from '../core/fixtures.ts';
import { echo, front, policy, upstream, type Echo } from './test-support.ts';

const TOTAL = 50 * 1024 * 1024;
const CHUNK = 64 * 1024;

/** Chunk i of the generated 50 MB: different bytes per chunk, so a reordering or a lost chunk changes the hash. */
function chunk(i: number): Buffer {
  const buffer = Buffer.alloc(CHUNK, i % 251);
  buffer.writeUInt32BE(i, 0);
  return buffer;
}

async function setup(catalog: Catalog, p: ProxyPolicy): Promise<{ port: number; close: () => Promise<void> }> {
  const proxy = new Proxy({ catalog, defaults: p, allowLinkLocal: false });
  const server = await front(proxy, catalog, { service: 'svc', policy: p });
  return {
    port: server.port,
    close: async () => {
      await server.close();
      await proxy.close();
    },
  };
}

function get(port: number, method: string): { req: ReturnType<typeof request>; response: Promise<IncomingMessage> } {
  const req = request({ host: '127.0.0.1', port, method, path: '/big', agent: false });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
  });
  return { req, response };
}

test('a 50 MB response is streamed intact, with backpressure: a paused client holds the instance back', async () => {
  let written = 0;
  const sent = createHash('sha256');
  const instance = await upstream(async (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL) });
    for (let i = 0; written < TOTAL; i++) {
      const data = chunk(i);
      sent.update(data);
      written += data.length;
      if (!res.write(data)) await once(res, 'drain');
    }
    res.end();
  });
  // The client pauses longer than the request timeout: waiting on the client is not the instance's silence.
  const proxied = await setup(catalogOf('svc', [['a', instance.port]]), policy({ requestTimeoutMs: 200 }));
  try {
    const { req, response } = get(proxied.port, 'GET');
    req.end();
    const res = await response;
    assert.equal(res.statusCode, 200);
    res.pause();
    await sleep(400);
    const aheadWhilePaused = written;
    const received = createHash('sha256');
    let bytes = 0;
    res.on('data', (data: Buffer) => {
      received.update(data);
      bytes += data.length;
    });
    res.resume();
    await once(res, 'end');
    assert.equal(bytes, TOTAL);
    assert.equal(received.digest('hex'), sent.digest('hex'));
    assert.ok(aheadWhilePaused < TOTAL / 2, `the instance wrote ${aheadWhilePaused} bytes while the client read nothing`);
  } finally {
    await proxied.close();
    await instance.close();
  }
});

test('a 50 MB upload is streamed intact, with backpressure: a paused instance holds the client back', async () => {
  let written = 0;
  let writtenWhenPaused = -1;
  const instance = await upstream((req, res) => {
    const received = createHash('sha256');
    let bytes = 0;
    req.on('data', (data: Buffer) => {
      received.update(data);
      bytes += data.length;
      if (writtenWhenPaused < 0 && bytes >= 1024 * 1024) {
        req.pause();
        setTimeout(() => {
          writtenWhenPaused = written;
          req.resume();
        }, 400);
      }
    });
    req.on('end', () => res.writeHead(200).end(JSON.stringify({ bytes, hash: received.digest('hex') })));
  });
  const proxied = await setup(catalogOf('svc', [['a', instance.port]]), policy({ maxBodyBytes: TOTAL, requestTimeoutMs: 2000 }));
  try {
    const { req, response } = get(proxied.port, 'PUT');
    req.setHeader('content-length', TOTAL);
    const sent = createHash('sha256');
    for (let i = 0; written < TOTAL; i++) {
      const data = chunk(i);
      sent.update(data);
      written += data.length;
      if (!req.write(data)) await once(req, 'drain');
    }
    req.end();
    const res = await response;
    const chunks: Buffer[] = [];
    for await (const data of res) chunks.push(data as Buffer);
    assert.equal(res.statusCode, 200);
    assert.deepEqual(JSON.parse(Buffer.concat(chunks).toString()), { bytes: TOTAL, hash: sent.digest('hex') });
    assert.ok(writtenWhenPaused > 0 && writtenWhenPaused < TOTAL / 2, `the client wrote ${writtenWhenPaused} bytes while the instance read nothing`);
  } finally {
    await proxied.close();
    await instance.close();
  }
});

test('a client that pauses in the middle of its body is not taken for a silent instance', async () => {
  const instance = await upstream(echo);
  const proxied = await setup(catalogOf('svc', [['a', instance.port]]), policy({ requestTimeoutMs: 150 }));
  try {
    const { req, response } = get(proxied.port, 'POST');
    req.write('first half, ');
    await sleep(400);
    req.end('second half');
    const res = await response;
    const chunks: Buffer[] = [];
    for await (const data of res) chunks.push(data as Buffer);
    assert.equal(res.statusCode, 200);
    assert.equal((JSON.parse(Buffer.concat(chunks).toString()) as Echo).body, 'first half, second half');
  } finally {
    await proxied.close();
    await instance.close();
  }
});
