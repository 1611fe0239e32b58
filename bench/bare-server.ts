/**
 * The reference the benchmarks compare Maxine with: plain node:http replaying
 * responses captured from Maxine for the same requests, byte for byte: the
 * status, every header Maxine wrote (its request id included) in Maxine's
 * order, and the body. node:http adds the same date and connection headers
 * to both. What separates the two results is then Maxine's own work:
 * routing, validation, the registry and serialisation.
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
  /** The timeout Maxine's `Keep-Alive` header gave, when it sent one: the replaying server keeps connections as long. */
  readonly keepAliveSeconds?: number;
  /** The answers in the order Maxine gave them (round robin walks the instances); replayed in turn. */
  readonly answers: readonly CapturedAnswer[];
}

/**
 * One answer: the headers Maxine's code wrote, as [name, value] in its order
 * (not those node:http writes on its own, which the replaying server's
 * node:http writes too), and the body in base64.
 */
export interface CapturedAnswer {
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
}

interface Replay {
  readonly status: number;
  readonly answers: readonly { readonly headers: Record<string, string>; readonly body: Buffer }[];
  next: number;
}

const file = process.argv[2];
if (file === undefined) throw new Error('usage: bare-server.ts <replies.json>');
const captured = JSON.parse(readFileSync(file, 'utf8')) as CapturedReply[];
const replays = new Map<string, Replay>();
for (const r of captured) {
  replays.set(`${r.method} ${r.path}`, {
    status: r.status,
    // An object in Maxine's order, as Maxine gives `writeHead` its headers.
    answers: r.answers.map((a) => ({ headers: Object.fromEntries(a.headers), body: Buffer.from(a.body, 'base64') })),
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
    const answer = replay.answers[replay.next]!;
    replay.next = (replay.next + 1) % replay.answers.length;
    res.writeHead(replay.status, answer.headers);
    res.end(answer.body);
  });
});

const keepAliveSeconds = captured.find((r) => r.keepAliveSeconds !== undefined)?.keepAliveSeconds;
if (keepAliveSeconds !== undefined) server.keepAliveTimeout = keepAliveSeconds * 1000;

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});

// The parent holds our stdin; when it ends, the parent is gone and so is our purpose.
process.stdin.on('end', () => process.exit(0)).resume();
