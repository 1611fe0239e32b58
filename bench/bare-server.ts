/**
 * The reference the benchmarks compare Maxine with: plain node:http replaying
 * responses captured from Maxine for the same requests, byte for byte (status,
 * content-type, body). What separates the two results is then Maxine's own
 * work: routing, validation, the registry and serialisation.
 *
 * Usage: node --import tsx bench/bare-server.ts <replies.json>
 * Listens on a free 127.0.0.1 port and prints {"port": N} as its first line.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as captured from Maxine; the file holds a list of these. */
export interface CapturedReply {
  readonly method: string;
  /** Path with query string, exactly as the load generator sends it. */
  readonly path: string;
  /** The request's body as sent, when it had one (the minimal fastify floor validates it). */
  readonly requestBody?: string;
  readonly status: number;
  readonly contentType: string;
  /** Base64 bodies in the order Maxine gave them (round robin walks the instances); replayed in turn. */
  readonly bodies: readonly string[];
}

interface Replay {
  readonly status: number;
  readonly contentType: string;
  readonly bodies: readonly Buffer[];
  next: number;
}

const file = process.argv[2];
if (file === undefined) throw new Error('usage: bare-server.ts <replies.json>');
const replays = new Map<string, Replay>();
for (const r of JSON.parse(readFileSync(file, 'utf8')) as CapturedReply[]) {
  replays.set(`${r.method} ${r.path}`, {
    status: r.status,
    contentType: r.contentType,
    bodies: r.bodies.map((b) => Buffer.from(b, 'base64')),
    next: 0,
  });
}

const server = createServer((req, res) => {
  // The request body is read (any server must) but not parsed.
  req.resume();
  req.on('end', () => {
    const replay = replays.get(`${req.method} ${req.url}`);
    if (replay === undefined) {
      res.writeHead(404).end();
      return;
    }
    const body = replay.bodies[replay.next]!;
    replay.next = (replay.next + 1) % replay.bodies.length;
    res.writeHead(replay.status, { 'content-type': replay.contentType, 'content-length': body.length });
    res.end(body);
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});

// The parent holds our stdin; when it ends, the parent is gone and so is our purpose.
process.stdin.on('end', () => process.exit(0)).resume();
