import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { closedPort, waitFor } from '../../src/health/test-upstreams.ts';
import { echo, upstream, type Echo, type Running } from '../../src/proxy/test-support.ts';
import { startTestMaxine, type TestMaxine } from '../helpers/maxine.ts';

const REGISTER = '/api/maxine/serviceops/register';
const HEX32 = /^[0-9a-f]{32}$/;

/** OTLP's SpanKind (SPAN_KIND_SERVER = 2 ...), as exported. */
const KIND = { internal: 1, server: 2, client: 3 } as const;

interface ExportedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly name: string;
  readonly kind: number;
  readonly attributes: Record<string, unknown>;
  readonly status: { code?: number } | undefined;
  /** The resource's service.name. */
  readonly service: unknown;
}

interface Export {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

interface Receiver {
  readonly url: string;
  readonly exports: Export[];
  close(): Promise<void>;
}

/** An OTLP/HTTP collector stand-in: takes POSTs of spans and keeps them. */
async function startReceiver(): Promise<Receiver> {
  const exports: Export[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST') return void res.writeHead(405).end();
      exports.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      const json = req.headers['content-type'] === 'application/json';
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' }).end(json ? '{}' : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exports,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The spans of OTLP/HTTP JSON exports (ids in hex, as the JSON encoding has them). */
function jsonSpans(exports: readonly Export[]): ExportedSpan[] {
  const spans: ExportedSpan[] = [];
  for (const { body } of exports) {
    for (const resourceSpans of JSON.parse(body.toString('utf8')).resourceSpans) {
      const service = attributesOf(resourceSpans.resource.attributes)['service.name'];
      for (const scopeSpans of resourceSpans.scopeSpans) {
        for (const span of scopeSpans.spans) {
          spans.push({
            traceId: span.traceId,
            spanId: span.spanId,
            parentSpanId: span.parentSpanId || undefined,
            name: span.name,
            kind: span.kind,
            attributes: attributesOf(span.attributes),
            status: span.status,
            service,
          });
        }
      }
    }
  }
  return spans;
}

function attributesOf(list: { key: string; value: Record<string, unknown> }[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list) {
    const [kind, raw] = Object.entries(value)[0] ?? [];
    // JSON carries 64-bit integers as strings.
    out[key] = kind === 'intValue' ? Number(raw) : raw;
  }
  return out;
}

/**
 * Protocol Buffers wire format, just enough of it for OTLP spans: the
 * fields of one message as [field number, bytes] for length-delimited ones
 * and [field number, number] for varints.
 */
function protoFields(buffer: Buffer): [number, Buffer | number][] {
  const fields: [number, Buffer | number][] = [];
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = buffer[at++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  while (at < buffer.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    switch (tag & 7) {
      case 0:
        fields.push([field, varint()]);
        break;
      case 1:
        at += 8;
        break;
      case 2: {
        const length = varint();
        fields.push([field, buffer.subarray(at, at + length)]);
        at += length;
        break;
      }
      case 5:
        at += 4;
        break;
      default:
        throw new Error(`unexpected wire type ${tag & 7}`);
    }
  }
  return fields;
}

const nested = (fields: [number, Buffer | number][], number: number): Buffer[] =>
  fields.filter(([field, value]) => field === number && Buffer.isBuffer(value)).map(([, value]) => value as Buffer);

/** ExportTraceServiceRequest.resource_spans(1).scope_spans(2).spans(2): trace_id(1), span_id(2), parent_span_id(4), name(5), kind(6). */
function protobufSpans(exports: readonly Export[]): Pick<ExportedSpan, 'traceId' | 'spanId' | 'parentSpanId' | 'name' | 'kind'>[] {
  const spans = [];
  for (const { body } of exports) {
    for (const resourceSpans of nested(protoFields(body), 1)) {
      for (const scopeSpans of nested(protoFields(resourceSpans), 2)) {
        for (const span of nested(protoFields(scopeSpans), 2)) {
          const fields = protoFields(span);
          const parent = nested(fields, 4)[0];
          spans.push({
            traceId: nested(fields, 1)[0]!.toString('hex'),
            spanId: nested(fields, 2)[0]!.toString('hex'),
            parentSpanId: parent === undefined || parent.length === 0 ? undefined : parent.toString('hex'),
            name: nested(fields, 5)[0]!.toString('utf8'),
            kind: (fields.find(([field]) => field === 6)?.[1] as number | undefined) ?? 0,
          });
        }
      }
    }
  }
  return spans;
}

let traceCounter = 0;

/** A caller's trace context: a fresh trace id and the caller's span id. */
function callerContext(): { traceId: string; callerSpanId: string; traceparent: string } {
  traceCounter++;
  const traceId = `4bf92f3577b34da6a3ce929d${traceCounter.toString(16).padStart(8, '0')}`;
  const callerSpanId = `00f067aa0ba9${traceCounter.toString(16).padStart(4, '0')}`;
  return { traceId, callerSpanId, traceparent: `00-${traceId}-${callerSpanId}-01` };
}

describe('tracing on: spans exported over OTLP/HTTP (JSON)', () => {
  let receiver: Receiver;
  let instance: Running;
  let maxine: TestMaxine;
  /** What the upstream instance received, newest last. */
  const received: Echo[] = [];

  const spans = () => jsonSpans(receiver.exports);
  async function spansOfTrace(traceId: string, atLeast: number, what: string): Promise<ExportedSpan[]> {
    await waitFor(() => spans().filter((s) => s.traceId === traceId).length >= atLeast, 5_000, what);
    return spans().filter((s) => s.traceId === traceId);
  }

  before(async () => {
    receiver = await startReceiver();
    instance = await upstream((req, res) => {
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body: '' });
      echo(req, res);
    });
    maxine = await startTestMaxine({ proxyOutlierConsecutiveFailures: '0' }, undefined, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-key=s3cret%20key',
      OTEL_SERVICE_NAME: 'maxine-under-test',
      OTEL_BSP_SCHEDULE_DELAY: '20',
    });
  });
  after(async () => {
    await maxine.stop();
    await instance.close();
    await receiver.close();
  });

  test('a request with a traceparent gets a server span in that trace, under the caller', async () => {
    const { traceId, callerSpanId, traceparent } = callerContext();
    const res = await maxine.call('GET', '/api/actuator/health', undefined, { traceparent });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-trace-id'), traceId);
    const [server] = await spansOfTrace(traceId, 1, 'the server span');
    assert.equal(server!.kind, KIND.server);
    assert.equal(server!.parentSpanId, callerSpanId);
    assert.equal(server!.name, 'GET /api/actuator/health');
    assert.equal(server!.attributes['http.route'], '/api/actuator/health');
    assert.equal(server!.attributes['http.response.status_code'], 200);
    assert.equal(server!.service, 'maxine-under-test');
    const exported = receiver.exports[0]!;
    assert.equal(exported.path, '/v1/traces');
    assert.equal(exported.headers['content-type'], 'application/json');
    assert.equal(exported.headers['x-collector-key'], 's3cret key', 'OTEL_EXPORTER_OTLP_HEADERS, percent-decoded');
  });

  test('without a traceparent a new trace starts, and x-trace-id names it', async () => {
    const res = await maxine.call('GET', '/api/actuator/info');
    const traceId = res.headers.get('x-trace-id') ?? '';
    assert.match(traceId, HEX32);
    const [server] = await spansOfTrace(traceId, 1, 'the server span');
    assert.equal(server!.kind, KIND.server);
    assert.equal(server!.parentSpanId, undefined);
  });

  test('the query string never reaches a span', async () => {
    const { traceId, traceparent } = callerContext();
    await maxine.call('GET', '/api/maxine/serviceops/servers?format=v2', undefined, { traceparent });
    const [server] = await spansOfTrace(traceId, 1, 'the server span');
    assert.equal(server!.attributes['url.path'], '/api/maxine/serviceops/servers');
  });

  test('a registration has a store span, a child of its request span', async () => {
    const { traceId, traceparent } = callerContext();
    const res = await maxine.call('POST', REGISTER, { hostName: '127.0.0.1', nodeName: 'n1', serviceName: 'traced-reg', port: 9001, timeOut: 600 }, { traceparent });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-trace-id'), traceId);
    const trace = await spansOfTrace(traceId, 2, 'the server and store spans');
    const server = trace.find((s) => s.kind === KIND.server)!;
    const store = trace.find((s) => s.name === 'store.upsert');
    assert.ok(store, `a store.upsert span among ${trace.map((s) => s.name).join(', ')}`);
    assert.equal(store.parentSpanId, server.spanId);
    assert.equal(store.kind, KIND.internal);
    assert.equal(store.attributes['maxine.service'], 'traced-reg');
    assert.equal(store.attributes['maxine.instance.id'], 'n1');
    assert.equal(store.attributes['maxine.store.kind'], 'local');
  });

  test('a proxied request has a client span whose context the instance receives', async () => {
    await maxine.call('POST', REGISTER, { hostName: '127.0.0.1', nodeName: 'live', serviceName: 'traced-proxy', port: instance.port, timeOut: 600 });
    const { traceId, traceparent } = callerContext();
    const res = await maxine.call('GET', '/api/maxine/serviceops/proxy/traced-proxy/hello?token=secret', undefined, { traceparent, tracestate: 'vendor=1' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-trace-id'), traceId);
    const sent = received.at(-1)!;
    assert.equal(sent.url, '/hello?token=secret');
    const trace = await spansOfTrace(traceId, 2, 'the server and client spans');
    const server = trace.find((s) => s.kind === KIND.server)!;
    const client = trace.find((s) => s.kind === KIND.client);
    assert.ok(client, `a client span among ${trace.map((s) => s.name).join(', ')}`);
    assert.equal(client.parentSpanId, server.spanId);
    assert.equal(sent.headers.traceparent, `00-${traceId}-${client.spanId}-01`, "the instance's parent is the attempt's span");
    assert.equal(sent.headers.tracestate, 'vendor=1', "the caller's tracestate travels with the trace");
    assert.equal(client.name, 'GET');
    assert.equal(client.attributes['http.response.status_code'], 200);
    assert.equal(client.attributes['url.full'], `http://127.0.0.1:${instance.port}/hello`);
    assert.equal(client.attributes['server.port'], instance.port);
    assert.equal(client.attributes['maxine.instance.id'], 'live');
    assert.equal(server.attributes['http.route'], '/api/maxine/serviceops/proxy/:serviceName/*');
    assert.equal(server.attributes['http.response.status_code'], 200);
  });

  test('every attempt has its own client span', async () => {
    const dead = await closedPort();
    await maxine.call('POST', REGISTER, { hostName: '127.0.0.1', nodeName: 'dead', serviceName: 'traced-retry', port: dead, timeOut: 600 });
    await maxine.call('POST', REGISTER, { hostName: '127.0.0.1', nodeName: 'live', serviceName: 'traced-retry', port: instance.port, timeOut: 600 });
    // Round robin: of three requests, at least one tries the dead instance first and is retried on the live one.
    const traces = [callerContext(), callerContext(), callerContext()];
    for (const { traceparent } of traces) {
      assert.equal((await maxine.call('GET', '/api/maxine/serviceops/proxy/traced-retry/', undefined, { traceparent })).status, 200);
    }
    const retried: string[] = [];
    for (const { traceId } of traces) {
      const trace = await spansOfTrace(traceId, 2, 'the server and client spans');
      if (trace.some((s) => s.kind === KIND.client && s.attributes['maxine.instance.id'] === 'dead')) retried.push(traceId);
    }
    assert.ok(retried.length >= 1, 'a request was retried');
    const clientsOf = () => spans().filter((s) => s.traceId === retried[0] && s.kind === KIND.client);
    await waitFor(() => clientsOf().length === 2, 5_000, 'both client spans');
    const clients = clientsOf();
    const failed = clients.find((s) => s.attributes['maxine.instance.id'] === 'dead')!;
    const succeeded = clients.find((s) => s.attributes['maxine.instance.id'] === 'live')!;
    assert.equal(failed.attributes['error.type'], 'connect');
    assert.equal(failed.status?.code, 2, 'STATUS_CODE_ERROR');
    assert.equal(succeeded.attributes['http.request.resend_count'], 1);
    assert.equal(succeeded.parentSpanId, failed.parentSpanId, 'both attempts are children of the request span');
  });

  test('/api/actuator/traces lists recent requests with their trace ids (ops:read)', async () => {
    const { traceId, traceparent } = callerContext();
    await maxine.call('GET', '/api/actuator/health', undefined, { traceparent });
    const res = await maxine.call('GET', '/api/actuator/traces?limit=5');
    assert.equal(res.status, 200);
    assert.equal(res.json.tracing, true);
    const [newest, previous] = res.json.requests;
    assert.equal(newest.traceId, traceId);
    assert.equal(newest.route, '/api/actuator/health');
    assert.equal(newest.method, 'GET');
    assert.equal(newest.status, 200);
    assert.ok(newest.durationMs >= 0);
    assert.ok(Date.parse(newest.time) <= Date.now());
    assert.ok(previous, 'older requests follow');
    assert.equal((await maxine.call('GET', '/api/actuator/traces', undefined, { authorization: '' })).status, 401);
    assert.equal((await maxine.call('GET', '/api/actuator/traces?limit=0')).status, 400);
  });
});

describe('tracing on: the default protocol, http/protobuf, to a traces endpoint', () => {
  test('spans arrive as protobuf at the endpoint as given', async () => {
    const receiver = await startReceiver();
    const maxine = await startTestMaxine({}, undefined, {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/collector/traces`,
      OTEL_BSP_SCHEDULE_DELAY: '20',
    });
    try {
      const { traceId, callerSpanId, traceparent } = callerContext();
      assert.equal((await maxine.call('GET', '/api/actuator/health', undefined, { traceparent })).headers.get('x-trace-id'), traceId);
      await waitFor(() => protobufSpans(receiver.exports).some((s) => s.traceId === traceId), 5_000, 'the server span');
      const server = protobufSpans(receiver.exports).find((s) => s.traceId === traceId)!;
      assert.equal(server.parentSpanId, callerSpanId);
      assert.equal(server.kind, KIND.server);
      assert.equal(server.name, 'GET /api/actuator/health');
      assert.equal(receiver.exports[0]!.path, '/collector/traces');
      assert.equal(receiver.exports[0]!.headers['content-type'], 'application/x-protobuf');
    } finally {
      await maxine.stop();
      await receiver.close();
    }
  });
});

describe('tracing off (no OTEL_* variables)', () => {
  let maxine: TestMaxine;
  let instance: Running;
  const received: IncomingHttpHeaders[] = [];
  before(async () => {
    maxine = await startTestMaxine();
    instance = await upstream((req, res) => {
      received.push(req.headers);
      echo(req, res);
    });
  });
  after(async () => {
    await maxine.stop();
    await instance.close();
  });

  test("x-trace-id is the caller's trace id when it sent a valid traceparent, absent otherwise", async () => {
    const { traceId, traceparent } = callerContext();
    assert.equal((await maxine.call('GET', '/api/actuator/health', undefined, { traceparent })).headers.get('x-trace-id'), traceId);
    assert.equal((await maxine.call('GET', '/api/actuator/health')).headers.get('x-trace-id'), null);
    const invalid = `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`;
    assert.equal((await maxine.call('GET', '/api/actuator/health', undefined, { traceparent: invalid })).headers.get('x-trace-id'), null);
  });

  test("the proxy passes the caller's traceparent on unchanged, or starts one", async () => {
    await maxine.call('POST', REGISTER, { hostName: '127.0.0.1', nodeName: 'live', serviceName: 'untraced', port: instance.port, timeOut: 600 });
    const { traceparent } = callerContext();
    await maxine.call('GET', '/api/maxine/serviceops/proxy/untraced/x', undefined, { traceparent });
    assert.equal(received.at(-1)!.traceparent, traceparent);
    await maxine.call('GET', '/api/maxine/serviceops/proxy/untraced/x');
    assert.match(String(received.at(-1)!.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  test('/api/actuator/traces records nothing: off, no request pays for an onResponse hook', async () => {
    await maxine.call('GET', '/api/actuator/health');
    assert.deepEqual((await maxine.call('GET', '/api/actuator/traces')).json, { tracing: false, requests: [] });
  });
});
