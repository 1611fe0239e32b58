/**
 * Everything that needs OpenTelemetry at run time. Loaded by tracing.ts only
 * when tracing is on, so that off, none of the SDK reaches the heap.
 */
import { performance } from 'node:perf_hooks';
import { FastifyOtelInstrumentation } from '@fastify/otel';
import { context, propagation, SpanKind, SpanStatusCode, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type ReadableSpan,
  type Sampler,
  type SpanExporter,
} from '@opentelemetry/sdk-trace';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { Instance, InstanceKey } from '../core/instance.ts';
import type { AttemptInfo, AttemptSpan, ProxyTracing } from '../proxy/forwarder.ts';
import { ForwardingStore } from '../store/forwarding-store.ts';
import type { RegistryStore } from '../store/store.ts';
import type { SamplerName, Tracing, TracingOptions, TracingSettings } from './tracing.ts';

/** Half the default MAXINE_SHUTDOWN_TIMEOUT_MS: a collector that hangs must not turn a clean stop into exit code 1. */
const SHUTDOWN_FLUSH_MS = 5_000;

/**
 * The context manager and propagator are process-wide in the API. Several
 * replicas in one process (the tests) share them, so they are registered
 * once and stay.
 */
let globalsRegistered = false;

function registerGlobals(): void {
  if (globalsRegistered) return;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  globalsRegistered = true;
}

function samplerOf(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}

/** The epoch-based clock spans use, for spans timed by hand. */
function now(): number {
  return performance.timeOrigin + performance.now();
}

function recordFailure(span: Span, error: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  if (error instanceof Error) span.recordException(error);
}

/**
 * Says when export starts failing and when it works again, not once per
 * batch: a collector that is down would otherwise fill the log.
 */
class ReportingExporter implements SpanExporter {
  private failing = false;

  constructor(
    private readonly inner: SpanExporter,
    private readonly endpoint: string,
    private readonly onWarning: (message: string) => void,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      const ok = result.code === ExportResultCode.SUCCESS;
      if (!ok && !this.failing) {
        this.onWarning(`exporting spans to ${this.endpoint} failed (${result.error?.message ?? 'no reason given'}); spans are dropped until it works again`);
      } else if (ok && this.failing) {
        this.onWarning(`exporting spans to ${this.endpoint} works again`);
      }
      this.failing = !ok;
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/**
 * A span around every write. Renewals are left out: they are the
 * heartbeat's hot path and never wait on I/O. Spans start in the active
 * context, so a write made for a request is a child of its span.
 */
class TracedStore extends ForwardingStore {
  constructor(
    inner: RegistryStore,
    private readonly tracer: Tracer,
  ) {
    super(inner);
  }

  override upsert(instance: Instance, renewedAt: number): Promise<Instance> {
    return this.traced('upsert', instanceAttributes(instance), () => this.inner.upsert(instance, renewedAt));
  }

  override update(instance: Instance, renewedAt: number, fencingToken: number | null): Promise<Instance | null> {
    return this.traced(
      'update',
      instanceAttributes(instance),
      () => this.inner.update(instance, renewedAt, fencingToken),
      (stored) => ({ 'maxine.store.conflict': stored === null }),
    );
  }

  override remove(key: InstanceKey, reason: 'deregistered'): Promise<number | null> {
    return this.traced('remove', instanceAttributes(key), () => this.inner.remove(key, reason));
  }

  /**
   * The leader sweeps four times a second, mostly finding nothing: a span
   * is made afterwards, and only for a sweep that removed something or failed.
   */
  override async expire(at: number, fencingToken: number): Promise<number> {
    const startTime = now();
    try {
      const removed = await this.inner.expire(at, fencingToken);
      if (removed > 0) this.tracer.startSpan('store.expire', { startTime, attributes: { ...this.storeAttributes(), 'maxine.store.removed': removed } }).end(now());
      return removed;
    } catch (error) {
      const span = this.tracer.startSpan('store.expire', { startTime, attributes: this.storeAttributes() });
      recordFailure(span, error);
      span.end(now());
      throw error;
    }
  }

  override evict(key: InstanceKey, fencingToken: number): Promise<number | null> {
    return this.traced('evict', instanceAttributes(key), () => this.inner.evict(key, fencingToken));
  }

  override putKv(key: string, value: string | null): Promise<number> {
    return this.traced('putKv', { 'maxine.kv.key': key, 'maxine.kv.delete': value === null }, () => this.inner.putKv(key, value));
  }

  override putKvIf(key: string, expected: string | null, value: string | null): Promise<number | null> {
    return this.traced(
      'putKvIf',
      { 'maxine.kv.key': key, 'maxine.kv.delete': value === null },
      () => this.inner.putKvIf(key, expected, value),
      (revision) => ({ 'maxine.store.conflict': revision === null }),
    );
  }

  private storeAttributes(): Attributes {
    return { 'maxine.store.kind': this.kind };
  }

  private async traced<T>(operation: string, attributes: Attributes, write: () => Promise<T>, outcome?: (result: T) => Attributes): Promise<T> {
    const span = this.tracer.startSpan(`store.${operation}`, { kind: SpanKind.INTERNAL, attributes: { ...this.storeAttributes(), ...attributes } });
    try {
      const result = await write();
      if (outcome !== undefined) span.setAttributes(outcome(result));
      return result;
    } catch (error) {
      recordFailure(span, error);
      throw error;
    } finally {
      span.end();
    }
  }
}

function instanceAttributes(key: InstanceKey): Attributes {
  return { 'maxine.service': key.service, 'maxine.instance.id': key.id };
}

/** One attempt's client span, following the HTTP client semantic conventions. */
class ClientSpan implements AttemptSpan {
  readonly traceparent: string;
  readonly tracestate: string | undefined;
  private readonly span: Span;

  constructor(tracer: Tracer, parent: Context, info: AttemptInfo) {
    const origin = new URL(info.origin);
    const attributes: Attributes = {
      'http.request.method': info.method,
      'server.address': origin.hostname,
      'server.port': origin.port === '' ? (origin.protocol === 'https:' ? 443 : 80) : Number(origin.port),
      // Without the query: it may carry credentials meant for the instance alone.
      'url.full': info.origin + pathOnly(info.path),
      'maxine.service': info.service,
      'maxine.instance.id': info.instanceId,
    };
    if (info.resendCount > 0) attributes['http.request.resend_count'] = info.resendCount;
    this.span = tracer.startSpan(info.method, { kind: SpanKind.CLIENT, attributes }, parent);
    const { traceId, spanId, traceFlags, traceState } = this.span.spanContext();
    this.traceparent = `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, '0')}`;
    const state = traceState?.serialize();
    this.tracestate = state === undefined || state === '' ? undefined : state;
  }

  response(status: number): void {
    this.span.setAttribute('http.response.status_code', status);
    if (status >= 400) this.span.setStatus({ code: SpanStatusCode.ERROR });
  }

  failed(failure: string): void {
    this.span.setAttribute('error.type', failure);
    this.span.setStatus({ code: SpanStatusCode.ERROR, message: failure });
  }

  end(): void {
    this.span.end();
  }
}

function pathOnly(url: string): string {
  const queryAt = url.indexOf('?');
  return queryAt < 0 ? url : url.slice(0, queryAt);
}

function proxyTracing(tracer: Tracer): ProxyTracing {
  return {
    exchange: () => {
      const parent = context.active();
      return { attempt: (info) => new ClientSpan(tracer, parent, info) };
    },
  };
}

/** @fastify/otel for the server spans, then the x-trace-id header from the request's span. */
function fastifyPlugin(instrumentation: FastifyOtelInstrumentation): FastifyPluginAsync {
  const otel = instrumentation.plugin();
  const plugin: FastifyPluginAsync = async (app) => {
    await app.register(otel);
    app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
      const { span } = request.opentelemetry();
      if (span !== null) reply.header('x-trace-id', span.spanContext().traceId);
      done();
    });
  };
  // Hooks and decorations apply to the whole app, not to an encapsulated child.
  return Object.assign(plugin, { [Symbol.for('skip-override')]: true });
}

