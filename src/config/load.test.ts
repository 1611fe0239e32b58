import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CONFIG_SETTINGS, ConfigError, loadConfig, type MaxineConfig } from './index.ts';

const dir = mkdtempSync(join(tmpdir(), 'maxine-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function load(flags: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}): MaxineConfig {
  return loadConfig({ flags, env });
}

/** The ConfigError thrown for these inputs. */
function problemsOf(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    load(flags, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected loadConfig to throw');
}

describe('loadConfig defaults', () => {
  test('every setting has its default when nothing is given', () => {
    const config = load();
    assert.deepEqual(config, {
      host: '127.0.0.1',
      port: 8080,
      dataDir: './data',
      logLevel: 'info',
      heartbeatTimeoutSec: 5,
      strategy: 'round-robin',
      registryStateMode: 'local',
      registryStateFile: './data/shared-registry',
      redisUrl: undefined,
      redisTlsCaFile: undefined,
      redisKeyPrefix: 'maxine:registry:',
      etcdEndpoints: ['http://127.0.0.1:2379'],
      etcdKeyPrefix: 'maxine/registry/',
      instanceId: undefined,
      leaderLeaseMs: 15000,
      leaderRenewMs: 5000,
      fsync: 'interval',
      fsyncIntervalMs: 1000,
      snapshotIntervalMs: 30000,
      leaseCheckpointMs: 2000,
      trustProxy: false,
      hashKeyHeader: 'x-maxine-hash-key',
      bodyLimitBytes: 65536,
      eventRingSize: 10000,
      maxInstancesPerService: 10000,
      activeHealthChecksEnabled: false,
      activeHealthCheckIntervalMs: 10000,
      activeHealthCheckTimeoutMs: 2000,
      activeHealthCheckFailureThreshold: 3,
      activeHealthCheckRiseThreshold: 2,
      activeHealthCheckPath: '/health',
      activeHealthCheckConcurrency: 64,
      allowLinkLocal: false,
      proxyConnectTimeoutMs: 2000,
      proxyRequestTimeoutMs: 30000,
      proxyRetries: 1,
      proxyRetryBackoffMs: 25,
      proxyRetryBudgetPercent: 20,
      proxyMinRetriesPerSecond: 10,
      proxyMaxBodyBytes: 10485760,
      proxyPassAuthorization: false,
      proxyBreakerFailures: 5,
      proxyBreakerOpenMs: 10000,
      proxyOutlierConsecutiveFailures: 5,
      proxyOutlierBaseEjectionMs: 30000,
      proxyOutlierMaxEjectionMs: 300000,
      proxyOutlierMaxEjectionPercent: 50,
      shutdownTimeoutMs: 10000,
      requireClientAuth: false,
      adminUsername: undefined,
      adminPassword: undefined,
      operatorUsername: undefined,
      operatorPassword: undefined,
      viewerUsername: undefined,
      viewerPassword: undefined,
      jwtSecret: undefined,
      jwtPreviousSecrets: [],
      jwtPrivateKeyFile: undefined,
      jwtPreviousPublicKeyFiles: [],
      jwtExpiresInSec: 3600,
      jwtRefreshExpiresInSec: 604800,
      signinAttemptsPerUser: 5,
      signinAttemptsPerAddress: 30,
      oidcIssuer: undefined,
      oidcAudience: undefined,
      oidcJwksUri: undefined,
      oidcClockSkewSec: 30,
      oidcGroupsClaim: 'groups',
      oidcRoleMap: new Map(),
      tlsCertFile: undefined,
      tlsKeyFile: undefined,
      tlsClientCaFile: undefined,
      tlsClientAuth: 'none',
      eventsMaxConnectionsPerPrincipal: 100,
      eventsBufferBytes: 1048576,
      eventsPingIntervalMs: 30000,
      auditLogFile: undefined,
      auditLogFiles: 10,
      auditLogMaxBytes: 10485760,
      auditRingSize: 1000,
      metricsPublic: false,
      metricsMaxServices: 200,
      alertEvaluationIntervalMs: 1000,
      alertForMs: 10_000,
      alertMinInstances: 1,
      alertMinInstancesByService: new Map(),
      alertErrorRatePercent: 5,
      alertErrorRateWindowMs: 60_000,
      alertErrorRateMinRequests: 20,
      alertMaxActive: 1000,
      alertWebhooks: [],
      alertWebhookSecrets: new Map(),
      alertWebhookRetries: 5,
      alertWebhookBackoffMs: 1000,
      alertWebhookTimeoutMs: 5000,
      configFile: undefined,
    });
    assert.deepEqual(Object.keys(config).sort(), CONFIG_SETTINGS.map((s) => s.key).sort());
  });

  test('the result is frozen', () => {
    const config = load({ trustProxy: '10.0.0.1' });
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.trustProxy));
  });

  test('flags that are not settings are ignored', () => {
    assert.equal(load({ somethingElse: 'x' }).port, 8080);
  });
});

