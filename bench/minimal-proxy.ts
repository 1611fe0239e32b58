/**
 * The proxy scenario's floor: about the least an HTTP proxy on Node.js can
 * do per request, in a child process. A node:http server hands each request
 * to undici's `Agent.dispatch` (the client and the API Maxine's proxy uses)
 * for one fixed upstream origin, and relays the status, the headers less
 * hop-by-hop ones, and the body with backpressure. No routing, no pick, no
 * policy, timers, retries, breakers, X-Forwarded-* or traceparent: what
 * Maxine costs beyond this is what its features cost.
 *
 * Usage: node --import tsx bench/minimal-proxy.ts <upstream origin>
 * Listens on a free 127.0.0.1 port and prints {"port": n} as its first line.
 */
import { createServer, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, type Dispatcher } from 'undici';

const origin = process.argv[2];
if (origin === undefined || !/^http:\/\/127\.0\.0\.1:\d+$/.test(origin)) throw new Error('usage: minimal-proxy.ts http://127.0.0.1:<port>');

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);
const agent = new Agent({ pipelining: 1, headersTimeout: 0, bodyTimeout: 0 });

const server = createServer((req, res) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  agent.dispatch({ origin, path: req.url ?? '/', method: req.method as Dispatcher.HttpMethod, body: hasBody ? req : null }, {
    onRequestStart() {},
    onResponseStart(_controller, statusCode: number, upstream: IncomingHttpHeaders) {
      const out: OutgoingHttpHeaders = {};
      for (const name in upstream) if (!HOP_BY_HOP.has(name)) out[name] = upstream[name];
      res.writeHead(statusCode, out);
    },
    onResponseData(controller, chunk: Buffer) {
      if (!res.write(chunk)) {
        controller.pause();
        res.once('drain', () => controller.resume());
      }
    },
    onResponseEnd() {
      res.end();
    },
    onResponseError() {
      if (res.headersSent) res.destroy();
      else res.writeHead(502, { 'content-length': 0 }).end();
    },
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
// The parent holds our stdin; when it ends, the parent is gone and so is our purpose.
process.stdin.on('end', () => process.exit(0)).resume();
