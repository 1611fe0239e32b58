import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestMaxine, type TestMaxine } from '../helpers/maxine.ts';

describe('Lightning-mode root routes', () => {
  let maxine: TestMaxine;
  before(async () => {
    maxine = await startTestMaxine();
  });
  after(() => maxine.stop());

  test('register returns a node id unique across services', async () => {
    const a = await maxine.call('POST', '/register', { serviceName: 'alpha', host: '127.0.0.1', port: 3000 });
    const b = await maxine.call('POST', '/register', { serviceName: 'beta', host: '127.0.0.1', port: 3000 });
    assert.equal(a.status, 200);
    assert.deepEqual(a.json, { nodeId: 'alpha:127.0.0.1:3000', status: 'registered' });
    assert.deepEqual(b.json, { nodeId: 'beta:127.0.0.1:3000', status: 'registered' });
    const servers = await maxine.call('GET', '/servers');
    assert.deepEqual(servers.json.services.filter((s: string) => s === 'alpha' || s === 'beta'), ['alpha', 'beta']);
  });

  test('discover answers JSON with version and tag filters', async () => {
    await maxine.call('POST', '/register', {
      serviceName: 'gamma',
      host: '127.0.0.1',
      port: 4001,
      metadata: { version: '1.0', tags: ['x', 'y'], weight: 2 },
    });
    await maxine.call('POST', '/register', { serviceName: 'gamma', host: '127.0.0.1', port: 4002, metadata: { version: '2.0' } });
    const v1 = await maxine.call('GET', '/discover?serviceName=gamma&version=1.0');
    assert.equal(v1.status, 200);
    assert.equal(v1.json.address, '127.0.0.1:4001');
    assert.equal(v1.json.healthy, true);
    assert.equal(v1.json.nodeId, 'gamma:127.0.0.1:4001');
    const tagged = await maxine.call('GET', '/discover?serviceName=gamma&tags=x,y&loadBalancing=random');
    assert.equal(tagged.json.address, '127.0.0.1:4001');
    const hashed = await maxine.call('GET', '/discover?serviceName=gamma&loadBalancing=ip-hash');
    assert.equal(hashed.status, 200);
    const miss = await maxine.call('GET', '/discover?serviceName=gamma&version=9');
    assert.equal(miss.status, 404);
    assert.equal(miss.json.message, 'Service unavailable');
    const missing = await maxine.call('GET', '/discover');
    assert.equal(missing.status, 400);
    assert.equal(missing.json.message, 'Missing serviceName');
  });

  test('heartbeat and deregister by node id', async () => {
    const { json } = await maxine.call('POST', '/register', { serviceName: 'delta', host: '::1', port: 5000 });
    assert.equal(json.nodeId, 'delta:[::1]:5000');
    assert.deepEqual((await maxine.call('POST', '/heartbeat', { nodeId: json.nodeId })).json, { success: true });
    const unknown = await maxine.call('POST', '/heartbeat', { nodeId: 'delta:10.0.0.1:1' });
    assert.equal(unknown.status, 404);
    assert.deepEqual((await maxine.call('DELETE', '/deregister', { nodeId: json.nodeId })).json, { success: true });
    assert.equal((await maxine.call('DELETE', '/deregister', { nodeId: json.nodeId })).status, 404);
    assert.equal((await maxine.call('GET', '/discover?serviceName=delta')).status, 404);
  });

  test('health counts services and nodes', async () => {
    const res = await maxine.call('GET', '/health');
    assert.equal(res.json.status, 'ok');
    assert.equal(typeof res.json.services, 'number');
    assert.equal(typeof res.json.nodes, 'number');
  });
});