describe('precedence: flag > env > file > default', () => {
  const yaml = file('precedence.yaml', 'port: 7000\nlogLevel: warn\ndataDir: /from/file\nfsync: never\n');

  test('port: flag, then MAXINE_PORT, then PORT, then file, then default', () => {
    const env = { MAXINE_CONFIG_FILE: yaml, MAXINE_PORT: '9001', PORT: '9002' };
    assert.equal(load({ port: '9000' }, env).port, 9000);
    assert.equal(load({}, env).port, 9001);
    assert.equal(load({}, { MAXINE_CONFIG_FILE: yaml, PORT: '9002' }).port, 9002);
    assert.equal(load({}, { MAXINE_CONFIG_FILE: yaml }).port, 7000);
    assert.equal(load().port, 8080);
  });

  test('MAXINE_PORT wins over PORT, even when PORT comes first in the environment', () => {
    assert.equal(load({}, { PORT: '3000', MAXINE_PORT: '4000' }).port, 4000);
  });

  test('a flag equal to the default still wins over the environment', () => {
    assert.equal(load({ port: '8080' }, { MAXINE_PORT: '9001' }).port, 8080);
    assert.equal(load({ logLevel: 'info' }, { MAXINE_LOG_LEVEL: 'debug' }).logLevel, 'info');
  });

  test('logLevel, dataDir and fsync follow the same order', () => {
    const env = { MAXINE_CONFIG_FILE: yaml, MAXINE_LOG_LEVEL: 'error', MAXINE_DATA_DIR: '/from/env' };
    const fromFlags = load({ logLevel: 'debug', dataDir: '/from/flag', fsync: 'always' }, env);
    assert.equal(fromFlags.logLevel, 'debug');
    assert.equal(fromFlags.dataDir, '/from/flag');
    assert.equal(fromFlags.fsync, 'always');
    const fromEnv = load({}, env);
    assert.equal(fromEnv.logLevel, 'error');
    assert.equal(fromEnv.dataDir, '/from/env');
    assert.equal(fromEnv.fsync, 'never');
    assert.equal(fromEnv.snapshotIntervalMs, 30000);
  });

  test('original variable names: HEARTBEAT_TIMEOUT and SERVER_SELECTION_STRATEGY', () => {
    const config = load({}, { HEARTBEAT_TIMEOUT: '30', SERVER_SELECTION_STRATEGY: 'WRR' });
    assert.equal(config.heartbeatTimeoutSec, 30);
    assert.equal(config.strategy, 'weighted-round-robin');
    const prefixed = { MAXINE_HEARTBEAT_TIMEOUT: '10', HEARTBEAT_TIMEOUT: '30', MAXINE_SERVER_SELECTION_STRATEGY: 'CH' };
    assert.equal(load({}, prefixed).heartbeatTimeoutSec, 10);
    assert.equal(load({}, prefixed).strategy, 'consistent-hash');
  });

  test('empty environment variables count as unset', () => {
    assert.equal(load({}, { MAXINE_PORT: '', PORT: '7001' }).port, 7001);
    assert.equal(load({}, { MAXINE_PORT: '  ', PORT: '' }).port, 8080);
    assert.equal(load({}, { MAXINE_HOST: '' }).host, '127.0.0.1');
  });

  test('--config wins over MAXINE_CONFIG_FILE', () => {
    const other = file('other.json', '{"port": 7100}');
    assert.equal(load({ config: other }, { MAXINE_CONFIG_FILE: yaml }).port, 7100);
    assert.equal(load({ config: other }).configFile, other);
  });
});

