import type { FastifyPluginAsync } from 'fastify';
import type { TracerProvider } from '@opentelemetry/sdk-trace';
import type { ProxyTracing } from '../proxy/forwarder.ts';
import type { RegistryStore } from '../store/store.ts';

/** The environment tracing reads its OTEL_* variables from (process.env in production). */
export type TracingEnv = Readonly<Record<string, string | undefined>>;

const SAMPLERS = [
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
  'always_on',
  'always_off',
  'traceidratio',
] as const;
export type SamplerName = (typeof SAMPLERS)[number];

const PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** The OTEL_* variables as tracing uses them; every field already validated. */
export interface TracingSettings {
  /** Where spans are POSTed: the traces endpoint, or the base endpoint with /v1/traces appended. */
  readonly endpoint: string;
  readonly protocol: Protocol;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly compression: 'gzip' | 'none';
  /** Resource attributes, service.name included. */
  readonly resource: Readonly<Record<string, string>>;
  readonly sampler: SamplerName;
  /** The ratio of the traceidratio samplers (OTEL_TRACES_SAMPLER_ARG). */
  readonly ratio: number;
  readonly batch: BatchSettings;
}

/** OTEL_BSP_*: only those set; the SDK's defaults fill in the rest. */
export interface BatchSettings {
  readonly scheduledDelayMillis?: number;
  readonly exportTimeoutMillis?: number;
  readonly maxQueueSize?: number;
  readonly maxExportBatchSize?: number;
}

/** An OTEL_* variable Maxine cannot honour: refused at start rather than silently exporting nothing, or everything. */
export class TracingConfigError extends Error {
  override readonly name = 'TracingConfigError';
}

/** What the server wires in when tracing is on. */
export interface Tracing {
  readonly settings: TracingSettings;
  readonly provider: TracerProvider;
  /** @fastify/otel (a server span per request) and the x-trace-id response header. */
  readonly plugin: FastifyPluginAsync;
  /** Client spans for the proxy's attempts. */
  readonly proxy: ProxyTracing;
  /** `store` with a span around every write. */
  traceStore(store: RegistryStore): RegistryStore;
  /** Flushes the spans still buffered; bounded, so a stuck collector cannot hold up shutdown. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** This replica's MAXINE_INSTANCE_ID, as the service.instance.id resource attribute. */
  readonly instanceId: string;
  /** Export failures (once per outage) and a flush cut short at shutdown. */
  readonly onWarning: (message: string) => void;
}

const DEFAULT_ENDPOINT = 'http://localhost:4318';
const TRACES_PATH = 'v1/traces';
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_SERVICE_NAME = 'maxine';

