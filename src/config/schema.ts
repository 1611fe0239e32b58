import { STORE_KINDS } from '../store/store.ts';
import { PATH_PATTERN } from '../core/validation.ts';
import { MIN_PASSWORD_LENGTH } from '../auth/passwords.ts';
import {
  boolean,
  endpointList,
  headerName,
  host,
  httpUrl,
  pathList,
  roleMap,
  namedSecrets,
  serviceCounts,
  webhookList,
  secret,
  secretList,
  integer,
  oneOf,
  optional,
  path,
  redisUrl,
  strategy,
  trustProxy,
  word,
  type Kind,
} from './kinds.ts';

/** One configuration setting; everything else (parsing, help, docs) is derived from these. */
export interface Setting<K extends string, T> {
  /** Property of MaxineConfig, and the key in the config file. */
  readonly key: K;
  /** Long command-line flag, e.g. `--data-dir`. */
  readonly flag: string;
  /** Environment variables, highest precedence first. */
  readonly env: readonly string[];
  readonly kind: Kind<T>;
  readonly default: T;
  /** One line for help text and the README table. */
  readonly description: string;
}

function setting<K extends string, T>(spec: {
  key: K;
  flag: string;
  env: readonly string[];
  kind: Kind<T>;
  default: NoInfer<T>;
  description: string;
}): Setting<K, T> {
  return spec;
}

const KEY_PREFIX = /^[A-Za-z0-9._:/-]{1,100}$/;
const INSTANCE_NAME = /^[A-Za-z0-9._-]{1,128}$/;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const FSYNC_MODES = ['always', 'interval', 'never'] as const;
const CLIENT_AUTH_MODES = ['none', 'optional', 'required'] as const;
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const USER_NAME_EXPECTED = 'a user name (letters, digits, . _ @ -; up to 64 characters)';
/** Below this an HMAC key is guessable offline from any token it signed. */
const MIN_JWT_SECRET_LENGTH = 32;

/** MAXINE_<ROLE>_USERNAME / _PASSWORD: the original's way to create users at start. */
function userSettings<const R extends 'admin' | 'operator' | 'viewer'>(role: R) {
  const upper = role.toUpperCase() as Uppercase<R>;
  return [
    setting({
      key: `${role}Username` as `${R}Username`,
      flag: `--${role}-username`,
      env: [`MAXINE_${upper}_USERNAME`],
      kind: optional(word(USER_NAME, USER_NAME_EXPECTED)),
      default: undefined,
      description: `Creates this ${role} at start when no user of that name exists (needs the password setting too).`,
    }),
    setting({
      key: `${role}Password` as `${R}Password`,
      flag: `--${role}-password`,
      env: [`MAXINE_${upper}_PASSWORD`],
      kind: optional(secret(MIN_PASSWORD_LENGTH)),
      default: undefined,
      description: `Password of the ${role} created at start (prefer the environment variable: flags show in process lists).`,
    }),
  ] as const;
}
/** A URL path starting with '/', as instance paths are written. */
const URL_PATH = new RegExp(PATH_PATTERN.replace('^', '^/'));

/**
 * Named separately because it is resolved first (from flags and environment
 * only: a file cannot point at another file) so that the file can be read.
 */
export const CONFIG_FILE = setting({
  key: 'configFile',
  flag: '--config',
  env: ['MAXINE_CONFIG_FILE'],
  kind: optional(path),
  default: undefined,
  description: 'YAML (.yaml, .yml) or JSON (.json) file mapping setting names (e.g. dataDir) to values.',
});

