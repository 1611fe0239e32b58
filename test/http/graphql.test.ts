import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { startTestMaxine, type TestMaxine } from '../helpers/maxine.ts';

const LEASE_FIELDS = 'renewedAt expiresAt ejected';
const CHECK_FIELDS = 'check { type path statusMin statusMax bodyMatch intervalMs timeoutMs rise fall jitterMs deregisterCriticalAfterMs }';
/** Every field of the REST instance view. */
const INSTANCE_FIELDS = `serviceName nodeName address scheme hostName port path weight tags version zone metadata healthCheckPath
  status statusReason statusChangedAt health healthReason healthChangedAt ${CHECK_FIELDS} timeOut registeredAt createRevision modifyRevision`;

interface GraphQLAnswer {
  readonly status: number;
  readonly data: any;
  readonly errors: any[] | undefined;
  readonly json: any;
}

function graphql(maxine: TestMaxine, query: string, variables?: Record<string, unknown>, authorization?: string): Promise<GraphQLAnswer> {
  const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
  return maxine.call('POST', '/graphql', { query, variables }, headers).then((res) => ({ status: res.status, data: res.json?.data, errors: res.json?.errors, json: res.json }));
}

function codes(answer: GraphQLAnswer): string[] {
  return (answer.errors ?? []).map((e) => e.extensions?.code);
}

