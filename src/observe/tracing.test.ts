import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTracing, tracingSettings, TracingConfigError } from './tracing.ts';

test('tracing is off unless an exporter or an OTLP endpoint is asked for', async () => {
  assert.equal(tracingSettings({}), null);
  assert.equal(tracingSettings({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' }), null);
  assert.equal(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }), null, 'empty means unset');
  assert.equal(tracingSettings({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), null);
  assert.equal(tracingSettings({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }), null);
  assert.equal(await startTracing({}, { instanceId: 'i', onWarning: () => assert.fail('no warning when off') }), null);
  assert.ok(tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp' }));
  assert.ok(tracingSettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' }));
});

test('the endpoint: the traces one as given, else the base one with /v1/traces', () => {
  assert.equal(tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp' })?.endpoint, 'http://localhost:4318/v1/traces');
  assert.equal(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })?.endpoint, 'http://c:4318/v1/traces');
  assert.equal(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c/otlp/' })?.endpoint, 'https://c/otlp/v1/traces');
  assert.equal(
    tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:9/spans' })?.endpoint,
    'http://t:9/spans',
  );
});

test('defaults follow the specification, with service.name maxine', () => {
  const settings = tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp' })!;
  assert.equal(settings.protocol, 'http/protobuf');
  assert.equal(settings.sampler, 'parentbased_always_on');
  assert.equal(settings.ratio, 1);
  assert.equal(settings.timeoutMs, 10_000);
  assert.equal(settings.compression, 'none');
  assert.deepEqual(settings.resource, { 'service.name': 'maxine' });
  assert.deepEqual(settings.headers, {});
  assert.deepEqual(settings.batch, {});
});

test('headers, resource attributes, sampler and batching come from their variables', () => {
  const settings = tracingSettings({
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_HEADERS: 'api-key=general, tenant=a%2Cb',
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'api-key=traces',
    OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attributes,deployment.environment=prod',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.25',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
    OTEL_EXPORTER_OTLP_TIMEOUT: '3000',
    OTEL_BSP_SCHEDULE_DELAY: '200',
    OTEL_BSP_MAX_QUEUE_SIZE: '4096',
  })!;
  assert.deepEqual(settings.headers, { 'api-key': 'traces', tenant: 'a,b' });
  assert.deepEqual(settings.resource, { 'service.name': 'from-attributes', 'deployment.environment': 'prod' });
  assert.equal(settings.sampler, 'parentbased_traceidratio');
  assert.equal(settings.ratio, 0.25);
  assert.equal(settings.protocol, 'http/json');
  assert.equal(settings.compression, 'gzip');
  assert.equal(settings.timeoutMs, 3000);
  assert.deepEqual(settings.batch, { scheduledDelayMillis: 200, maxQueueSize: 4096 });
  assert.equal(tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SERVICE_NAME: 'named', OTEL_RESOURCE_ATTRIBUTES: 'service.name=other' })!.resource['service.name'], 'named');
});

test('what Maxine cannot honour is refused at start', () => {
  for (const env of [
    { OTEL_TRACES_EXPORTER: 'zipkin' },
    { OTEL_TRACES_EXPORTER: 'otlp,console' },
    { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
    { OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'jaeger_remote' },
    { OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' },
    { OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' },
    { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' },
    { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'ftp://collector' },
    { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_HEADERS: 'no-equals-sign' },
    { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd' },
    { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TIMEOUT: '0' },
    { OTEL_TRACES_EXPORTER: 'otlp', OTEL_BSP_MAX_QUEUE_SIZE: '-1' },
  ]) {
    assert.throws(() => tracingSettings(env), TracingConfigError, JSON.stringify(env));
  }
});
