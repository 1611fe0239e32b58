import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import pino, { type Logger } from 'pino';
import { Catalog } from './core/catalog.ts';
import type { MaxineConfig } from './config/schema.ts';
import { buildApp } from './http/app.ts';
import { EventHub } from './http/events/hub.ts';
import type { DeclaredRoute } from './http/permissions.ts';
import type { CheckDefaults } from './health/check-spec.ts';
import { HealthChecker } from './health/checker.ts';
import type { ProxyPolicy } from './proxy/policy.ts';
import { Proxy } from './proxy/proxy.ts';
import { clientAddressResolver } from './http/client-address.ts';
import { Registry } from './registry/registry.ts';
import { RevisionWaiters } from './registry/revision-waiters.ts';
import { RuntimeConfig } from './registry/runtime-config.ts';
import { openStore } from './store/open.ts';
import { FencedError } from './store/store.ts';
import { SwitchableLogDestination, type LogSwitches } from './observe/log-destination.ts';
import { AuditLog } from './observe/audit.ts';
import { RecentLines } from './observe/recent-lines.ts';
import { RecentRequests } from './observe/recent-requests.ts';
import { Metrics } from './observe/metrics.ts';
import { instrumentStore } from './observe/metrics-store.ts';
import { startTracing, type TracingEnv } from './observe/tracing.ts';
import { OidcVerifier } from './auth/oidc.ts';
import { Security } from './auth/security.ts';
import { isSecurityKvKey } from './auth/security-kv.ts';
import type { ConfiguredUser } from './auth/bootstrap.ts';
import { clientCertificateSubject, TlsReloader, tlsServerOptions, type TlsSettings } from './http/tls.ts';
import { AlertMonitor, type AlertSettings } from './alerts/monitor.ts';
import { WebhookDispatcher } from './alerts/delivery.ts';
import { InstanceThresholds } from './alerts/thresholds.ts';
import { Webhook } from './alerts/webhooks.ts';
import { PACKAGE_INFO } from './package-info.ts';

/** How much recent log output /api/logs/recent keeps. */
const RECENT_LOG_BYTES = 256 * 1024;

/** How many answered requests /api/actuator/traces keeps. */
const RECENT_REQUESTS = 200;

/** How many resolved alerts /api/actuator/alerts keeps. */
const RECENT_ALERTS = 200;

const DEFAULT_LOG_SWITCHES: LogSwitches = { logAsync: true, logFormat: 'JSON', logJsonPrettify: false };