describe('invalid values name the setting and its allowed values', () => {
  const cases: [flags: Record<string, unknown>, expected: string][] = [
    [{ port: 'abc' }, '--port / MAXINE_PORT / PORT: "abc" is not an integer from 1 to 65535'],
    [{ port: '0' }, '--port / MAXINE_PORT / PORT: "0" is not an integer from 1 to 65535'],
    [{ port: '65536' }, '--port / MAXINE_PORT / PORT: "65536" is not an integer from 1 to 65535'],
    [{ port: '0x1F' }, '--port / MAXINE_PORT / PORT: "0x1F" is not an integer from 1 to 65535'],
    [{ port: '1e3' }, '--port / MAXINE_PORT / PORT: "1e3" is not an integer from 1 to 65535'],
    [{ port: '80.5' }, '--port / MAXINE_PORT / PORT: "80.5" is not an integer from 1 to 65535'],
    [{ fsync: 'sometimes' }, '--fsync / MAXINE_FSYNC: "sometimes" is not one of always, interval, never'],
    [{ logLevel: 'loud' }, '--log-level / MAXINE_LOG_LEVEL: "loud" is not one of fatal, error, warn, info, debug, trace, silent'],
    [{ host: 'not a host' }, '--host / MAXINE_HOST: "not a host" is not an IP address or hostname'],
    [{ host: '-bad.example' }, '--host / MAXINE_HOST: "-bad.example" is not an IP address or hostname'],
    [{ hashKeyHeader: 'x key' }, '--hash-key-header / MAXINE_HASH_KEY_HEADER: "x key" is not an HTTP header name'],
    [{ heartbeatTimeout: '86401' }, '--heartbeat-timeout / MAXINE_HEARTBEAT_TIMEOUT / HEARTBEAT_TIMEOUT: "86401" is not an integer from 1 to 86400'],
    [{ bodyLimit: '1023' }, '--body-limit / MAXINE_BODY_LIMIT: "1023" is not an integer from 1024 to 10485760'],
    [{ trustProxy: 'maybe' }, '--trust-proxy / MAXINE_TRUST_PROXY: "maybe" is not true, false, a hop count'],
    [{ dataDir: ' ' }, '--data-dir / MAXINE_DATA_DIR: " " is not a non-empty path'],
    [{ registryStateMode: 'zookeeper' }, '--registry-state-mode / MAXINE_REGISTRY_STATE_MODE: "zookeeper" is not one of local, shared-file, redis, etcd'],
    // A URL may carry a password: never echoed back.
    [{ redisUrl: 'http://user:pw@127.0.0.1:6379' }, '--redis-url / MAXINE_REGISTRY_REDIS_URL: the given value (hidden) is not a redis:// or rediss:// URL'],
    [{ jwtSecret: 'short-secret' }, '--jwt-secret / MAXINE_JWT_SECRET: the given value (hidden) is not a secret of at least 32 characters'],
    [{ adminUsername: 'root' }, '--admin-username / MAXINE_ADMIN_USERNAME: set together with --admin-password / MAXINE_ADMIN_PASSWORD'],
    [{ adminUsername: 'root', adminPassword: 'short' }, '--admin-password / MAXINE_ADMIN_PASSWORD: the given value (hidden) is not a secret of at least 8 characters'],
    [{ oidcIssuer: 'https://id.example' }, '--oidc-audience / MAXINE_OIDC_AUDIENCE: required when an OIDC issuer is set'],
    [{ oidcRoleMap: 'admins=root' }, '--oidc-role-map / MAXINE_OIDC_ROLE_MAP: "admins=root" is not comma-separated value=role pairs'],
    [{ tlsCertFile: 'cert.pem' }, '--tls-cert-file / MAXINE_TLS_CERT_FILE: set together with --tls-key-file / MAXINE_TLS_KEY_FILE'],
    [{ tlsClientAuth: 'required' }, '--tls-client-auth / MAXINE_TLS_CLIENT_AUTH: required needs --tls-client-ca-file / MAXINE_TLS_CLIENT_CA_FILE and a server certificate'],
    [{ jwtSecret: 'x'.repeat(32), jwtPrivateKeyFile: 'key.pem' }, '--jwt-private-key-file / MAXINE_JWT_PRIVATE_KEY_FILE: set either it or --jwt-secret / MAXINE_JWT_SECRET, not both'],
    [{ registryStateMode: 'redis' }, '--redis-url / MAXINE_REGISTRY_REDIS_URL: required when the registry state mode is redis'],
    [{ etcdEndpoints: 'http://127.0.0.1:2379,etcd:2379' }, '--etcd-endpoints / MAXINE_REGISTRY_ETCD_ENDPOINTS: "http://127.0.0.1:2379,etcd:2379" is not a comma-separated list of http:// or https:// URLs ("etcd:2379" is not an http(s) URL)'],
    [{ instanceId: '../x' }, '--instance-id / MAXINE_INSTANCE_ID: "../x" is not letters, digits and . _ -'],
    [{ redisKeyPrefix: 'a b' }, '--redis-key-prefix / MAXINE_REGISTRY_REDIS_KEY_PREFIX: "a b" is not letters, digits'],
    [{ leaderRenewMs: '6000' }, '--leader-renew-ms / MAXINE_LEADER_ELECTION_RENEW_MS: 6000 must be at most a third of the leader lease (15000 ms)'],
    [{ activeHealthChecksEnabled: 'maybe' }, '--active-health-checks-enabled / MAXINE_ACTIVE_HEALTH_CHECKS_ENABLED: "maybe" is not true or false'],
    [{ activeHealthCheckPath: 'health' }, "--active-health-check-path / MAXINE_ACTIVE_HEALTH_CHECK_PATH: \"health\" is not a URL path starting with '/'"],
    [{ activeHealthCheckPath: '/a b' }, "--active-health-check-path / MAXINE_ACTIVE_HEALTH_CHECK_PATH: \"/a b\" is not a URL path starting with '/'"],
    [{ activeHealthCheckTimeoutMs: '5000', activeHealthCheckIntervalMs: '1000' }, '--active-health-check-timeout-ms / MAXINE_ACTIVE_HEALTH_CHECK_TIMEOUT_MS: 5000 must not exceed the check interval (1000 ms)'],
    [{ proxyRetries: '6' }, '--proxy-retries / MAXINE_PROXY_RETRIES: "6" is not an integer from 0 to 5'],
    [{ alertMinInstancesByService: 'orders=two' }, '--alert-min-instances-by-service / MAXINE_ALERT_MIN_INSTANCES_BY_SERVICE: "orders=two" is not comma-separated service=n pairs (a name or a pattern with *; n from 0 to 10000) ("orders" must map to a number from 0 to 10000)'],
    [{ alertMinInstancesByService: '../x=1' }, '--alert-min-instances-by-service / MAXINE_ALERT_MIN_INSTANCES_BY_SERVICE: "../x=1" is not comma-separated service=n pairs'],
    // Webhook URLs often carry a token: the value is never quoted, the details are.
    [{ alertWebhooks: '[{"name":"pager"' }, '--alert-webhooks / MAXINE_ALERT_WEBHOOKS: the given value (hidden) is not a JSON list of at most 20 webhooks {name, url, severities?, services?, rules?} (not valid JSON)'],
    [{ alertWebhooks: '[{"name":"pager","url":"ftp://hooks.example/T0k3n"}]' }, '--alert-webhooks / MAXINE_ALERT_WEBHOOKS: the given value (hidden) is not a JSON list of at most 20 webhooks {name, url, severities?, services?, rules?} (pager: url must be an http:// or https:// URL)'],
    [{ alertWebhooks: '[{"name":"pager","url":"https://u:p@hooks.example/"}]' }, '--alert-webhooks / MAXINE_ALERT_WEBHOOKS: the given value (hidden) is not a JSON list of at most 20 webhooks {name, url, severities?, services?, rules?} (pager: url must not hold a user or password'],
    [{ alertWebhooks: '[{"name":"pager","url":"https://hooks.example/","severity":["critical"]}]' }, '--alert-webhooks / MAXINE_ALERT_WEBHOOKS: the given value (hidden) is not a JSON list of at most 20 webhooks {name, url, severities?, services?, rules?} (webhook 1: unknown field "severity"'],
    [{ alertWebhooks: '[{"name":"pager","url":"https://hooks.example/","severities":["fatal"]}]' }, '--alert-webhooks / MAXINE_ALERT_WEBHOOKS: the given value (hidden) is not a JSON list of at most 20 webhooks {name, url, severities?, services?, rules?} (pager: severities must be a list of critical / warning)'],
    [{ alertWebhooks: '[{"name":"a","url":"https://x.example/"},{"name":"a","url":"https://y.example/"}]' }, '--alert-webhooks / MAXINE_ALERT_WEBHOOKS: the given value (hidden) is not a JSON list of at most 20 webhooks {name, url, severities?, services?, rules?} (two webhooks are called a)'],
    [{ alertWebhookSecrets: 'pager=short' }, '--alert-webhook-secrets / MAXINE_ALERT_WEBHOOK_SECRETS: the given value (hidden) is not comma-separated name=secret pairs'],
    [{ alertWebhookSecrets: 'pager=0123456789abcdef' }, '--alert-webhook-secrets / MAXINE_ALERT_WEBHOOK_SECRETS: names pager, which is not one of --alert-webhooks / MAXINE_ALERT_WEBHOOKS'],
  ];
  for (const [flags, expected] of cases) {
    test(`${JSON.stringify(flags)}`, () => {
      const err = problemsOf(flags);
      assert.equal(err.problems.length, 1);
      assert.ok(err.problems[0]?.startsWith(expected), `${err.problems[0]} should start with ${expected}`);
      assert.ok(err.message.includes(expected));
    });
  }

  test('secrets are never echoed back in problems', () => {
    const err = problemsOf({
      jwtSecret: 'hunter2-secret',
      redisUrl: 'http://user:pw-in-url@host',
      alertWebhooks: '[{"name":"slack","url":"https://hooks.example/services/T0K3N","rules":["nope"]}]',
      alertWebhookSecrets: 'slack=sekrit-but-short',
    });
    for (const leaked of ['hunter2', 'pw-in-url', 'T0K3N', 'sekrit']) assert.ok(!err.message.includes(leaked), err.message);
  });

  test('alert webhooks and thresholds: JSON from the environment, per-service counts with patterns', () => {
    const config = load({
      alertWebhooks: '[{"name":"pager","url":"https://hooks.example/p","severities":["critical"],"services":["orders-*"]},{"name":"chat","url":"http://127.0.0.1:9/x"}]',
      alertWebhookSecrets: 'pager=0123456789abcdef==',
      alertMinInstancesByService: 'orders=3, batch-*=0',
    });
    assert.deepEqual(config.alertWebhooks, [
      { name: 'pager', url: 'https://hooks.example/p', severities: ['critical'], services: ['orders-*'], rules: [] },
      { name: 'chat', url: 'http://127.0.0.1:9/x', severities: [], services: [], rules: [] },
    ]);
    assert.equal(config.alertWebhookSecrets.get('pager'), '0123456789abcdef==', 'split at the first =: base64 secrets end in =');
    assert.deepEqual([...config.alertMinInstancesByService], [['orders', 3], ['batch-*', 0]]);
  });

  test('the OIDC role map reads value=role pairs, roles in any case', () => {
    const config = load({ oidcRoleMap: 'platform-admins=admin, sre=Operator,' });
    assert.deepEqual([...config.oidcRoleMap], [['platform-admins', 'admin'], ['sre', 'operator']]);
  });

  test('an unknown strategy lists every accepted spelling, original codes included', () => {
    const [problem] = problemsOf({ strategy: 'fastest' }).problems;
    assert.match(problem ?? '', /^--strategy \/ MAXINE_SERVER_SELECTION_STRATEGY \/ SERVER_SELECTION_STRATEGY: "fastest" is not one of /);
    for (const spelling of ['round-robin', 'weighted-round-robin', 'p2c-ewma', 'RR', 'WRR', 'CH']) {
      assert.ok(problem?.includes(spelling), `${spelling} missing from ${problem}`);
    }
  });

  test('the message says which source gave the bad value', () => {
    assert.match(problemsOf({}, { PORT: 'abc' }).message, /\[from PORT\]/);
    assert.match(problemsOf({}, { MAXINE_PORT: 'abc', PORT: '80' }).message, /\[from MAXINE_PORT\]/);
  });

  test('a bad higher-precedence value is an error even when a lower one is valid', () => {
    assert.throws(() => load({}, { MAXINE_PORT: 'abc', PORT: '80' }), ConfigError);
  });

  test('all problems are reported at once', () => {
    const err = problemsOf(
      { port: 'abc', host: 'bad host' },
      { MAXINE_FSYNC: 'sometimes', MAXINE_LOG_LEVEL: 'loud', MAXINE_EVENT_RING_SIZE: '5' },
    );
    assert.equal(err.problems.length, 5);
    for (const name of ['--port', '--host', 'MAXINE_FSYNC', 'MAXINE_LOG_LEVEL', 'MAXINE_EVENT_RING_SIZE']) {
      assert.ok(err.message.includes(name), `${name} missing from ${err.message}`);
    }
    assert.match(err.message, /^invalid configuration \(5 problems\):\n {2}--host/);
    assert.equal(err.name, 'ConfigError');
  });
});