export const CONFIG_SETTINGS = [
  setting({
    key: 'host',
    flag: '--host',
    env: ['MAXINE_HOST'],
    kind: host,
    default: '127.0.0.1',
    description: 'Address to listen on; the default only accepts local connections, production uses 0.0.0.0.',
  }),
  setting({
    key: 'port',
    flag: '--port',
    env: ['MAXINE_PORT', 'PORT'],
    kind: integer(1, 65535),
    default: 8080,
    description: 'TCP port to listen on (PORT is the original Maxine name).',
  }),
  setting({
    key: 'dataDir',
    flag: '--data-dir',
    env: ['MAXINE_DATA_DIR'],
    kind: path,
    default: './data',
    description: 'Directory for the local log and snapshots, relative to the working directory.',
  }),
  setting({
    key: 'logLevel',
    flag: '--log-level',
    env: ['MAXINE_LOG_LEVEL'],
    kind: oneOf(LOG_LEVELS),
    default: 'info',
    description: 'Lowest log level written.',
  }),
  setting({
    key: 'heartbeatTimeoutSec',
    flag: '--heartbeat-timeout',
    env: ['MAXINE_HEARTBEAT_TIMEOUT', 'HEARTBEAT_TIMEOUT'],
    kind: integer(1, 86400),
    default: 5,
    description: 'Lease TTL in seconds for registrations that give no timeOut.',
  }),
  setting({
    key: 'strategy',
    flag: '--strategy',
    env: ['MAXINE_SERVER_SELECTION_STRATEGY', 'SERVER_SELECTION_STRATEGY'],
    kind: strategy,
    default: 'round-robin',
    description: 'Default server selection strategy; the original short codes are accepted.',
  }),
  setting({
    key: 'registryStateMode',
    flag: '--registry-state-mode',
    env: ['MAXINE_REGISTRY_STATE_MODE'],
    kind: oneOf(STORE_KINDS),
    default: 'local',
    description: 'Store that holds the registry state: local (one process), or shared by replicas through shared-file, redis or etcd.',
  }),
  setting({
    key: 'registryStateFile',
    flag: '--registry-state-file',
    env: ['MAXINE_REGISTRY_STATE_FILE'],
    kind: path,
    default: './data/shared-registry',
    description: 'shared-file mode: the directory the replicas share (created if missing; not a file, unlike the original).',
  }),
  setting({
    key: 'redisUrl',
    flag: '--redis-url',
    env: ['MAXINE_REGISTRY_REDIS_URL'],
    kind: optional(redisUrl),
    default: undefined,
    description: 'redis mode: redis:// or rediss:// URL, with the password in it if the server needs one.',
  }),
  setting({
    key: 'redisTlsCaFile',
    flag: '--redis-tls-ca-file',
    env: ['MAXINE_REGISTRY_REDIS_TLS_CA_FILE'],
    kind: optional(path),
    default: undefined,
    description: 'redis mode: PEM file of the CA that signed the server certificate, for rediss:// with a private CA.',
  }),
  setting({
    key: 'redisKeyPrefix',
    flag: '--redis-key-prefix',
    env: ['MAXINE_REGISTRY_REDIS_KEY_PREFIX'],
    kind: word(KEY_PREFIX, 'letters, digits and . _ : - / (1 to 100 characters)'),
    default: 'maxine:registry:',
    description: 'redis mode: prefix of every key Maxine uses, so several registries can share one Redis.',
  }),
  setting({
    key: 'etcdEndpoints',
    flag: '--etcd-endpoints',
    env: ['MAXINE_REGISTRY_ETCD_ENDPOINTS'],
    kind: endpointList,
    default: ['http://127.0.0.1:2379'],
    description: 'etcd mode: client URLs of the etcd members, comma-separated.',
  }),
  setting({
    key: 'etcdKeyPrefix',
    flag: '--etcd-key-prefix',
    env: ['MAXINE_REGISTRY_ETCD_KEY_PREFIX'],
    kind: word(KEY_PREFIX, 'letters, digits and . _ : - / (1 to 100 characters)'),
    default: 'maxine/registry/',
    description: 'etcd mode: prefix of every key Maxine uses.',
  }),
  setting({
    key: 'instanceId',
    flag: '--instance-id',
    env: ['MAXINE_INSTANCE_ID'],
    kind: optional(word(INSTANCE_NAME, 'letters, digits and . _ - (1 to 128 characters)')),
    default: undefined,
    description: "This replica's name in leader election; by default <hostname>-<pid>, as in the original.",
  }),
  setting({
    key: 'leaderLeaseMs',
    flag: '--leader-lease-ms',
    env: ['MAXINE_LEADER_ELECTION_LEASE_MS'],
    kind: integer(1000, 600000),
    default: 15000,
    description: "Milliseconds a leader's term lasts without renewal; a crashed leader is replaced after this.",
  }),
  setting({
    key: 'leaderRenewMs',
    flag: '--leader-renew-ms',
    env: ['MAXINE_LEADER_ELECTION_RENEW_MS'],
    kind: integer(100, 300000),
    default: 5000,
    description: 'Milliseconds between leader renewals (and takeover attempts); must be under a third of the lease.',
  }),
  setting({
    key: 'fsync',
    flag: '--fsync',
    env: ['MAXINE_FSYNC'],
    kind: oneOf(FSYNC_MODES),
    default: 'interval',
    description: 'When the local log is fsynced: after every write, every fsync interval, or never.',
  }),
  setting({
    key: 'fsyncIntervalMs',
    flag: '--fsync-interval-ms',
    env: ['MAXINE_FSYNC_INTERVAL_MS'],
    kind: integer(10, 60000),
    default: 1000,
    description: 'Milliseconds between fsyncs when fsync is interval.',
  }),
  setting({
    key: 'snapshotIntervalMs',
    flag: '--snapshot-interval-ms',
    env: ['MAXINE_SNAPSHOT_INTERVAL_MS'],
    kind: integer(1000, 3600000),
    default: 30000,
    description: 'Milliseconds between snapshots of the local store.',
  }),
  setting({
    key: 'leaseCheckpointMs',
    flag: '--lease-checkpoint-ms',
    env: ['MAXINE_LEASE_CHECKPOINT_MS'],
    kind: integer(100, 60000),
    default: 2000,
    description: 'Milliseconds between checkpoints of lease renewals (heartbeats do not touch the disk).',
  }),
  setting({
    key: 'trustProxy',
    flag: '--trust-proxy',
    env: ['MAXINE_TRUST_PROXY'],
    kind: trustProxy,
    default: false,
    description: "Which proxies' X-Forwarded-For is believed when taking the client address for hashing.",
  }),
  setting({
    key: 'hashKeyHeader',
    flag: '--hash-key-header',
    env: ['MAXINE_HASH_KEY_HEADER'],
    kind: headerName,
    default: 'x-maxine-hash-key',
    description: 'Request header carrying an explicit key for the hashing strategies.',
  }),
  setting({
    key: 'bodyLimitBytes',
    flag: '--body-limit',
    env: ['MAXINE_BODY_LIMIT'],
    kind: integer(1024, 10485760),
    default: 65536,
    description: 'Largest accepted request body in bytes.',
  }),
  setting({
    key: 'eventRingSize',
    flag: '--event-ring-size',
    env: ['MAXINE_EVENT_RING_SIZE'],
    kind: integer(100, 1000000),
    default: 10000,
    description: 'Recent changes kept for watchers to resume from before they must resync.',
  }),
  setting({
    key: 'maxInstancesPerService',
    flag: '--max-instances-per-service',
    env: ['MAXINE_MAX_INSTANCES_PER_SERVICE'],
    kind: integer(1, 100000),
    default: 10000,
    description: 'Registrations beyond this many instances of one service are refused.',
  }),
  setting({
    key: 'shutdownTimeoutMs',
    flag: '--shutdown-timeout-ms',
    env: ['MAXINE_SHUTDOWN_TIMEOUT_MS'],
    kind: integer(100, 120000),
    default: 10000,
    description: 'Milliseconds to drain and close on SIGTERM/SIGINT before exiting with code 1.',
  }),
  setting({
    key: 'activeHealthChecksEnabled',
    flag: '--active-health-checks-enabled',
    env: ['MAXINE_ACTIVE_HEALTH_CHECKS_ENABLED'],
    kind: boolean,
    default: false,
    description: 'Probe every instance (the leader does), also those that registered no check of their own.',
  }),
  setting({
    key: 'activeHealthCheckIntervalMs',
    flag: '--active-health-check-interval-ms',
    env: ['MAXINE_ACTIVE_HEALTH_CHECK_INTERVAL_MS'],
    kind: integer(100, 3_600_000),
    default: 10_000,
    description: 'Milliseconds between probes of one instance, unless its check says otherwise.',
  }),
  setting({
    key: 'activeHealthCheckTimeoutMs',
    flag: '--active-health-check-timeout-ms',
    env: ['MAXINE_ACTIVE_HEALTH_CHECK_TIMEOUT_MS'],
    kind: integer(50, 60_000),
    default: 2000,
    description: 'Milliseconds a probe may take (connect, headers and body) before it counts as failed.',
  }),
  setting({
    key: 'activeHealthCheckFailureThreshold',
    flag: '--active-health-check-failure-threshold',
    env: ['MAXINE_ACTIVE_HEALTH_CHECK_FAILURE_THRESHOLD'],
    kind: integer(1, 10),
    default: 3,
    description: 'Consecutive failed probes that make an instance critical (the fall threshold).',
  }),
  setting({
    key: 'activeHealthCheckRiseThreshold',
    flag: '--active-health-check-rise-threshold',
    env: ['MAXINE_ACTIVE_HEALTH_CHECK_RISE_THRESHOLD'],
    kind: integer(1, 10),
    default: 2,
    description: 'Consecutive passing probes that bring a critical instance back.',
  }),
  setting({
    key: 'activeHealthCheckPath',
    flag: '--active-health-check-path',
    env: ['MAXINE_ACTIVE_HEALTH_CHECK_PATH'],
    kind: word(URL_PATH, "a URL path starting with '/'"),
    default: '/health',
    description: "Path probed on instances that registered no healthCheckPath (appended to the instance's address).",
  }),
  setting({
    key: 'activeHealthCheckConcurrency',
    flag: '--active-health-check-concurrency',
    env: ['MAXINE_ACTIVE_HEALTH_CHECK_CONCURRENCY'],
    kind: integer(1, 4096),
    default: 64,
    description: 'Most probes in flight at once; due probes beyond it wait their turn.',
  }),
  setting({
    key: 'allowLinkLocal',
    flag: '--allow-link-local',
    env: ['MAXINE_ALLOW_LINK_LOCAL_INSTANCES'],
    kind: boolean,
    default: false,
    description: 'Accept and contact instances at link-local and cloud-metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254).',
  }),
  setting({
    key: 'proxyConnectTimeoutMs',
    flag: '--proxy-connect-timeout-ms',
    env: ['MAXINE_PROXY_CONNECT_TIMEOUT_MS'],
    kind: integer(10, 60_000),
    default: 2000,
    description: 'Proxy: milliseconds to connect to an instance (default of every service policy).',
  }),
  setting({
    key: 'proxyRequestTimeoutMs',
    flag: '--proxy-request-timeout-ms',
    env: ['MAXINE_PROXY_REQUEST_TIMEOUT_MS'],
    kind: integer(10, 600_000),
    default: 30_000,
    description: "Proxy: milliseconds to wait for an instance's response headers, and between body chunks, before answering 504.",
  }),
  setting({
    key: 'proxyRetries',
    flag: '--proxy-retries',
    env: ['MAXINE_PROXY_RETRIES'],
    kind: integer(0, 5),
    default: 1,
    description: 'Proxy: extra attempts on another instance (connect failures, or timeouts and 5xx of idempotent methods).',
  }),
  setting({
    key: 'proxyRetryBackoffMs',
    flag: '--proxy-retry-backoff-ms',
    env: ['MAXINE_PROXY_RETRY_BACKOFF_MS'],
    kind: integer(0, 10_000),
    default: 25,
    description: 'Proxy: base of the exponential, jittered wait before a retry.',
  }),
  setting({
    key: 'proxyRetryBudgetPercent',
    flag: '--proxy-retry-budget-percent',
    env: ['MAXINE_PROXY_RETRY_BUDGET_PERCENT'],
    kind: integer(0, 100),
    default: 20,
    description: "Proxy: retries may add at most this share of a service's requests (over 10 s), so retries cannot multiply an outage.",
  }),
  setting({
    key: 'proxyMinRetriesPerSecond',
    flag: '--proxy-min-retries-per-second',
    env: ['MAXINE_PROXY_MIN_RETRIES_PER_SECOND'],
    kind: integer(0, 10_000),
    default: 10,
    description: 'Proxy: retries always allowed per second per service, whatever the budget (so quiet services can retry).',
  }),
  setting({
    key: 'proxyMaxBodyBytes',
    flag: '--proxy-max-body-bytes',
    env: ['MAXINE_PROXY_MAX_BODY_BYTES'],
    kind: integer(0, 1_073_741_824),
    default: 10_485_760,
    description: 'Proxy: largest request body forwarded; larger ones get 413.',
  }),
  setting({
    key: 'proxyPassAuthorization',
    flag: '--proxy-pass-authorization',
    env: ['MAXINE_PROXY_PASS_AUTHORIZATION'],
    kind: boolean,
    default: false,
    description: "Proxy: forward the client's Authorization header to instances (off: Maxine's credentials never leave it).",
  }),
  setting({
    key: 'proxyBreakerFailures',
    flag: '--proxy-breaker-failures',
    env: ['MAXINE_PROXY_BREAKER_FAILURES'],
    kind: integer(0, 1000),
    default: 5,
    description: "Proxy: consecutive failures that open an instance's circuit breaker (0: no breaker).",
  }),
  setting({
    key: 'proxyBreakerOpenMs',
    flag: '--proxy-breaker-open-ms',
    env: ['MAXINE_PROXY_BREAKER_OPEN_MS'],
    kind: integer(10, 600_000),
    default: 10_000,
    description: 'Proxy: milliseconds an open breaker refuses traffic before one trial request.',
  }),
  setting({
    key: 'proxyOutlierConsecutiveFailures',
    flag: '--proxy-outlier-consecutive-failures',
    env: ['MAXINE_PROXY_OUTLIER_CONSECUTIVE_FAILURES'],
    kind: integer(0, 1000),
    default: 5,
    description: 'Outlier detection: consecutive connect failures or 5xx that eject an instance from picks (0: off).',
  }),
  setting({
    key: 'proxyOutlierBaseEjectionMs',
    flag: '--proxy-outlier-base-ejection-ms',
    env: ['MAXINE_PROXY_OUTLIER_BASE_EJECTION_MS'],
    kind: integer(10, 3_600_000),
    default: 30_000,
    description: 'Outlier detection: first ejection time; each further ejection of the same instance lasts one base longer.',
  }),
  setting({
    key: 'proxyOutlierMaxEjectionMs',
    flag: '--proxy-outlier-max-ejection-ms',
    env: ['MAXINE_PROXY_OUTLIER_MAX_EJECTION_MS'],
    kind: integer(10, 86_400_000),
    default: 300_000,
    description: 'Outlier detection: longest ejection.',
  }),
  setting({
    key: 'proxyOutlierMaxEjectionPercent',
    flag: '--proxy-outlier-max-ejection-percent',
    env: ['MAXINE_PROXY_OUTLIER_MAX_EJECTION_PERCENT'],
    kind: integer(0, 100),
    default: 50,
    description: "Outlier detection: never eject more than this share of a service's instances.",
  }),
  setting({
    key: 'requireClientAuth',
    flag: '--require-client-auth',
    env: ['MAXINE_REQUIRE_CLIENT_AUTH'],
    kind: boolean,
    default: false,
    description: 'Registration, heartbeats, deregistration, discovery and the proxy need credentials too (off: open, as in the original).',
  }),
  ...userSettings('admin'),
  ...userSettings('operator'),
  ...userSettings('viewer'),
  setting({
    key: 'jwtSecret',
    flag: '--jwt-secret',
    env: ['MAXINE_JWT_SECRET'],
    kind: optional(secret(MIN_JWT_SECRET_LENGTH)),
    default: undefined,
    description: 'HMAC secret session tokens are signed with; unset: a random one kept in the store, shared by all replicas.',
  }),
  setting({
    key: 'jwtPreviousSecrets',
    flag: '--jwt-previous-secrets',
    env: ['MAXINE_JWT_PREVIOUS_SECRETS'],
    kind: secretList(MIN_JWT_SECRET_LENGTH),
    default: [],
    description: 'Earlier secrets whose tokens are still accepted (comma-separated), for rotation.',
  }),
  setting({
    key: 'jwtPrivateKeyFile',
    flag: '--jwt-private-key-file',
    env: ['MAXINE_JWT_PRIVATE_KEY_FILE'],
    kind: optional(path),
    default: undefined,
    description: 'PEM private key (EC P-256/P-384, RSA, Ed25519) to sign session tokens with instead of a secret; its public key is served as a JWKS.',
  }),
  setting({
    key: 'jwtPreviousPublicKeyFiles',
    flag: '--jwt-previous-public-key-files',
    env: ['MAXINE_JWT_PREVIOUS_PUBLIC_KEY_FILES'],
    kind: pathList,
    default: [],
    description: 'PEM public keys whose tokens are still accepted (comma-separated), for key rotation.',
  }),
  setting({
    key: 'jwtExpiresInSec',
    flag: '--jwt-expires-in-sec',
    env: ['MAXINE_JWT_EXPIRES_IN_SEC'],
    kind: integer(60, 86_400),
    default: 3600,
    description: 'Lifetime of an access token, seconds.',
  }),
  setting({
    key: 'jwtRefreshExpiresInSec',
    flag: '--jwt-refresh-expires-in-sec',
    env: ['MAXINE_JWT_REFRESH_EXPIRES_IN_SEC'],
    kind: integer(300, 90 * 86_400),
    default: 7 * 86_400,
    description: 'Lifetime of a refresh token, seconds.',
  }),
  setting({
    key: 'signinAttemptsPerUser',
    flag: '--signin-attempts-per-user',
    env: ['MAXINE_SIGNIN_ATTEMPTS_PER_USER'],
    kind: integer(1, 10_000),
    default: 5,
    description: 'Failed sign-ins allowed per user name per minute (per replica); more get 429.',
  }),
  setting({
    key: 'signinAttemptsPerAddress',
    flag: '--signin-attempts-per-address',
    env: ['MAXINE_SIGNIN_ATTEMPTS_PER_ADDRESS'],
    kind: integer(1, 100_000),
    default: 30,
    description: 'Sign-ins allowed per client address per minute (per replica); more get 429.',
  }),
  setting({
    key: 'oidcIssuer',
    flag: '--oidc-issuer',
    env: ['MAXINE_OIDC_ISSUER'],
    kind: optional(httpUrl),
    default: undefined,
    description: "Accept bearer tokens from this OpenID Connect issuer (its `iss`, exactly); keys come from its JWKS.",
  }),
  setting({
    key: 'oidcAudience',
    flag: '--oidc-audience',
    env: ['MAXINE_OIDC_AUDIENCE'],
    kind: optional(word(/^[\x21-\x7e]{1,200}$/, 'an audience (printable characters, no spaces)')),
    default: undefined,
    description: 'Required `aud` of OIDC tokens (required with the issuer).',
  }),
  setting({
    key: 'oidcJwksUri',
    flag: '--oidc-jwks-uri',
    env: ['MAXINE_OIDC_JWKS_URI'],
    kind: optional(httpUrl),
    default: undefined,
    description: "The issuer's JWKS; unset: read from its /.well-known/openid-configuration.",
  }),
  setting({
    key: 'oidcClockSkewSec',
    flag: '--oidc-clock-skew-sec',
    env: ['MAXINE_OIDC_CLOCK_SKEW_SEC'],
    kind: integer(0, 600),
    default: 30,
    description: 'Clock difference tolerated when checking OIDC token times, seconds.',
  }),
  setting({
    key: 'oidcGroupsClaim',
    flag: '--oidc-groups-claim',
    env: ['MAXINE_OIDC_GROUPS_CLAIM'],
    kind: word(/^[A-Za-z0-9_:.-]{1,100}$/, 'a claim name (dotted for nested claims)'),
    default: 'groups',
    description: "OIDC claim holding the caller's groups (a string or a list; dotted path for nested claims).",
  }),
  setting({
    key: 'oidcRoleMap',
    flag: '--oidc-role-map',
    env: ['MAXINE_OIDC_ROLE_MAP'],
    kind: roleMap,
    default: new Map(),
    description: 'OIDC group to Maxine role, e.g. `platform-admins=admin,sre=operator`; the strongest match wins.',
  }),
  setting({
    key: 'tlsCertFile',
    flag: '--tls-cert-file',
    env: ['MAXINE_TLS_CERT_FILE'],
    kind: optional(path),
    default: undefined,
    description: 'Serve HTTPS with this PEM certificate (chain); reloaded when the file changes.',
  }),
  setting({
    key: 'tlsKeyFile',
    flag: '--tls-key-file',
    env: ['MAXINE_TLS_KEY_FILE'],
    kind: optional(path),
    default: undefined,
    description: "The certificate's PEM private key; reloaded when the file changes.",
  }),
  setting({
    key: 'tlsClientCaFile',
    flag: '--tls-client-ca-file',
    env: ['MAXINE_TLS_CLIENT_CA_FILE'],
    kind: optional(path),
    default: undefined,
    description: 'CA bundle client certificates must chain to (mTLS).',
  }),
  setting({
    key: 'tlsClientAuth',
    flag: '--tls-client-auth',
    env: ['MAXINE_TLS_CLIENT_AUTH'],
    kind: oneOf(CLIENT_AUTH_MODES),
    default: 'none',
    description: 'mTLS: `optional` accepts client certificates as identities (`cert:<subject>` in ACL rules), `required` also refuses clients without one.',
  }),
  setting({
    key: 'eventsMaxConnectionsPerPrincipal',
    flag: '--events-max-connections-per-principal',
    env: ['MAXINE_EVENTS_MAX_CONNECTIONS_PER_PRINCIPAL'],
    kind: integer(1, 100_000),
    default: 100,
    description: 'Event streams (WebSocket, SSE and GraphQL subscription connections) one principal may hold open; anonymous callers count per address.',
  }),
  setting({
    key: 'eventsBufferBytes',
    flag: '--events-buffer-bytes',
    env: ['MAXINE_EVENTS_BUFFER_BYTES'],
    kind: integer(16 * 1024, 256 * 1024 * 1024),
    default: 1024 * 1024,
    description: 'Unsent bytes one event subscriber may have waiting; beyond it events are dropped and a resync marker follows.',
  }),
  setting({
    key: 'eventsPingIntervalMs',
    flag: '--events-ping-interval-ms',
    env: ['MAXINE_EVENTS_PING_INTERVAL_MS'],
    kind: integer(1000, 600_000),
    default: 30_000,
    description: 'How often event streams are pinged; a WebSocket that misses a pong by the next ping is closed.',
  }),
  setting({
    key: 'auditLogFile',
    flag: '--audit-log-file',
    env: ['MAXINE_AUDIT_LOG_FILE'],
    kind: optional(path),
    default: undefined,
    description: 'Audit log (JSON lines); unset: audit/audit.log in the data directory.',
  }),
  setting({
    key: 'auditLogMaxBytes',
    flag: '--audit-log-max-bytes',
    env: ['MAXINE_AUDIT_LOG_MAX_BYTES'],
    kind: integer(4096, 1024 ** 3),
    default: 10 * 1024 * 1024,
    description: 'Size at which the audit log is rotated.',
  }),
  setting({
    key: 'auditLogFiles',
    flag: '--audit-log-files',
    env: ['MAXINE_AUDIT_LOG_FILES'],
    kind: integer(0, 1000),
    default: 10,
    description: 'Rotated audit log files kept besides the current one.',
  }),
  setting({
    key: 'auditRingSize',
    flag: '--audit-ring-size',
    env: ['MAXINE_AUDIT_RING_SIZE'],
    kind: integer(10, 100_000),
    default: 1000,
    description: 'Recent audit events kept in memory for /api/actuator/audit.',
  }),
  setting({
    key: 'metricsPublic',
    flag: '--metrics-public',
    env: ['MAXINE_METRICS_PUBLIC'],
    kind: boolean,
    default: false,
    description: 'Serve /metrics and /api/actuator/prometheus without credentials, for scrapers (off: they need ops:read).',
  }),
  setting({
    key: 'metricsMaxServices',
    flag: '--metrics-max-services',
    env: ['MAXINE_METRICS_MAX_SERVICES'],
    kind: integer(1, 10_000),
    default: 200,
    description: 'Services named in metric labels; the rest are counted together as `_other`, so series stay bounded.',
  }),
  setting({
    key: 'alertEvaluationIntervalMs',
    flag: '--alert-evaluation-interval-ms',
    env: ['MAXINE_ALERT_EVALUATION_INTERVAL_MS'],
    kind: integer(100, 60_000),
    default: 1000,
    description: 'How often the alert rules are evaluated.',
  }),
  setting({
    key: 'alertForMs',
    flag: '--alert-for-ms',
    env: ['MAXINE_ALERT_FOR_MS'],
    kind: integer(0, 3_600_000),
    default: 10_000,
    description: 'How long a condition must hold before its alert fires (instance evictions and lost leadership fire at once).',
  }),
  setting({
    key: 'alertMinInstances',
    flag: '--alert-min-instances',
    env: ['MAXINE_ALERT_MIN_INSTANCES'],
    kind: integer(0, 10_000),
    default: 1,
    description: 'A registered service with fewer eligible instances fires service_instances_low; 0 turns the default off.',
  }),
  setting({
    key: 'alertMinInstancesByService',
    flag: '--alert-min-instances-by-service',
    env: ['MAXINE_ALERT_MIN_INSTANCES_BY_SERVICE'],
    kind: serviceCounts(0, 10_000),
    default: new Map(),
    description: 'Per-service thresholds, e.g. `orders=3,batch-*=0`; a service named exactly is watched even with no instance left.',
  }),
  setting({
    key: 'alertErrorRatePercent',
    flag: '--alert-error-rate-percent',
    env: ['MAXINE_ALERT_ERROR_RATE_PERCENT'],
    kind: integer(0, 100),
    default: 5,
    description: "Share of this replica's answers with a 5xx status over the window that fires error_rate_high; 0 off.",
  }),
  setting({
    key: 'alertErrorRateWindowMs',
    flag: '--alert-error-rate-window-ms',
    env: ['MAXINE_ALERT_ERROR_RATE_WINDOW_MS'],
    kind: integer(5_000, 3_600_000),
    default: 60_000,
    description: 'The window the error rate is measured over.',
  }),
  setting({
    key: 'alertErrorRateMinRequests',
    flag: '--alert-error-rate-min-requests',
    env: ['MAXINE_ALERT_ERROR_RATE_MIN_REQUESTS'],
    kind: integer(1, 1_000_000),
    default: 20,
    description: 'Fewer answers than this in the window never fire error_rate_high.',
  }),
  setting({
    key: 'alertMaxActive',
    flag: '--alert-max-active',
    env: ['MAXINE_ALERT_MAX_ACTIVE'],
    kind: integer(10, 100_000),
    default: 1000,
    description: 'Alerts pending or firing at once; conditions beyond are not tracked (maxine_alerts_untracked).',
  }),
  setting({
    key: 'alertWebhooks',
    flag: '--alert-webhooks',
    env: ['MAXINE_ALERT_WEBHOOKS'],
    kind: webhookList,
    default: [],
    description: 'Where alerts are sent: a JSON list of `{name, url, severities?, services?, rules?}` (see docs/observability.md).',
  }),
  setting({
    key: 'alertWebhookSecrets',
    flag: '--alert-webhook-secrets',
    env: ['MAXINE_ALERT_WEBHOOK_SECRETS'],
    kind: namedSecrets(16),
    default: new Map(),
    description: 'HMAC-SHA256 signing secrets by webhook name, e.g. `pager=<secret>`; a webhook with one gets x-maxine-signature.',
  }),
  setting({
    key: 'alertWebhookRetries',
    flag: '--alert-webhook-retries',
    env: ['MAXINE_ALERT_WEBHOOK_RETRIES'],
    kind: integer(0, 20),
    default: 5,
    description: 'Attempts after the first on connection failures, timeouts, 408, 429 and 5xx.',
  }),
  setting({
    key: 'alertWebhookBackoffMs',
    flag: '--alert-webhook-backoff-ms',
    env: ['MAXINE_ALERT_WEBHOOK_BACKOFF_MS'],
    kind: integer(10, 600_000),
    default: 1000,
    description: 'Wait before the first retry; each later one waits twice as long (±20 %, at most 5 minutes).',
  }),
  setting({
    key: 'alertWebhookTimeoutMs',
    flag: '--alert-webhook-timeout-ms',
    env: ['MAXINE_ALERT_WEBHOOK_TIMEOUT_MS'],
    // From 1 s: undici times response headers on a clock of about 1 s resolution.
    kind: integer(1000, 60_000),
    default: 5000,
    description: 'Connect, response headers and body each within this.',
  }),
  CONFIG_FILE,
] as const;

export type AnySetting = (typeof CONFIG_SETTINGS)[number];

export type MaxineConfig = {
  readonly [S in AnySetting as S['key']]: S extends Setting<string, infer T> ? T : never;
};

/** Property name commander gives a flag's value: `--data-dir` -> `dataDir`. */
export function flagAttribute(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Every name a setting goes by on the command line and in the environment. */
export function settingLabel(s: AnySetting): string {
  return [s.flag, ...s.env].join(' / ');
}