export interface RunningMaxine {
  readonly url: string;
  readonly logger: Logger;
  /** Every route with its declared permission. */
  readonly routes: readonly DeclaredRoute[];
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

function alertSettingsOf(config: MaxineConfig): AlertSettings {
  return {
    intervalMs: config.alertEvaluationIntervalMs,
    forMs: config.alertForMs,
    maxActive: config.alertMaxActive,
    recentSize: RECENT_ALERTS,
    thresholds: new InstanceThresholds(config.alertMinInstances, config.alertMinInstancesByService),
    errorRate: { percent: config.alertErrorRatePercent, windowMs: config.alertErrorRateWindowMs, minRequests: config.alertErrorRateMinRequests },
  };
}

function webhookDispatcherOf(config: MaxineConfig, sender: string): WebhookDispatcher {
  return new WebhookDispatcher({
    webhooks: config.alertWebhooks.map((spec) => new Webhook(spec, config.alertWebhookSecrets.get(spec.name) ?? null)),
    retries: config.alertWebhookRetries,
    backoffMs: config.alertWebhookBackoffMs,
    timeoutMs: config.alertWebhookTimeoutMs,
    sender,
    userAgent: `maxine/${PACKAGE_INFO.version}`,
  });
}

function configuredUsers(config: MaxineConfig): ConfiguredUser[] {
  return (['admin', 'operator', 'viewer'] as const).flatMap((role) => {
    const userName = config[`${role}Username`];
    const password = config[`${role}Password`];
    return userName === undefined || password === undefined ? [] : [{ userName, password, role }];
  });
}

function tlsSettingsOf(config: MaxineConfig): TlsSettings | undefined {
  if (config.tlsCertFile === undefined || config.tlsKeyFile === undefined) return undefined;
  return { certFile: config.tlsCertFile, keyFile: config.tlsKeyFile, clientCaFile: config.tlsClientCaFile ?? null, clientAuth: config.tlsClientAuth };
}

function oidcVerifierOf(config: MaxineConfig): OidcVerifier | null {
  if (config.oidcIssuer === undefined || config.oidcAudience === undefined) return null;
  return new OidcVerifier({
    issuer: config.oidcIssuer,
    audience: config.oidcAudience,
    jwksUri: config.oidcJwksUri ?? null,
    clockSkewSec: config.oidcClockSkewSec,
    groupsClaim: config.oidcGroupsClaim,
    roleMap: config.oidcRoleMap,
  });
}

/**
 * Wires one replica together: store -> catalog -> registry -> HTTP surfaces.
 * Tracing is configured by the OTEL_* variables of `env`.
 */
export async function startMaxine(config: MaxineConfig, env: TracingEnv = process.env): Promise<RunningMaxine> {
  // The runtime config lives in the store, which is opened after the logger exists.
  let runtime: RuntimeConfig | undefined;
  const recentLogs = new RecentLines(RECENT_LOG_BYTES);
  const destination = new SwitchableLogDestination(() => runtime?.settings ?? DEFAULT_LOG_SWITCHES, 1, recentLogs);
  const logger = pino({ level: config.logLevel, base: { service: 'maxine' } }, destination);
  const instanceId = config.instanceId ?? `${hostname()}-${process.pid}`;
  // Before the store opens: its writes get spans.
  const tracing = await startTracing(env, { instanceId, onWarning: (message) => logger.warn(message) });
  if (tracing !== null) {
    const { endpoint, protocol, sampler } = tracing.settings;
    logger.info({ endpoint, protocol, sampler }, 'tracing: exporting spans over OTLP/HTTP');
  }
  const opened = await openStore(config, logger, instanceId);
  const store = tracing === null ? opened : tracing.traceStore(opened);
  const catalog = new Catalog(config.eventRingSize, Date.now, store.leasesInCatalog, isSecurityKvKey);
  const revisionWaiters = new RevisionWaiters(catalog);
  const proxy = new Proxy({
    catalog,
    defaults: proxyDefaultsOf(config),
    allowLinkLocal: config.allowLinkLocal,
    onWarning: (message) => logger.warn(message),
    tracing: tracing?.proxy,
  });
  // What it reads of the parts wired below, it reads when scraped: nothing is scraped before the app listens.
  // Annotated because those parts' types go back to it (through the registry's store).
  const metrics: Metrics = new Metrics({
    catalog,
    store,
    maxServices: config.metricsMaxServices,
    checks: () => checker.stats(),
    proxiedRequests: () => proxy.stats().requests,
    events: () => events.stats(),
    alerts: () => alerts,
  });
  const registry = new Registry({
    store: instrumentStore(store, metrics),
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
  const alerts = new AlertMonitor({
    catalog,
    store,
    replica: instanceId,
    settings: alertSettingsOf(config),
    requestTotals: () => metrics.requests.totals(),
    writeKv: (key, value) => registry.putKv(key, value),
    dispatcher: webhookDispatcherOf(config, instanceId),
    onWarning: (message) => logger.warn(message),
  });
  for (const webhook of alerts.webhooks) {
    if (!webhook.signed) logger.warn({ webhook: webhook.name }, 'alert webhook has no secret (MAXINE_ALERT_WEBHOOK_SECRETS): its notifications are not signed');
  }
  runtime = new RuntimeConfig(
    {
      ...DEFAULT_LOG_SWITCHES,
      heartBeatTimeout: config.heartbeatTimeoutSec,
      serverSelectionStrategy: config.strategy,
      discoveryMode: 'REDIRECT',
    },
    catalog,
  );
  const audit = new AuditLog({
    file: config.auditLogFile ?? join(config.dataDir, 'audit', 'audit.log'),
    maxBytes: config.auditLogMaxBytes,
    retainedFiles: config.auditLogFiles,
    ringSize: config.auditRingSize,
    onError: (error) => logger.error({ err: error }, 'writing the audit log failed'),
  });
  const stopServices = async () => {
    // First: stopping the others would look like lost leadership and an unreachable store.
    await alerts.close();
    await checker.stop();
    await proxy.close();
    await registry.stop();
    await audit.close();
    await tracing?.shutdown();
    metrics.close();
  };
  let security: Security;
  try {
    security = await Security.open({
      catalog,
      write: (key, value) => registry.putKv(key, value),
      writeIf: (key, expected, value) => registry.putKvIf(key, expected, value),
      isLeader: () => registry.leadership().isLeader,
      keys: {
        jwtSecret: config.jwtSecret,
        previousSecrets: config.jwtPreviousSecrets,
        privateKeyFile: config.jwtPrivateKeyFile,
        previousPublicKeyFiles: config.jwtPreviousPublicKeyFiles,
      },
      sessions: { accessTtlSec: config.jwtExpiresInSec, refreshTtlSec: config.jwtRefreshExpiresInSec },
      configuredUsers: configuredUsers(config),
      requireClientAuth: config.requireClientAuth,
      signinAttemptsPerUser: config.signinAttemptsPerUser,
      signinAttemptsPerAddress: config.signinAttemptsPerAddress,
      oidc: oidcVerifierOf(config),
      dataDir: config.dataDir,
      // Straight to the terminal, not the log: the log may be shipped to places a password must not go.
      announce: (message) => process.stderr.write(`\n${message}\n\n`),
      onWarning: (message) => logger.warn(message),
    });
  } catch (error) {
    await stopServices();
    throw error;
  }
  const tls = tlsSettingsOf(config);
  const events = new EventHub(catalog, () => security.policy(), {
    maxConnectionsPerPrincipal: config.eventsMaxConnectionsPerPrincipal,
    bufferBytes: config.eventsBufferBytes,
    pingIntervalMs: config.eventsPingIntervalMs,
  });
  let reloader: TlsReloader | undefined;
  const stopAll = async () => {
    reloader?.close();
    events.close();
    security.close();
    await stopServices();
  };
  let app: Awaited<ReturnType<typeof buildApp>>;
  try {
    app = await buildApp(
      { registry, revisionWaiters, runtime, config, instanceId, clientAddress: clientAddressResolver(config.trustProxy), checkDefaults, proxy, checker, security, audit, events, recentLogs, recentRequests: tracing === null ? null : new RecentRequests(RECENT_REQUESTS), metrics, alerts },
      {
        logger,
        ...(tracing === null ? {} : { tracing: tracing.plugin }),
        ...(tls === undefined ? {} : { https: tlsServerOptions(tls) }),
        ...(config.tlsClientAuth === 'none' ? {} : { certificateSubject: (request) => clientCertificateSubject(request.socket) }),
      },
    );
  } catch (error) {
    await stopAll();
    throw error;
  }
  if (tls !== undefined) {
    // Fastify types its server as http.Server whatever the options; with `https` it is a tls.Server.
    reloader = new TlsReloader(app.server as unknown as TlsServer, tls, {
      onReload: (fingerprint256) => logger.info({ fingerprint256 }, 'TLS certificate reloaded'),
      onError: (error) => logger.error({ err: error }, 'TLS certificate reload failed; still serving the previous one'),
    });
  }
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await stopAll();
    throw error;
  }
  reloader?.start();
  alerts.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `${tls === undefined ? 'http' : 'https'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info({ url, instanceId, store: store.kind, revision: catalog.revision, instances: catalog.instanceCount }, 'maxine listening');
  let closing: Promise<void> | undefined;
  return {
    url,
    logger,
    routes: app.declaredRoutes,
    close: () => {
      closing ??= (async () => {
        // Parked listings would hold app.close() for up to their whole wait: answer them first.
        revisionWaiters.close();
        await app.close();
        await stopAll();
        logger.info('maxine stopped');
        destination.flush();
      })();
      return closing;
    },
  };
}
