/**
 * A stand-in for the services Maxine fronts: plain node:http on 127.0.0.1
 * answering GET (or HEAD) /hello and /health with 200 and a fixed JSON body
 * of about 100 bytes; anything else is a 404, so a request that is not the
 * one meant shows up as a failure rather than as a pass.
 *
 * Usage: node --import tsx bench/upstream-server.ts [ports]
 * Listens on `ports` (default 1) free 127.0.0.1 ports and prints
 * {"ports": [...]} as its first line. On SIGTERM it prints how many requests
 * it answered per path, {"served": {...}}, and exits.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the upstream reports when it is stopped. */
export interface UpstreamServed {
  readonly served: Record<string, number>;
}

/** The body every answered request gets (100 bytes). */
const UPSTREAM_BODY = JSON.stringify({ service: 'bench-upstream', status: 'ok', message: 'hello from the bench upstream', n: 1234567890 });

const count = Number(process.argv[2] ?? '1');
if (!Number.isInteger(count) || count < 1 || count > 5000) throw new Error('usage: upstream-server.ts [ports 1..5000]');

const body = Buffer.from(UPSTREAM_BODY);
const served: Record<string, number> = { '/hello': 0, '/health': 0, other: 0 };

function handle(req: IncomingMessage, res: ServerResponse): void {
  // A request body is read (any server must) but not looked at.
  req.resume();
  const path = req.url ?? '';
  if ((path === '/hello' || path === '/health') && (req.method === 'GET' || req.method === 'HEAD')) {
    served[path]!++;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  served.other!++;
  res.writeHead(404, { 'content-length': 0 }).end();
}

const servers: Server[] = [];
const ports: number[] = [];
for (let i = 0; i < count; i++) {
  const server = createServer(handle);
  servers.push(server);
  ports.push(
    await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    }),
  );
}
process.stdout.write(`${JSON.stringify({ ports })}\n`);

process.on('SIGTERM', () => {
  // stdout is a pipe: written synchronously on Linux, so it is out before the exit.
  process.stdout.write(`${JSON.stringify({ served } satisfies UpstreamServed)}\n`);
  process.exit(0);
});
// The parent holds our stdin; when it ends, the parent is gone and so is our purpose.
process.stdin.on('end', () => process.exit(0)).resume();