/** The spec says an empty value means unset. */
function read(env: TracingEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function httpUrl(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TracingConfigError(`${name} must be an http or https URL, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TracingConfigError(`${name} must be an http or https URL, got "${value}"`);
  }
  return url.href;
}

function wholeNumber(env: TracingEnv, name: string, min: number): number | undefined {
  const raw = read(env, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min) throw new TracingConfigError(`${name} must be a whole number >= ${min}, got "${raw}"`);
  return n;
}

/** `key=value,key2=value2`, values percent-encoded (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES). */
function keyValueList(name: string, raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  for (const item of raw.split(',')) {
    if (item.trim() === '') continue;
    const at = item.indexOf('=');
    const key = at < 0 ? '' : item.slice(0, at).trim();
    if (key === '') throw new TracingConfigError(`${name} must be a list of key=value pairs, got "${item.trim()}"`);
    try {
      out[key] = decodeURIComponent(item.slice(at + 1).trim());
    } catch {
      throw new TracingConfigError(`${name}: the value of ${key} is not validly percent-encoded`);
    }
  }
  return out;
}

function exporterWanted(env: TracingEnv): boolean {
  if (read(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return false;
  const exporters = read(env, 'OTEL_TRACES_EXPORTER');
  if (exporters === undefined) {
    return read(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined || read(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined;
  }
  const names = exporters.split(',').map((name) => name.trim().toLowerCase());
  const unsupported = names.filter((name) => name !== 'otlp' && name !== 'none');
  if (unsupported.length > 0) {
    throw new TracingConfigError(`OTEL_TRACES_EXPORTER: Maxine exports traces with otlp only (or none), got "${unsupported.join(',')}"`);
  }
  return names.includes('otlp');
}

function sampler(env: TracingEnv): { sampler: SamplerName; ratio: number } {
  const raw = read(env, 'OTEL_TRACES_SAMPLER')?.toLowerCase() ?? 'parentbased_always_on';
  const name = SAMPLERS.find((s) => s === raw);
  if (name === undefined) throw new TracingConfigError(`OTEL_TRACES_SAMPLER must be one of ${SAMPLERS.join(', ')}, got "${raw}"`);
  const arg = read(env, 'OTEL_TRACES_SAMPLER_ARG');
  if (!name.endsWith('traceidratio') || arg === undefined) return { sampler: name, ratio: 1 };
  const ratio = Number(arg);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    throw new TracingConfigError(`OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1 for ${name}, got "${arg}"`);
  }
  return { sampler: name, ratio };
}

/**
 * Tracing's settings from the standard OTEL_* variables; null when tracing
 * is off: unless OTEL_TRACES_EXPORTER=otlp or an OTLP endpoint is set, and
 * always with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
 */
export function tracingSettings(env: TracingEnv): TracingSettings | null {
  if (!exporterWanted(env)) return null;
  const tracesEndpoint = read(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const base = read(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const endpoint =
    tracesEndpoint !== undefined
      ? httpUrl('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', tracesEndpoint)
      : new URL(TRACES_PATH, httpUrl('OTEL_EXPORTER_OTLP_ENDPOINT', base ?? DEFAULT_ENDPOINT).replace(/\/?$/, '/')).href;
  const protocol = read(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? read(env, 'OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf';
  const knownProtocol = PROTOCOLS.find((p) => p === protocol);
  if (knownProtocol === undefined) {
    throw new TracingConfigError(`OTEL_EXPORTER_OTLP_PROTOCOL: Maxine exports over ${PROTOCOLS.join(' or ')}, got "${protocol}"`);
  }
  const compression = read(env, 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION') ?? read(env, 'OTEL_EXPORTER_OTLP_COMPRESSION') ?? 'none';
  if (compression !== 'gzip' && compression !== 'none') {
    throw new TracingConfigError(`OTEL_EXPORTER_OTLP_COMPRESSION must be gzip or none, got "${compression}"`);
  }
  const resource = keyValueList('OTEL_RESOURCE_ATTRIBUTES', read(env, 'OTEL_RESOURCE_ATTRIBUTES'));
  resource['service.name'] = read(env, 'OTEL_SERVICE_NAME') ?? resource['service.name'] ?? DEFAULT_SERVICE_NAME;
  const batch: Record<string, number> = {};
  for (const [key, name, min] of [
    ['scheduledDelayMillis', 'OTEL_BSP_SCHEDULE_DELAY', 0],
    ['exportTimeoutMillis', 'OTEL_BSP_EXPORT_TIMEOUT', 1],
    ['maxQueueSize', 'OTEL_BSP_MAX_QUEUE_SIZE', 1],
    ['maxExportBatchSize', 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 1],
  ] as const) {
    const value = wholeNumber(env, name, min);
    if (value !== undefined) batch[key] = value;
  }
  return {
    endpoint,
    protocol: knownProtocol,
    // Signal-specific headers win over the general ones, key by key.
    headers: {
      ...keyValueList('OTEL_EXPORTER_OTLP_HEADERS', read(env, 'OTEL_EXPORTER_OTLP_HEADERS')),
      ...keyValueList('OTEL_EXPORTER_OTLP_TRACES_HEADERS', read(env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS')),
    },
    timeoutMs: wholeNumber(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 1) ?? wholeNumber(env, 'OTEL_EXPORTER_OTLP_TIMEOUT', 1) ?? DEFAULT_TIMEOUT_MS,
    compression,
    resource,
    ...sampler(env),
    batch,
  };
}

/**
 * Tracing from the OTEL_* variables in `env`, or null when it is off. Off,
 * nothing is set up: no tracer provider, no context manager, no fastify
 * hooks, and the OpenTelemetry SDK is never even loaded.
 */
export async function startTracing(env: TracingEnv, options: TracingOptions): Promise<Tracing | null> {
  const settings = tracingSettings(env);
  if (settings === null) return null;
  const { startOpenTelemetry } = await import('./otel.ts');
  return startOpenTelemetry(settings, options);
}