/** A graphql-transport-ws client, by hand: connection_init/ack, subscribe, next, error, complete. */
class GraphQLSocket {
  private readonly messages: any[] = [];
  private wake: () => void = () => {};
  closed: { code: number; reason: string } | null = null;

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.messages.push(JSON.parse(String(data)));
      this.wake();
    });
    socket.on('close', (code, reason) => {
      this.closed = { code, reason: String(reason) };
      this.wake();
    });
  }

  static async connect(maxine: TestMaxine, payload?: Record<string, unknown>): Promise<GraphQLSocket> {
    const socket = new WebSocket(`${maxine.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
    await once(socket, 'open');
    const client = new GraphQLSocket(socket);
    client.send({ type: 'connection_init', ...(payload === undefined ? {} : { payload }) });
    return client;
  }

  send(message: object): void {
    this.socket.send(JSON.stringify(message));
  }

  subscribe(id: string, query: string, variables?: Record<string, unknown>): void {
    this.send({ id, type: 'subscribe', payload: { query, variables } });
  }

  /** Takes the first message matching, waiting for one up to `timeoutMs`. */
  async take(match: (message: any) => boolean, timeoutMs = 5000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.messages.findIndex(match);
      if (index >= 0) return this.messages.splice(index, 1)[0];
      if (this.closed !== null) throw new Error(`socket closed (${this.closed.code}) while waiting`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a message');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Pushed events of subscription `id`, in the order they came. */
  async events(id: string, count: number, match: (event: any) => boolean = () => true): Promise<any[]> {
    const out: any[] = [];
    while (out.length < count) {
      const message = await this.take((m) => m.id === id && (m.type !== 'next' || match(Object.values(m.payload.data)[0])));
      assert.equal(message.type, 'next', JSON.stringify(message));
      out.push(Object.values(message.payload.data)[0]);
    }
    return out;
  }

  async whenClosed(): Promise<{ code: number; reason: string }> {
    if (this.closed === null) await once(this.socket, 'close');
    return this.closed!;
  }

  close(): void {
    this.socket.close();
  }
}

/**
 * Subscribing has no acknowledgement in graphql-transport-ws: poke until
 * each subscription has delivered something, so what follows is observed.
 */
async function untilLive(socket: GraphQLSocket, ids: readonly string[], poke: (i: number) => Promise<void>): Promise<void> {
  const pending = new Set(ids);
  for (let i = 0; pending.size > 0; i++) {
    assert.ok(i < 50, `subscriptions ${[...pending].join(', ')} never delivered`);
    await poke(i);
    for (const id of [...pending]) {
      if (await socket.take((m) => m.id === id && m.type === 'next', 100).then(() => true, () => false)) pending.delete(id);
    }
  }
}

async function signIn(maxine: TestMaxine, userName: string, role: string): Promise<string> {
  const created = await maxine.call('POST', '/api/maxine/users', { userName, password: `${userName}-password`, role });
  assert.equal(created.status, 201, created.text);
  const signin = await maxine.call('POST', '/api/maxine/signin', { userName, password: `${userName}-password` }, { authorization: '' });
  assert.equal(signin.status, 200, signin.text);
  return `Bearer ${signin.json.accessToken}`;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

describe('GraphQL in the compatible posture', () => {
  let maxine: TestMaxine;
  let viewer: string;

  const register = async (body: Record<string, unknown>) => {
    const res = await maxine.call('POST', '/api/maxine/serviceops/register', { hostName: '127.0.0.1', port: 8080, timeOut: 600, ...body });
    assert.equal(res.status, 200, res.text);
  };
  const deregister = async (serviceName: string, nodeName: string) => {
    const res = await maxine.call('DELETE', '/api/maxine/serviceops/deregister', { serviceName, nodeName });
    assert.equal(res.status, 200, res.text);
  };
  const auditOf = async (service: string) => (await maxine.call('GET', `/api/actuator/audit?service=${service}`)).json.events as any[];

  before(async () => {
    maxine = await startTestMaxine();
    viewer = await signIn(maxine, 'vic', 'viewer');
    await register({ serviceName: 'orders-api', nodeName: 'o1', port: 8081, tags: ['blue', 'eu'], zone: 'z1', version: '1.0', metadata: { team: 'a' } });
    await register({ serviceName: 'orders-api', nodeName: 'o2', port: 8082, tags: ['green'], zone: 'z2', version: '2.0', check: { type: 'tcp', intervalMs: 3_600_000 } });
    await register({ serviceName: 'billing', nodeName: 'b1', port: 8083, tags: ['blue'], weight: 3 });
  });

  after(() => maxine.stop());

  test('services, service, instances, revision and cluster answer what REST answers', async () => {
    const rest = (await maxine.call('GET', '/api/maxine/serviceops/servers?format=v2')).json;
    const answer = await graphql(maxine, `{
      revision
      services { name revision eligible instances { ${INSTANCE_FIELDS} ${LEASE_FIELDS} } }
      one: service(name: "orders-api") { name revision eligible instances { nodeName } }
      none: service(name: "nothing-here") { name }
      blue: instances(filters: { tags: ["blue"] }) { ${INSTANCE_FIELDS} ${LEASE_FIELDS} }
      cluster { enabled instanceId isLeader hasLeader fencingToken leaderInstanceId store revision reachable storeError }
    }`);
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.equal(answer.errors, undefined);
    const { data } = answer;
    assert.equal(data.revision, rest.revision);
    assert.deepEqual(data.services, rest.services);
    const orders = rest.services.find((s: any) => s.name === 'orders-api');
    assert.deepEqual(data.one, { name: 'orders-api', revision: orders.revision, eligible: 2, instances: [{ nodeName: 'o1' }, { nodeName: 'o2' }] });
    assert.equal(data.none, null);
    const blue = rest.services.flatMap((s: any) => s.instances).filter((i: any) => i.tags.includes('blue'));
    assert.deepEqual(data.blue, blue);
    assert.deepEqual(data.blue.map((i: any) => i.nodeName), ['b1', 'o1']);
    assert.ok(data.services.some((s: any) => s.instances.some((i: any) => i.check?.type === 'tcp')));
    const { observedAt: _observed, ...cluster } = (await maxine.call('GET', '/api/actuator/cluster')).json;
    assert.deepEqual(data.cluster, cluster);
  });

  test('listings filter, sort and page', async () => {
    const { data, errors } = await graphql(maxine, `{
      byInstances: services(sort: { by: INSTANCES, descending: true }) { name }
      prefixed: services(filter: { namePrefix: "ord" }) { name }
      first: services(first: 1) { name }
      z2: instances(filters: { zone: "z2", version: "2.0" }) { nodeName }
      maintenance: instances(filters: { status: [maintenance] }) { nodeName }
      paged: instances(first: 2) { nodeName }
    }`);
    assert.equal(errors, undefined);
    assert.deepEqual(data.byInstances.map((s: any) => s.name), ['orders-api', 'billing']);
    assert.deepEqual(data.prefixed, [{ name: 'orders-api' }]);
    assert.deepEqual(data.first, [{ name: 'billing' }]);
    assert.deepEqual(data.z2, [{ nodeName: 'o2' }]);
    assert.deepEqual(data.maintenance, []);
    assert.deepEqual(data.paged, [{ nodeName: 'b1' }, { nodeName: 'o1' }]);
  });

  test('discover picks an instance and honours the filters', async () => {
    const rest = (await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=orders-api&format=json&zone=z1')).json;
    const { data, errors } = await graphql(maxine, `{
      z1: discover(serviceName: "orders-api", zone: "z1") { ${INSTANCE_FIELDS} }
      green: discover(serviceName: "orders-api", tags: ["green"]) { nodeName }
      v1: discover(serviceName: "orders-api", version: "1.0", strategy: "round-robin") { nodeName }
      hashed: discover(serviceName: "orders-api", strategy: "consistent-hash", key: "user-7") { nodeName }
      again: discover(serviceName: "orders-api", strategy: "consistent-hash", key: "user-7") { nodeName }
      nothing: discover(serviceName: "orders-api", tags: ["blue", "green"]) { nodeName }
      any: discover(serviceName: "orders-api") { nodeName }
    }`);
    assert.equal(errors, undefined, JSON.stringify(errors));
    assert.deepEqual(data.z1, rest);
    assert.equal(data.green.nodeName, 'o2');
    assert.equal(data.v1.nodeName, 'o1');
    assert.deepEqual(data.hashed, data.again);
    assert.equal(data.nothing, null);
    assert.ok(['o1', 'o2'].includes(data.any.nodeName));
  });

  test('register, heartbeat, setStatus and deregister change the registry as REST would, audited', async () => {
    const input = { hostName: 'https://127.0.0.1', nodeName: 'g1', serviceName: 'gql-svc', port: '9443', tags: ['t1'], metadata: { owner: 'me' }, timeOut: 30 };
    const registered = await graphql(maxine, `mutation ($input: RegisterInput!) { register(input: $input) { changed instance { ${INSTANCE_FIELDS} } } }`, { input });
    assert.equal(registered.errors, undefined, JSON.stringify(registered.errors));
    assert.equal(registered.data.register.changed, true);
    const listed = (await maxine.call('GET', '/api/maxine/serviceops/servers?format=v2&serviceName=gql-svc')).json.services[0].instances[0];
    const { renewedAt: _r, expiresAt: _e, ejected: _j, ...view } = listed;
    assert.deepEqual(registered.data.register.instance, view);
    assert.equal(view.address, 'https://127.0.0.1:9443');

    const again = await graphql(maxine, `mutation ($input: RegisterInput!) { register(input: $input) { changed } }`, { input });
    assert.equal(again.data.register.changed, false);

    const beat = await graphql(maxine, 'mutation { heartbeat(serviceName: "gql-svc", nodeName: "g1") { nodeName timeOut expiresAt } }');
    assert.equal(beat.data.heartbeat.nodeName, 'g1');
    assert.equal(beat.data.heartbeat.timeOut, 30);
    assert.ok(Date.parse(beat.data.heartbeat.expiresAt) >= Date.parse(listed.expiresAt));

    const status = await graphql(maxine, 'mutation { setStatus(serviceName: "gql-svc", nodeName: "g1", status: maintenance, reason: "patching") { status statusReason } }');
    assert.deepEqual(status.data.setStatus, { status: 'maintenance', statusReason: 'patching' });
    const afterStatus = (await maxine.call('GET', '/api/maxine/serviceops/servers?format=v2&serviceName=gql-svc')).json.services[0];
    assert.equal(afterStatus.instances[0].status, 'maintenance');
    assert.equal(afterStatus.eligible, 0);

    const removed = await graphql(maxine, 'mutation { deregister(serviceName: "gql-svc", nodeName: "g1") { nodeName status } }');
    assert.deepEqual(removed.data.deregister, { nodeName: 'g1', status: 'maintenance' });
    assert.deepEqual((await maxine.call('GET', '/api/maxine/serviceops/servers?format=v2&serviceName=gql-svc')).json.services, []);

    const gone = await graphql(maxine, 'mutation { deregister(serviceName: "gql-svc", nodeName: "g1") { nodeName } }');
    assert.deepEqual(codes(gone), ['NOT_FOUND']);
    const unknownBeat = await graphql(maxine, 'mutation { heartbeat(serviceName: "gql-svc", nodeName: "g1") { nodeName } }');
    assert.deepEqual(codes(unknownBeat), ['NOT_FOUND']);

    // One audit event per change; the re-registration and the heartbeat changed nothing.
    const audit = (await auditOf('gql-svc')).reverse();
    assert.deepEqual(
      audit.map((e) => [e.action, e.result, e.status, e.method, e.route]),
      [
        ['register', 'succeeded', 200, 'POST', '/graphql'],
        ['ops:write', 'succeeded', 200, 'POST', '/graphql'],
        ['deregister', 'succeeded', 200, 'POST', '/graphql'],
        ['deregister', 'failed', 404, 'POST', '/graphql'],
      ],
    );
    assert.equal(audit[0].actor.id, 'admin');
  });

  test('a viewer reads but may not change statuses: FORBIDDEN, audited; anonymous callers may discover but not read', async () => {
    const read = await graphql(maxine, '{ services { name } }', undefined, viewer);
    assert.deepEqual(read.data.services.map((s: any) => s.name), ['billing', 'orders-api']);
    const refused = await graphql(maxine, 'mutation { setStatus(serviceName: "orders-api", nodeName: "o1", status: draining) { status } }', undefined, viewer);
    assert.equal(refused.status, 200);
    assert.deepEqual(codes(refused), ['FORBIDDEN']);
    assert.equal(refused.data, null);
    // Invalid input from a caller who could never change statuses is refused, not validated (as REST does).
    const unchecked = await graphql(maxine, 'mutation { setStatus(serviceName: "orders-api", nodeName: "o1", status: up, reason: "a\\u0007") { status } }', undefined, viewer);
    assert.deepEqual(codes(unchecked), ['FORBIDDEN']);
    const denied = (await auditOf('orders-api')).filter((e) => e.result === 'denied' && e.actor.id === 'vic');
    assert.deepEqual(denied.map((e) => [e.action, e.status, e.route]), [['ops:write', 403, '/graphql'], ['ops:write', 403, '/graphql']]);
    const instances = (await maxine.call('GET', '/api/maxine/serviceops/servers?format=v2&serviceName=orders-api')).json.services[0].instances;
    assert.deepEqual(instances.map((i: any) => [i.nodeName, i.status]), [['o1', 'up'], ['o2', 'up']]);

    const anonymous = await graphql(maxine, '{ services { name } }', undefined, '');
    assert.deepEqual(codes(anonymous), ['UNAUTHORIZED']);
    // Discovery is open to every client in this posture, as in REST.
    const discovered = await graphql(maxine, '{ discover(serviceName: "billing") { nodeName } }', undefined, '');
    assert.equal(discovered.data.discover.nodeName, 'b1');
    const bad = await graphql(maxine, '{ services { name } }', undefined, 'Bearer not-a-token');
    assert.equal(bad.status, 401);
    assert.equal(bad.json.code, 'UNAUTHORIZED');
    assert.deepEqual(codes(bad), ['UNAUTHORIZED']);
  });

  test('bad input is VALIDATION_FAILED with details, by the REST rules, never a 500', async () => {
    const registerWith = (fields: string) =>
      graphql(maxine, `mutation { register(input: { hostName: "127.0.0.1", nodeName: "bad", serviceName: "bad-svc", ${fields} }) { changed } }`);
    const cases: [string, string][] = [
      ['port: 70000', 'port'],
      ['port: "65536"', 'port'],
      ['port: "http"', 'port'],
      ['weight: 0', 'weight'],
      ['timeOut: 86401', 'timeOut'],
      ['tags: ["a b"]', 'tags'],
      ['metadata: { __proto__: "x" }', 'metadata.__proto__'],
      ['zone: "-z"', 'zone'],
      ['check: { type: http, intervalMs: 5 }', 'check.intervalMs'],
      [`version: "${'v'.repeat(65)}"`, 'version'],
    ];
    for (const [fields, field] of cases) {
      const answer = await registerWith(fields);
      assert.deepEqual(codes(answer), ['VALIDATION_FAILED'], `${fields}: ${JSON.stringify(answer.json)}`);
      assert.ok(answer.errors![0].extensions.details.some((d: any) => d.field === field), `${fields}: ${JSON.stringify(answer.errors)}`);
    }
    for (const hostName of ['exa mple.com', '169.254.169.254', 'x'.repeat(254)]) {
      const answer = await graphql(maxine, 'mutation ($h: String!) { register(input: { hostName: $h, nodeName: "bad", serviceName: "bad-svc" }) { changed } }', { h: hostName });
      assert.deepEqual(codes(answer), ['VALIDATION_FAILED'], hostName);
    }
    for (const [query, variables] of [
      ['mutation { register(input: { hostName: "127.0.0.1", nodeName: "bad", serviceName: "bad-svc", port: 1.5 }) { changed } }', undefined],
      ['mutation { register(input: { hostName: "127.0.0.1", nodeName: "bad", serviceName: "bad-svc", ssl: "yes" }) { changed } }', undefined],
      ['mutation ($input: RegisterInput!) { register(input: $input) { changed } }', { input: { hostName: 1, nodeName: 'bad', serviceName: 'bad-svc' } }],
      ['mutation ($input: RegisterInput!) { register(input: $input) { changed } }', { input: { nodeName: 'bad', serviceName: 'bad-svc' } }],
      ['{ services { name', undefined],
      ['{ nope }', undefined],
      ['{ services(first: 5000) { name } }', undefined],
      ['{ discover(serviceName: "../x") { nodeName } }', undefined],
      ['{ discover(serviceName: "billing", strategy: "teleport") { nodeName } }', undefined],
      ['query ($t: [String!]) { discover(serviceName: "billing", tags: $t) { nodeName } }', { t: Array.from({ length: 33 }, (_, i) => `t${i}`) }],
      [`{ discover(serviceName: "billing", tags: [${Array.from({ length: 33 }, (_, i) => `"t${i}"`).join(',')}]) { nodeName } }`, undefined],
      ['mutation { setStatus(serviceName: "orders-api", nodeName: "o1", status: up, reason: "a\\u0007b") { status } }', undefined],
      ['mutation { heartbeat(serviceName: "", nodeName: "o1") { nodeName } }', undefined],
      [`{ ${'revision '.repeat(5001)}}`, undefined],
    ] as const) {
      const answer = await graphql(maxine, query, variables);
      assert.ok(answer.status === 200 || answer.status === 400, `${query}: ${answer.status}`);
      assert.deepEqual(codes(answer), ['VALIDATION_FAILED'], `${query}: ${JSON.stringify(answer.json)}`);
    }
    const notJson = await maxine.call('POST', '/graphql', '{"query":', {});
    assert.equal(notJson.status, 400);
    assert.equal(notJson.json.code, 'INVALID_JSON');
    assert.equal(notJson.json.errors[0].extensions.code, 'INVALID_JSON');
    const viaGet = await maxine.call('GET', `/graphql?query=${encodeURIComponent('mutation { heartbeat(serviceName: "billing", nodeName: "b1") { nodeName } }')}`);
    assert.equal(viaGet.status, 405);
    assert.deepEqual((await maxine.call('GET', '/api/maxine/serviceops/servers?format=v2&serviceName=bad-svc')).json.services, []);
  });

  test('too deep, too complex and subscription-over-HTTP operations are refused before they run', async () => {
    const deep = await graphql(maxine, '{ services { instances { service { instances { service { instances { service { instances { nodeName } } } } } } } } }');
    assert.equal(deep.status, 400);
    assert.deepEqual(codes(deep), ['QUERY_TOO_DEEP']);
    const complex = await graphql(maxine, '{ services(first: 1000) { instances { nodeName address port } } }');
    assert.equal(complex.status, 400);
    assert.deepEqual(codes(complex), ['QUERY_TOO_COMPLEX']);
    assert.match(complex.errors![0].message, /over the limit of 50000/);
    const aliases = Array.from({ length: 100 }, (_, i) => `a${i}: services { instances { nodeName address } }`).join(' ');
    assert.deepEqual(codes(await graphql(maxine, `{ ${aliases} }`)), ['QUERY_TOO_COMPLEX']);
    // A page given by a variable is priced at its value.
    const paged = await graphql(maxine, 'query ($n: Int) { services(first: $n) { instances { nodeName address port } } }', { n: 5 });
    assert.equal(paged.errors, undefined);
    const subscription = await graphql(maxine, 'subscription { healthEvents { type } }');
    assert.deepEqual(codes(subscription), ['VALIDATION_FAILED']);
  });

  test('serviceEvents deliver a service\'s changes in order, filtered by service and type', async () => {
    const socket = await GraphQLSocket.connect(maxine);
    try {
      await socket.take((m) => m.type === 'connection_ack');
      const fields = 'type revision serviceName nodeName instance { nodeName status }';
      socket.subscribe('all', `subscription { serviceEvents(serviceName: "watched") { ${fields} } }`);
      socket.subscribe('removals', `subscription ($t: [ServiceEventType!]) { serviceEvents(serviceName: "watched", types: $t) { ${fields} } }`, {
        t: ['service_deregistered'],
      });
      await untilLive(socket, ['all', 'removals'], async (i) => {
        await register({ serviceName: 'watched', nodeName: `probe-${i}` });
        await deregister('watched', `probe-${i}`);
      });

      await register({ serviceName: 'watched', nodeName: 'w1' });
      await register({ serviceName: 'unwatched', nodeName: 'u1' });
      assert.equal((await maxine.call('PUT', '/api/maxine/serviceops/instances/watched/w1/status', { status: 'maintenance' })).status, 200);
      await deregister('watched', 'w1');
      await deregister('unwatched', 'u1');

      const all = await socket.events('all', 3, (e) => e.nodeName === 'w1');
      assert.deepEqual(all.map((e) => e.type), ['service_registered', 'service_updated', 'service_deregistered']);
      assert.deepEqual(all.map((e) => e.instance.status), ['up', 'maintenance', 'maintenance']);
      assert.ok(all[0].revision < all[1].revision && all[1].revision < all[2].revision);
      const removals = await socket.events('removals', 1, (e) => e.nodeName === 'w1');
      assert.equal(removals[0].type, 'service_deregistered');

      socket.send({ id: 'all', type: 'complete' });
      socket.send({ id: 'removals', type: 'complete' });
      await register({ serviceName: 'watched', nodeName: 'w2' });
      await assert.rejects(socket.take((m) => m.type === 'next' && m.payload.data.serviceEvents.nodeName === 'w2', 300), /timed out/);
    } finally {
      socket.close();
    }
  });

  test('healthEvents deliver the active checks\' verdicts', async () => {
    const socket = await GraphQLSocket.connect(maxine, { authorization: viewer });
    try {
      await socket.take((m) => m.type === 'connection_ack');
      socket.subscribe('health', 'subscription { healthEvents(serviceName: "checked") { type serviceName nodeName health reason instance { health } } }');
      socket.subscribe('live', 'subscription { serviceEvents(serviceName: "checked") { nodeName } }');
      await untilLive(socket, ['live'], (i) => register({ serviceName: 'checked', nodeName: `probe-${i}` }));
      const port = await closedPort();
      await register({ serviceName: 'checked', nodeName: 'h1', port, check: { type: 'tcp', intervalMs: 100, timeoutMs: 50, fall: 1, jitterMs: 0 } });
      const [event] = await socket.events('health', 1, (e) => e.nodeName === 'h1');
      assert.equal(event.type, 'health_changed');
      assert.equal(event.health, 'critical');
      assert.equal(event.instance.health, 'critical');
      assert.ok(event.reason.length > 0);
      await deregister('checked', 'h1');
    } finally {
      socket.close();
    }
  });

  test('credentials that do not verify refuse the connection (4403), audited', async () => {
    const socket = await GraphQLSocket.connect(maxine, { token: 'mxt_not-a-real-token' });
    const { code } = await socket.whenClosed();
    assert.equal(code, 4403);
    const events = (await maxine.call('GET', '/api/actuator/audit?result=denied')).json.events as any[];
    assert.ok(events.some((e) => e.route === '/graphql' && e.method === 'GET' && e.status === 401 && e.actor.kind === 'anonymous'), JSON.stringify(events));
  });

  test('GraphiQL is served outside production', async () => {
    assert.notEqual(process.env.NODE_ENV, 'production');
    const page = await maxine.call('GET', '/graphiql', undefined, { authorization: '' });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    const config = await maxine.call('GET', '/graphiql/config.js', undefined, { authorization: '' });
    assert.match(config.text, /GRAPHQL_ENDPOINT = '\/graphql'/);
  });
});

describe('GraphQL with MAXINE_REQUIRE_CLIENT_AUTH', () => {
  let maxine: TestMaxine;

  const register = async (body: Record<string, unknown>) => {
    const res = await maxine.call('POST', '/api/maxine/serviceops/register', { hostName: '127.0.0.1', port: 80, ...body });
    assert.equal(res.status, 200, res.text);
  };

  before(async () => {
    maxine = await startTestMaxine({ requireClientAuth: true });
    await register({ serviceName: 'closed', nodeName: 'n1' });
  });

  after(() => maxine.stop());

  test('anonymous callers get UNAUTHORIZED for queries, discovery and changes; the admin does not', async () => {
    for (const operation of [
      '{ services { name } }',
      '{ revision }',
      '{ discover(serviceName: "closed") { nodeName } }',
      'mutation { register(input: { hostName: "127.0.0.1", nodeName: "n2", serviceName: "closed" }) { changed } }',
      'mutation { heartbeat(serviceName: "closed", nodeName: "n1") { nodeName } }',
      'mutation { deregister(serviceName: "closed", nodeName: "n1") { nodeName } }',
    ]) {
      const answer = await graphql(maxine, operation, undefined, '');
      assert.equal(answer.status, 200);
      assert.deepEqual(codes(answer), ['UNAUTHORIZED'], operation);
    }
    const admin = await graphql(maxine, '{ discover(serviceName: "closed") { nodeName } services { name } }');
    assert.deepEqual(admin.data, { discover: { nodeName: 'n1' }, services: [{ name: 'closed' }] });
  });

  test('a viewer token may read and discover but every mutation is FORBIDDEN', async () => {
    const viewer = await signIn(maxine, 'vera', 'viewer');
    const read = await graphql(maxine, '{ services { name } discover(serviceName: "closed") { nodeName } }', undefined, viewer);
    assert.deepEqual(read.data, { services: [{ name: 'closed' }], discover: { nodeName: 'n1' } });
    for (const mutation of [
      'register(input: { hostName: "127.0.0.1", nodeName: "v1", serviceName: "closed", port: 1 }) { changed }',
      'heartbeat(serviceName: "closed", nodeName: "n1") { nodeName }',
      'setStatus(serviceName: "closed", nodeName: "n1", status: draining) { status }',
      'deregister(serviceName: "closed", nodeName: "n1") { nodeName }',
    ]) {
      const refused = await graphql(maxine, `mutation { ${mutation} }`, undefined, viewer);
      assert.deepEqual(codes(refused), ['FORBIDDEN'], mutation);
      assert.equal(refused.data, null);
    }
    const denied = ((await maxine.call('GET', '/api/actuator/audit?result=denied&service=closed')).json.events as any[]).filter((e) => e.actor.id === 'vera');
    assert.deepEqual(denied.map((e) => e.action).sort(), ['deregister', 'ops:write', 'register', 'register']);
    const instances = (await maxine.call('GET', '/api/maxine/serviceops/servers?format=v2&serviceName=closed')).json.services[0].instances;
    assert.deepEqual(instances.map((i: any) => [i.nodeName, i.status]), [['n1', 'up']]);
  });

  test('a scoped service token subscribed to every service only sees the services it may discover', async () => {
    const token = await maxine.call('POST', '/api/maxine/tokens', { name: 'orders-watcher', scopes: [{ actions: ['discover'], services: 'orders-*' }] });
    assert.equal(token.status, 201, token.text);
    const socket = await GraphQLSocket.connect(maxine, { token: token.json.token });
    try {
      await socket.take((m) => m.type === 'connection_ack');
      socket.subscribe('forbidden', 'subscription { serviceEvents(serviceName: "billing") { nodeName } }');
      const refused = await socket.take((m) => m.id === 'forbidden');
      assert.equal(refused.type, 'error');
      assert.equal(refused.payload[0].extensions.code, 'FORBIDDEN');

      socket.subscribe('every', 'subscription { serviceEvents { type serviceName nodeName } }');
      await untilLive(socket, ['every'], (i) => register({ serviceName: 'orders-live', nodeName: `probe-${i}` }));
      await register({ serviceName: 'billing-x', nodeName: 'x1' });
      await register({ serviceName: 'orders-y', nodeName: 'y1' });
      await register({ serviceName: 'billing-x', nodeName: 'x2' });
      await register({ serviceName: 'orders-y', nodeName: 'y2' });
      const seen = await socket.events('every', 2, (e) => e.serviceName !== 'orders-live');
      assert.deepEqual(seen.map((e) => `${e.serviceName}/${e.nodeName}`), ['orders-y/y1', 'orders-y/y2']);
    } finally {
      socket.close();
    }
  });

  test('revoking the token ends its subscriptions at once', async () => {
    const token = await maxine.call('POST', '/api/maxine/tokens', { name: 'revoked-watcher', scopes: [{ actions: ['discover'], services: '*' }] });
    assert.equal(token.status, 201, token.text);
    const socket = await GraphQLSocket.connect(maxine, { token: token.json.token });
    try {
      await socket.take((m) => m.type === 'connection_ack');
      socket.subscribe('live', 'subscription { serviceEvents { serviceName nodeName } }');
      await untilLive(socket, ['live'], (i) => register({ serviceName: 'revocation', nodeName: `probe-${i}` }));
      assert.equal((await maxine.call('DELETE', `/api/maxine/tokens/${token.json.id}`)).status, 200);
      const ended = await socket.take((m) => m.id === 'live' && m.type === 'error');
      assert.equal(ended.payload[0].extensions.code, 'UNAUTHORIZED');
    } finally {
      socket.close();
    }
  });

  test('an anonymous subscription is refused with UNAUTHORIZED', async () => {
    const socket = await GraphQLSocket.connect(maxine);
    try {
      await socket.take((m) => m.type === 'connection_ack');
      socket.subscribe('s', 'subscription { serviceEvents { nodeName } }');
      const refused = await socket.take((m) => m.id === 's');
      assert.equal(refused.type, 'error');
      assert.equal(refused.payload[0].extensions.code, 'UNAUTHORIZED');
    } finally {
      socket.close();
    }
  });
});

describe('GraphQL subscription connections share the per-principal cap on event streams', () => {
  let maxine: TestMaxine;
  before(async () => {
    maxine = await startTestMaxine({ eventsMaxConnectionsPerPrincipal: 2 });
  });
  after(() => maxine.stop());

  const eventSocket = async (): Promise<WebSocket> => {
    const socket = new WebSocket(`${maxine.url.replace(/^http/, 'ws')}/api/maxine/events/ws`, { headers: { authorization: `Bearer ${maxine.adminToken}` } });
    await once(socket, 'open');
    return socket;
  };
  const closeCode = async (socket: WebSocket): Promise<number> => {
    const [code] = (await once(socket, 'close')) as [number];
    return code;
  };
  /** Fails instead of hanging when a socket that should be refused stays open. */
  const within = <T>(promise: Promise<T>, what: string): Promise<T> =>
    Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} within 3 s`)), 3000).unref())]);

  test('an event WebSocket and a GraphQL connection fill the cap; a third stream of either kind is refused, and a closed GraphQL connection frees its place', { timeout: 30_000 }, async () => {
    const token = { token: maxine.adminToken };
    const events = await eventSocket();
    const first = await GraphQLSocket.connect(maxine, token);
    await first.take((m) => m.type === 'connection_ack');

    const second = await GraphQLSocket.connect(maxine, token);
    assert.equal((await within(second.whenClosed(), 'a third stream for the admin refused')).code, 1008);
    const refused = await eventSocket();
    assert.equal(await within(closeCode(refused), 'an event socket over the cap refused (the GraphQL connection counts)'), 1008);

    // Another principal has a cap of its own.
    const anonymous = await GraphQLSocket.connect(maxine);
    await anonymous.take((m) => m.type === 'connection_ack');

    first.close();
    await first.whenClosed();
    // The place is given back when mercurius reports the disconnection.
    let again: WebSocket | undefined;
    for (let attempt = 0; attempt < 20 && again === undefined; attempt++) {
      const candidate = await eventSocket();
      const outcome = await Promise.race([closeCode(candidate), new Promise<'open'>((resolve) => setTimeout(() => resolve('open'), 200))]);
      if (outcome === 'open') again = candidate;
    }
    assert.ok(again !== undefined, 'the closed GraphQL connection never gave its place back');
    again.close();
    events.close();
    anonymous.close();
  });
});