export function startOpenTelemetry(settings: TracingSettings, options: TracingOptions): Tracing {
  registerGlobals();
  const Exporter = settings.protocol === 'http/json' ? JsonExporter : ProtobufExporter;
  const exporter = new Exporter({
    url: settings.endpoint,
    headers: { ...settings.headers },
    timeoutMillis: settings.timeoutMs,
    compression: settings.compression as NonNullable<ConstructorParameters<typeof Exporter>[0]>['compression'],
  });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ ...settings.resource, 'service.instance.id': options.instanceId }),
    sampler: samplerOf(settings.sampler, settings.ratio),
    spanProcessors: [new BatchSpanProcessor({ exporter: new ReportingExporter(exporter, settings.endpoint, options.onWarning), ...settings.batch })],
  });
  const tracer = provider.getTracer('maxine');
  const instrumentation = new FastifyOtelInstrumentation({
    // A span per hook would be a dozen per request, and one for the handler would repeat the request's:
    // store and proxy spans are children of the request's span itself.
    instrumentHooks: false,
    instrumentHandler: false,
    requestHook: (span, request) => {
      const route = request.routeOptions.url;
      span.updateName(route === undefined ? request.method : `${request.method} ${route}`);
      // The query may carry tokens (event streams take one there): spans get the path only.
      span.setAttribute('url.path', pathOnly(request.url));
    },
  });
  instrumentation.setTracerProvider(provider);
  return {
    settings,
    provider,
    plugin: fastifyPlugin(instrumentation),
    proxy: proxyTracing(tracer),
    traceStore: (store) => new TracedStore(store, tracer),
    shutdown: async () => {
      instrumentation.disable();
      let timer: NodeJS.Timeout | undefined;
      const cutOff = new Promise<'cut off'>((resolve) => {
        timer = setTimeout(() => resolve('cut off'), SHUTDOWN_FLUSH_MS);
      });
      try {
        const outcome = await Promise.race([provider.shutdown(), cutOff]);
        if (outcome === 'cut off') options.onWarning(`flushing spans to ${settings.endpoint} took over ${SHUTDOWN_FLUSH_MS} ms; the rest are dropped`);
      } catch (error) {
        options.onWarning(`flushing spans to ${settings.endpoint} failed: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
