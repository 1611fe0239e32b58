import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import { Catalog } from './core/catalog.ts';
import type { MaxineConfig } from './config/schema.ts';
import { buildApp } from './http/app.ts';
import type { CheckDefaults } from './health/check-spec.ts';
import { HealthChecker } from './health/checker.ts';
import type { ProxyPolicy } from './proxy/policy.ts';
import { Proxy } from './proxy/proxy.ts';
import { clientAddressResolver } from './http/client-address.ts';
import { Registry } from './registry/registry.ts';
import { RuntimeConfig } from './registry/runtime-config.ts';
import { openStore } from './store/open.ts';
import { FencedError } from './store/store.ts';
import { SwitchableLogDestination, type LogSwitches } from './observe/log-destination.ts';

const DEFAULT_LOG_SWITCHES: LogSwitches = { logAsync: true, logFormat: 'JSON', logJsonPrettify: false };

export interface RunningMaxine {
  readonly url: string;
  readonly logger: Logger;
  close(): Promise<void>;
}

function checkDefaultsOf(config: MaxineConfig): CheckDefaults {
  return {
    enabled: config.activeHealthChecksEnabled,
    path: config.activeHealthCheckPath,
    intervalMs: config.activeHealthCheckIntervalMs,
    timeoutMs: config.activeHealthCheckTimeoutMs,
    fall: config.activeHealthCheckFailureThreshold,
    rise: config.activeHealthCheckRiseThreshold,
    jitterMs: Math.round(config.activeHealthCheckIntervalMs / 10),
    concurrency: config.activeHealthCheckConcurrency,
  };
}

function proxyDefaultsOf(config: MaxineConfig): ProxyPolicy {
  return {
    connectTimeoutMs: config.proxyConnectTimeoutMs,
    requestTimeoutMs: config.proxyRequestTimeoutMs,
    retries: config.proxyRetries,
    retryBackoffMs: config.proxyRetryBackoffMs,
    retryBudgetPercent: config.proxyRetryBudgetPercent,
    minRetriesPerSecond: config.proxyMinRetriesPerSecond,
    breakerFailures: config.proxyBreakerFailures,
    breakerOpenMs: config.proxyBreakerOpenMs,
    maxBodyBytes: config.proxyMaxBodyBytes,
    passAuthorization: config.proxyPassAuthorization,
    strategy: null,
    outlierConsecutiveFailures: config.proxyOutlierConsecutiveFailures,
    outlierBaseEjectionMs: config.proxyOutlierBaseEjectionMs,
    outlierMaxEjectionMs: config.proxyOutlierMaxEjectionMs,
    outlierMaxEjectionPercent: config.proxyOutlierMaxEjectionPercent,
  };
}

/** Wires one replica together: store -> catalog -> registry -> HTTP surfaces. */
export async function startMaxine(config: MaxineConfig): Promise<RunningMaxine> {
  // The runtime config lives in the store, which is opened after the logger exists.
  let runtime: RuntimeConfig | undefined;
  const destination = new SwitchableLogDestination(() => runtime?.settings ?? DEFAULT_LOG_SWITCHES);
  const logger = pino({ level: config.logLevel, base: { service: 'maxine' } }, destination);
  const instanceId = config.instanceId ?? `${hostname()}-${process.pid}`;
  const store = await openStore(config, logger, instanceId);
  const catalog = new Catalog(config.eventRingSize, Date.now, store.leasesInCatalog);
  const proxy = new Proxy({
    catalog,
    defaults: proxyDefaultsOf(config),
    allowLinkLocal: config.allowLinkLocal,
    onWarning: (message) => logger.warn(message),
  });
  const registry = new Registry({
    store,
    catalog,
    clock: Date.now,
    maxInstancesPerService: config.maxInstancesPerService,
    load: proxy.load,
    onExpiryError: (error) =>
      error instanceof FencedError
        ? logger.warn({ err: error }, 'expiry refused: this replica is no longer the leader')
        : logger.warn({ err: error }, 'expiring leases failed; will retry'),
  });
  await registry.start();
  const checkDefaults = checkDefaultsOf(config);
  // Every replica runs one; it probes only while this replica leads.
  const checker = new HealthChecker({
    catalog,
    registry,
    defaults: checkDefaults,
    allowLinkLocal: config.allowLinkLocal,
    onError: (error, instance) => logger.warn({ err: error, service: instance.service, id: instance.id }, 'recording a health check verdict failed'),
  });
  checker.start();
  runtime = new RuntimeConfig(
    {
      ...DEFAULT_LOG_SWITCHES,
      heartBeatTimeout: config.heartbeatTimeoutSec,
      serverSelectionStrategy: config.strategy,
      discoveryMode: 'REDIRECT',
    },
    catalog,
  );
  const app = await buildApp(
    { registry, runtime, config, instanceId, clientAddress: clientAddressResolver(config.trustProxy), checkDefaults, proxy, checker },
    { logger },
  );
  const stopServices = async () => {
    await checker.stop();
    await proxy.close();
    await registry.stop();
  };
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await stopServices();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info({ url, instanceId, store: store.kind, revision: catalog.revision, instances: catalog.instanceCount }, 'maxine listening');
  let closing: Promise<void> | undefined;
  return {
    url,
    logger,
    close: () => {
      closing ??= (async () => {
        await app.close();
        await stopServices();
        logger.info('maxine stopped');
        destination.flush();
      })();
      return closing;
    },
  };
}