describe('config files', () => {
  test('YAML with numbers, strings and a trustProxy list', () => {
    const path = file(
      'maxine.yaml',
      [
        'host: 0.0.0.0',
        'port: 9100',
        'dataDir: /var/lib/maxine',
        'strategy: RH',
        'heartbeatTimeoutSec: "15"',
        'trustProxy:',
        '  - 10.0.0.0/8',
        '  - ::1',
        'hashKeyHeader: X-Tenant',
        '',
      ].join('\n'),
    );
    const config = load({ config: path });
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.port, 9100);
    assert.equal(config.dataDir, '/var/lib/maxine');
    assert.equal(config.strategy, 'rendezvous-hash');
    assert.equal(config.heartbeatTimeoutSec, 15);
    assert.deepEqual(config.trustProxy, ['10.0.0.0/8', '::1']);
    assert.equal(config.hashKeyHeader, 'x-tenant');
  });

  test('YAML lists and maps for the alert webhooks, their secrets and the per-service thresholds', () => {
    const path = file(
      'alerts.yaml',
      [
        'alertWebhooks:',
        '  - name: pager',
        '    url: https://hooks.example/p',
        '    rules: [no_leader, store_unreachable]',
        'alertWebhookSecrets:',
        '  pager: a-secret-of-16-chars-or-more',
        'alertMinInstancesByService:',
        '  orders: 2',
        '',
      ].join('\n'),
    );
    const config = load({ config: path });
    assert.deepEqual(config.alertWebhooks, [{ name: 'pager', url: 'https://hooks.example/p', severities: [], services: [], rules: ['no_leader', 'store_unreachable'] }]);
    assert.equal(config.alertWebhookSecrets.get('pager'), 'a-secret-of-16-chars-or-more');
    assert.equal(config.alertMinInstancesByService.get('orders'), 2);
  });

  test('.yml is YAML too, and booleans and hop counts are accepted as YAML scalars', () => {
    assert.equal(load({ config: file('a.yml', 'trustProxy: true\n') }).trustProxy, true);
    assert.equal(load({ config: file('b.yml', 'trustProxy: 2\n') }).trustProxy, 2);
  });

  test('JSON', () => {
    const path = file('maxine.json', JSON.stringify({ port: 9200, fsync: 'always', trustProxy: false }));
    const config = load({}, { MAXINE_CONFIG_FILE: path });
    assert.equal(config.port, 9200);
    assert.equal(config.fsync, 'always');
    assert.equal(config.trustProxy, false);
  });

  test('an empty YAML file and `key:` with no value set nothing', () => {
    assert.equal(load({ config: file('empty.yaml', '') }).port, 8080);
    assert.equal(load({ config: file('null.yaml', 'port:\n') }).port, 8080);
  });

  test('bad values in the file name the setting and the file', () => {
    const path = file('bad.yaml', 'port: 70000\nfsync: sometimes\n');
    const err = problemsOf({ config: path });
    assert.equal(err.problems.length, 2);
    assert.ok(err.problems[0]?.startsWith('--port / MAXINE_PORT / PORT: 70000 is not an integer from 1 to 65535'));
    assert.ok(err.problems[0]?.includes(`[from config file ${JSON.stringify(path)} key port]`));
    assert.ok(err.problems[1]?.startsWith('--fsync / MAXINE_FSYNC: "sometimes" is not one of always, interval, never'));
  });

  test('wrong types in the file are rejected', () => {
    const path = file('types.json', JSON.stringify({ port: true, host: 12, logLevel: ['info'] }));
    assert.equal(problemsOf({ config: path }).problems.length, 3);
  });

  test('unknown keys are rejected, naming them and listing the valid keys', () => {
    const path = file('typo.yaml', 'prot: 80\nport: 81\nlog_level: info\n');
    const err = problemsOf({ config: path });
    assert.equal(err.problems.length, 1);
    assert.match(err.message, /unknown keys "prot", "log_level"; valid keys are host, port, dataDir, logLevel, /);
    assert.ok(err.message.includes('shutdownTimeoutMs'));
  });

  test('the config file cannot name another config file', () => {
    const path = file('nested.yaml', 'configFile: other.yaml\n');
    assert.match(problemsOf({ config: path }).message, /unknown key "configFile"/);
    assert.doesNotMatch(problemsOf({ config: path }).message, /valid keys are.*configFile/);
  });

  test('unusable files are reported against --config / MAXINE_CONFIG_FILE, along with other problems', () => {
    const cases: [path: string, expected: RegExp][] = [
      [file('maxine.toml', 'port = 1'), /^--config \/ MAXINE_CONFIG_FILE: ".*maxine\.toml" does not end in \.yaml, \.yml or \.json$/],
      [join(dir, 'missing.yaml'), /^--config \/ MAXINE_CONFIG_FILE: ".*missing\.yaml" cannot be read: ENOENT/],
      [file('broken.yaml', 'port: [1\n'), /^--config \/ MAXINE_CONFIG_FILE: ".*broken\.yaml" cannot be read: /],
      [file('broken.json', '{"port": '), /^--config \/ MAXINE_CONFIG_FILE: ".*broken\.json" cannot be read: /],
    ];
    for (const [path, expected] of cases) {
      const err = problemsOf({ config: path, port: 'abc' });
      assert.equal(err.problems.length, 2, err.message);
      assert.match(err.problems[0] ?? '', expected);
      assert.match(err.problems[1] ?? '', /^--port/);
    }
  });

  test('a file that is not a mapping is rejected', () => {
    assert.match(problemsOf({ config: file('list.yaml', '- port\n') }).message, /expected a mapping of setting names to values/);
  });
});

test('booleans read from the environment accept the usual spellings', () => {
  for (const [raw, expected] of [['true', true], ['YES', true], ['1', true], ['on', true], ['false', false], ['no', false], ['0', false], ['Off', false]] as const) {
    assert.equal(load({}, { MAXINE_ACTIVE_HEALTH_CHECKS_ENABLED: raw }).activeHealthChecksEnabled, expected, raw);
  }
  assert.equal(load({}, { MAXINE_PROXY_PASS_AUTHORIZATION: 'true' }).proxyPassAuthorization, true);
  assert.equal(load({}, { MAXINE_ALLOW_LINK_LOCAL_INSTANCES: 'true' }).allowLinkLocal, true);
});
