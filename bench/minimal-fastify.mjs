// @ts-check
/**
 * The HTTP scenarios' floor: about the least a fastify server can do for the
 * same requests, in a child process. It replays the bytes captured from
 * Maxine, like the bare server, but through fastify as Maxine uses it: no
 * logger, one route per captured method and path, the query string or JSON
 * body validated against a schema of its fields (ajv, as fastify compiles
 * it), the reply sent as a Buffer with the headers Maxine wrote. No hooks,
 * no auth, no registry, no serialisation: what Maxine costs beyond this is
 * Maxine's; what this costs beyond the bare server is the framework the API
 * is built on.
 *
 * Plain JavaScript, run by node without the TypeScript loader: the same app
 * under tsx measured about 5 µs more per request (node's own stream
 * functions, not fastify's, ran slower; docs/performance.md), and the floor
 * is meant to be fastify at its cheapest.
 *
 * Usage: node bench/minimal-fastify.mjs <replies.json>
 * Listens on a free 127.0.0.1 port and prints {"port": n} as its first line.
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

/** @typedef {import('./bare-server.ts').CapturedReply} CapturedReply */
/** @typedef {{ status: number, answers: { headers: Record<string, string>, body: Buffer }[], next: number }} Replay */

const file = process.argv[2];
if (file === undefined) throw new Error('usage: minimal-fastify.mjs <replies.json>');
/** @type {CapturedReply[]} */
const captured = JSON.parse(readFileSync(file, 'utf8'));

/**
 * Every field of a captured query string or JSON body, required and of the JSON type it had.
 * @param {Record<string, unknown>} fields
 */
function schemaOf(fields) {
  /** @type {Record<string, { type: string }>} */
  const properties = {};
  for (const [name, value] of Object.entries(fields)) {
    properties[name] = { type: typeof value === 'number' ? 'number' : typeof value === 'boolean' ? 'boolean' : 'string' };
  }
  return { type: 'object', properties, required: Object.keys(properties), additionalProperties: false };
}

const app = Fastify({ logger: false });
/** @type {Map<string, Replay>} replays by method and whole URL (several may share a route) */
const replays = new Map();
/** @type {Map<string, { method: string, url: string, schema: Record<string, unknown> }>} one route per method and path */
const routes = new Map();
for (const r of captured) {
  replays.set(`${r.method} ${r.path}`, {
    status: r.status,
    answers: r.answers.map((a) => ({ headers: Object.fromEntries(a.headers), body: Buffer.from(a.body, 'base64') })),
    next: 0,
  });
  const [url = '', query] = r.path.split('?');
  const key = `${r.method} ${url}`;
  if (routes.has(key)) continue;
  /** @type {Record<string, unknown>} */
  const schema = {};
  if (query !== undefined) schema.querystring = schemaOf(Object.fromEntries(new URLSearchParams(query)));
  if (r.requestBody !== undefined) schema.body = schemaOf(JSON.parse(r.requestBody));
  routes.set(key, { method: r.method, url, schema });
}
for (const { method, url, schema } of routes.values()) {
  app.route({
    method: /** @type {'GET' | 'POST'} */ (method),
    url,
    schema,
    handler: (request, reply) => {
      const replay = replays.get(`${request.method} ${request.url}`);
      if (replay === undefined) return reply.code(404).send();
      const answer = /** @type {{ headers: Record<string, string>, body: Buffer }} */ (replay.answers[replay.next]);
      replay.next = (replay.next + 1) % replay.answers.length;
      return reply.code(replay.status).headers(answer.headers).send(answer.body);
    },
  });
}

const address = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`${JSON.stringify({ port: Number(new URL(address).port) })}\n`);

// The parent holds our stdin; when it ends, the parent is gone and so is our purpose.
process.stdin.on('end', () => process.exit(0)).resume();
