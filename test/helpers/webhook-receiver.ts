import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A webhook receiver for tests: a real node:http server on 127.0.0.1 (port 0,
 * so the OS picks a free one) that records every request it gets and answers
 * it with the next status of its `script`, or with `fallback` once the script
 * is used up. Both are mutable, so a test can change the answers as it goes.
 * A test that needs another kind of answer (never answering, a redirect, a
 * Retry-After header…) passes `respond`, which then answers every request.
 *
 * Tests build their own views on top of it (filters by rule, waits for an
 * arrival, the state of a delivery when a request came in…).
 */

/** One request as the receiver got it; recorded once its body is complete, before it is answered. */
export interface WebhookRequest<Json = unknown> {
  /** Epoch ms (Date.now()) when the body was complete. */
  readonly at: number;
  readonly method: string;
  /** The path and query it was sent to (req.url). */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** The body exactly as sent: what a signature covers. */
  readonly raw: string;
  /** The body parsed as JSON; undefined when it is not JSON. */
  readonly json: Json | undefined;
  /** The status it was answered with from `script` or `fallback`; undefined when `respond` answered it. */
  readonly answered: number | undefined;
}

/** Answers one request itself; `index` is the request's place in `requests`. */
export type WebhookRespond<Json = unknown> = (res: ServerResponse, request: WebhookRequest<Json>, index: number) => void;

export interface WebhookReceiverOptions<Json = unknown> {
  /** The status once `script` is used up; 200 unless told. */
  fallback?: number;
  /** Statuses for the first requests, in order (the array itself is used, and shifted). */
  script?: number[];
  /** Appended to the origin to make `url`, e.g. '/hooks/x?token=t'; none unless told. */
  path?: string;
  /** Answers every request instead of `script`/`fallback`. */
  respond?: WebhookRespond<Json>;
}

export interface WebhookReceiver<Json = unknown> {
  /** The origin followed by the `path` option: http://127.0.0.1:<port> when there is none. */
  readonly url: string;
  /** http://127.0.0.1:<port> */
  readonly origin: string;
  /** Every request so far, in order of arrival. */
  readonly requests: WebhookRequest<Json>[];
  /** Statuses for the next requests, in order; once used up, `fallback`. */
  script: number[];
  fallback: number;
  /** Drops every connection (answered or not) and stops listening. */
  close(): Promise<void>;
}

/** Starts a webhook receiver on 127.0.0.1; see the module comment. */
export async function startWebhookReceiver<Json = unknown>(options: WebhookReceiverOptions<Json> = {}): Promise<WebhookReceiver<Json>> {
  const { respond } = options;
  const requests: WebhookRequest<Json>[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let json: Json | undefined;
      try {
        json = JSON.parse(raw) as Json;
      } catch {
        json = undefined;
      }
      const answered = respond === undefined ? (receiver.script.shift() ?? receiver.fallback) : undefined;
      const request: WebhookRequest<Json> = { at: Date.now(), method: req.method ?? '', path: req.url ?? '', headers: req.headers, raw, json, answered };
      const index = requests.push(request) - 1;
      if (answered === undefined) {
        respond?.(res, request, index);
        return;
      }
      res.writeHead(answered, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: answered < 300 }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const receiver: WebhookReceiver<Json> = {
    url: `${origin}${options.path ?? ''}`,
    origin,
    requests,
    script: options.script ?? [],
    fallback: options.fallback ?? 200,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return receiver;
}
